"""The statistics behind the "Sinyal" page: when a village's complaints are a cluster,
and which distribution points or agents several complaints name.

A village is flagged for a category (levy, held card, money not received) when all
of these hold for the complaints of the period (counted once per reporter, so one
person writing five times counts once):

1. at least `min_count` reporters complained;
2. that many is unlikely if the village had its neighbours' rate: the expected count
   is the village's households times the rate of the other villages of the same
   regency (complaints per household, with half a complaint added so a regency where
   nobody else complained does not make one complaint infinitely surprising);
3. and unlikely if it had its own earlier rate: the expected count is the village's
   complaints in the baseline weeks before the period, scaled to the period's length
   (again plus half a complaint).

"Unlikely" is a one-sided Poisson test: the chance of seeing at least that many
complaints by chance, P(X >= k) with X ~ Poisson(expected), is below `alpha` divided
by the number of village-category pairs tested (Bonferroni). Every pair that could
be judged counts, whatever its count (every village of a regency with more than one
village, times the watched categories): a quiet village is a test that came out
negative, not one left out. So over a whole period and country the chance of one or
more clusters where nothing is going on stays below `alpha`. The larger of the two
chances is the one reported, with the threshold it had to beat. Complaints arrive
independently and rarely, which is what a Poisson count describes; the tail is a
short sum, so no statistics library is needed.

Named points: words after "agen", "e-warong", "pendamping" and the like are read as a
name, up to two words as written ("agen Sri Rahayu minta potongan" names "Agen Sri
Rahayu", a different person from "Agen Sri Wahyuni"); generic words ("agen terdekat",
"petugas bank") are not names. A name that complaints of `named_min` different
reporters in the same regency share is flagged; complaints whose regency is unknown
are never pooled into one.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.reports.models import ComplaintCategory
from bot.reports.parsing import normalise_words

# The complaint categories that point at someone taking a cut or holding the card.
WATCHED = (
    ComplaintCategory.POTONGAN_PUNGLI,
    ComplaintCategory.KARTU_DIPEGANG_ORANG_LAIN,
    ComplaintCategory.DANA_BELUM_DITERIMA,
)
# How a supervisor's message says each watched category.
CATEGORY_WORDS = {
    ComplaintCategory.POTONGAN_PUNGLI: "potongan/pungli",
    ComplaintCategory.KARTU_DIPEGANG_ORANG_LAIN: "kartu KKS dipegang orang lain",
    ComplaintCategory.DANA_BELUM_DITERIMA: "dana belum diterima",
}
# Added to observed counts before they become a rate (see the module docstring).
PSEUDO_COUNT = 0.5
# Chances below this are all said alike: the exact figure means nothing to a reader.
SMALLEST_CHANCE = 1e-9


@dataclass(frozen=True)
class Region:
    """Where a complaint is from; names as the registry spells them, "" when unknown."""

    province_code: str = ""
    regency: str = ""
    district: str = ""
    village: str = ""

    @property
    def regency_key(self) -> tuple[str, str]:
        return (self.province_code, self.regency)

    def label(self) -> str:
        parts = [
            f"Desa/Kel. {self.village}" if self.village else "",
            f"Kec. {self.district}" if self.district else "",
            self.regency,
        ]
        return ", ".join(part for part in parts if part) or "wilayah tidak diketahui"


@dataclass(frozen=True)
class StatSettings:
    period_days: int = 30
    baseline_days: int = 84
    min_count: int = 3
    alpha: float = 0.01
    named_min: int = 3


@dataclass(frozen=True)
class VillageCount:
    """One village's complaints of one category: reporters in the period and in the baseline."""

    region: Region
    category: str
    households: int
    period: int
    baseline: int


@dataclass(frozen=True)
class VillageCluster:
    region: Region
    category: str
    count: int
    expected_neighbours: float
    expected_own: float
    usual: float  # the baseline's complaints scaled to the period, without the pseudo-count
    neighbours_mean: float
    chance: float
    threshold: float
    tested: int  # village-category pairs judged in the same run: the Bonferroni divisor


@dataclass(frozen=True)
class Mention:
    """One complaint's reading for named points: who filed it (only counted), where, which names."""

    report_id: int
    reporter_key: int
    region: Region
    category: str
    names: tuple[tuple[str, str], ...]  # (key, as written)


@dataclass(frozen=True)
class NamedCluster:
    key: str
    label: str
    regency_key: tuple[str, str]
    reporters: int
    categories: tuple[tuple[str, int], ...]
    report_ids: frozenset[int] = field(default_factory=frozenset)


def poisson_tail(count: int, expected: float) -> float:
    """P(X >= count) for X ~ Poisson(expected), summed from `count` upward.

    Summing the upper tail keeps tiny chances exact where 1 - CDF would round to 0.
    """
    if count <= 0:
        return 1.0
    if expected <= 0:
        return 0.0
    term = math.exp(-expected + count * math.log(expected) - math.lgamma(count + 1))
    total, i = term, count
    while term > total * 1e-16 or i < expected:
        i += 1
        term *= expected / i
        total += term
    return min(1.0, total)


def chance_text(chance: float) -> str:
    """ "sekitar 1 dalam 3.300": a chance in words a supervisor reads without statistics."""
    if chance < SMALLEST_CHANCE:
        return "kurang dari 1 dalam 1 miliar"
    if chance >= 0.1:
        return f"sekitar {round(chance * 100)} dalam 100"
    return f"sekitar {one_in_text(chance)}"


def one_in_text(chance: float) -> str:
    """ "1 dalam 150.000": odds rounded to two significant digits, so they compare at a glance."""
    odds = 1 / chance
    return f"1 dalam {_thousands(int(round(odds, 1 - math.floor(math.log10(odds)))))}"


def village_clusters(counts: Iterable[VillageCount], settings: StatSettings) -> list[VillageCluster]:
    """The village-category pairs the module docstring's three conditions flag."""
    by_regency: dict[tuple[tuple[str, str], str], list[VillageCount]] = defaultdict(list)
    for row in counts:
        by_regency[(row.region.regency_key, row.category)].append(row)
    # A village alone in its regency has no neighbours to be judged against.
    judged = [group for group in by_regency.values() if len(group) > 1]
    tested = sum(len(group) for group in judged)
    candidates = [(row, group) for group in judged for row in group if row.period >= settings.min_count]
    if not candidates:
        return []
    threshold = settings.alpha / tested
    scale = settings.period_days / settings.baseline_days
    found = []
    for row, group in candidates:
        others = [other for other in group if other is not row]
        # Households weigh villages only when every village of the regency has them.
        by_households = all(other.households > 0 for other in group)
        weight = (lambda v: v.households) if by_households else (lambda v: 1)
        rate = (sum(o.period for o in others) + PSEUDO_COUNT) / sum(weight(o) for o in others)
        expected_neighbours = weight(row) * rate
        expected_own = (row.baseline + PSEUDO_COUNT) * scale
        chance = max(poisson_tail(row.period, expected_neighbours), poisson_tail(row.period, expected_own))
        if chance < threshold:
            found.append(VillageCluster(
                region=row.region,
                category=row.category,
                count=row.period,
                expected_neighbours=expected_neighbours,
                expected_own=expected_own,
                usual=row.baseline * scale,
                neighbours_mean=sum(o.period for o in others) / len(others),
                chance=chance,
                threshold=threshold,
                tested=tested,
            ))
    return sorted(found, key=lambda c: (c.chance, c.region.label()))


def village_reason(cluster: VillageCluster, settings: StatSettings) -> str:
    """Why the village was flagged, in plain Indonesian."""
    return (
        f"{cluster.region.label()}: {cluster.count} pelapor mengadukan "
        f"{CATEGORY_WORDS.get(cluster.category, cluster.category)} dalam {settings.period_days} hari, "
        f"biasanya {_number(cluster.usual)}; desa lain di {cluster.region.regency or 'kabupaten/kota ini'} "
        f"rata-rata {_number(cluster.neighbours_mean)}. "
        f"Peluang kebetulan {chance_text(cluster.chance)}, di bawah batas {one_in_text(cluster.threshold)} "
        f"yang dipakai karena {_thousands(cluster.tested)} pasangan desa dan jenis aduan diperiksa sekaligus."
    )


def _thousands(value: int) -> str:
    return f"{value:,}".replace(",", ".")


def _number(value: float) -> str:
    return str(round(value)) if value >= 10 or value == round(value) else f"{value:.1f}".replace(".", ",")


# ---- named distribution points and agents -----------------------------------------

# Words that open a name, longest first so "agen brilink" wins over "agen"; the value
# is how the flagged name is spelled.
_POINT_WORDS = (
    ("agen brilink", "Agen BRILink"), ("agen bri link", "Agen BRILink"), ("agen", "Agen"),
    ("e warong", "e-Warong"), ("ewarong", "e-Warong"), ("e warung", "e-Warong"),
    ("warong", "e-Warong"), ("toko", "Toko"), ("pendamping pkh", "Pendamping"),
    ("pendamping", "Pendamping"), ("ketua kelompok", "Ketua kelompok"), ("ketua rt", "Ketua RT"),
    ("ketua rw", "Ketua RW"), ("kepala desa", "Kepala desa"), ("kades", "Kepala desa"),
    ("kader", "Kader"), ("koordinator", "Koordinator"), ("kantor pos", "Kantor Pos"),
    ("operator", "Operator"), ("petugas", "Petugas"),
)
_POINT_RE = re.compile(r"\b(" + "|".join(re.escape(w) for w, _ in _POINT_WORDS) + r")\b(?=((?: \w+){1,4}))")
_POINT_LABELS = dict(_POINT_WORDS)
# Words that are not part of a name after the opening word; honorifics are skipped.
_SKIP = frozenset("pak bapak bpk bu ibu mas mbak mba bang kak haji hj sdr saudara".split())
_NOT_NAME = frozenset(
    """yang di dan minta meminta memotong motong potong dipotong pegang memegang dipegang menahan
    tahan ditahan simpan menyimpan disimpan ambil mengambil diambil sebesar rp ribu tidak sudah
    belum dengan untuk saat waktu setiap tiap kami saya kartu kks pin atm uang dana bansos bantuan
    pkh bpnt blt itu ini nya juga bilang katanya sampai per dari ke pada jadi bri bni mandiri pos
    desa kelurahan kecamatan kabupaten kota rt rw setempat tersebut sendiri lagi semua warga
    selalu masih harus bisa mau akan karena tapi atau biaya admin tanpa bukti lalu terus kemudian
    agar supaya kalau jika bahwa oleh pun kok sih ya tak gak nggak enggak ga bukan hanya cuma malah
    bahkan sering pernah selama sejak hingga bulan tahun hari minggu kemarin tadi sekarang ketika
    sebelum setelah sesudah terdekat dekat sebelah depan belakang samping sana sini situ bank
    sembako posyandu pusat kantor kampung dusun pasar jalan jl gang nomor resmi lain lainnya baru
    lama tsb kita mereka dia beliau ia aku kepada bagi tentang soal secara langsung bayar membayar
    dibayar kasih memberi diberi tarik menarik ditarik cair cairkan dicairkan pencairan potongan
    pungli pungutan terima menerima diterima datang ada tdk gk udah sdh blm kpm penerima""".split()
)


def point_names(text: str) -> tuple[tuple[str, str], ...]:
    """(key, label) of every point or agent a complaint names; the key is kind + the name as written."""
    found: dict[str, str] = {}
    for match in _POINT_RE.finditer(normalise_words(text)):
        words = []
        for word in match.group(2).split():
            if word in _SKIP and not words:
                continue
            if word in _NOT_NAME or word.isdigit() or len(word) < 2:
                break
            words.append(word)
            if len(words) == 2:
                break
        if words:
            label = _POINT_LABELS[match.group(1)]
            key = f"{label.lower()} {' '.join(words)}"
            found.setdefault(key, f"{label} {' '.join(w.capitalize() for w in words)}")
    return tuple(found.items())


def named_clusters(mentions: Iterable[Mention], settings: StatSettings) -> list[NamedCluster]:
    """Names shared by complaints of at least `named_min` reporters of one regency.

    A complaint of unknown regency joins no group: complaints from all over the country
    naming "agen Sri" are not one agent.
    """
    groups: dict[tuple[tuple[str, str], str], list[tuple[Mention, str]]] = defaultdict(list)
    for mention in mentions:
        if not (mention.region.province_code and mention.region.regency):
            continue
        for key, label in mention.names:
            groups[(mention.region.regency_key, key)].append((mention, label))
    found = []
    for (regency_key, key), items in groups.items():
        reporters = {mention.reporter_key for mention, _ in items}
        if len(reporters) < settings.named_min:
            continue
        label = Counter(label for _, label in items).most_common(1)[0][0]
        categories = Counter(mention.category for mention, _ in items).most_common()
        found.append(NamedCluster(
            key=key,
            label=label,
            regency_key=regency_key,
            reporters=len(reporters),
            categories=tuple(categories),
            report_ids=frozenset(mention.report_id for mention, _ in items),
        ))
    return sorted(found, key=lambda c: (-c.reporters, c.label))


def named_reason(cluster: NamedCluster, regency: str, settings: StatSettings) -> str:
    kinds = " dan ".join(
        f"{CATEGORY_WORDS.get(category, category)} ({count})" for category, count in cluster.categories
    )
    return (
        f"{cluster.label} ({regency or 'wilayah tidak diketahui'}) disebut dalam aduan "
        f"{cluster.reporters} pelapor berbeda dalam {settings.period_days} hari: {kinds}."
    )


def village_summary(cluster: VillageCluster, settings: StatSettings) -> str:
    """One line of a supervisor's SMS: where, how many, what is usual."""
    return (
        f"{cluster.region.label()}: {cluster.count} pelapor "
        f"{CATEGORY_WORDS.get(cluster.category, cluster.category)} dalam {settings.period_days} hari, "
        f"biasanya {_number(cluster.usual)}"
    )


def named_summary(cluster: NamedCluster, regency: str) -> str:
    return f"{cluster.label} ({regency or 'wilayah tidak diketahui'}) disebut {cluster.reporters} pelapor"
