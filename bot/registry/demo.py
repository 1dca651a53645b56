"""Synthetic, deterministic demo data: recipients and disbursements that look real.

Nothing here is a real person. The generator is seeded, so the same seed and the
same day give the same rows; disbursement dates are laid out around "today" so a
fresh demo always has payments behind it (mostly tersalur, some gagal) and ahead
of it (dijadwalkan, some within the next days so notices can be tried, a few
ditunda). Provinces span all three time zones: WIB (Jawa Barat, Jawa Timur), WITA
(Sulawesi Selatan, Bali) and WIT (Maluku, Papua).

`DEMO_PERSONAS` are fixed households with stable NIKs and phone numbers, one for
each case worth trying in a chat; `bansos demo-personas` prints them.
"""

from __future__ import annotations

import csv
import random
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.db import Database
from bot.registry.importer import (
    DISBURSEMENT_COLUMNS,
    RECIPIENT_COLUMNS,
    ImportReport,
    import_disbursements,
    import_recipients,
)
from bot.rules.nik import FEMALE_DAY_OFFSET, parse_nik
from bot.rules.regions import DEFAULT_ZONE
from bot.registry.models import DisbursementStatus as Status
from bot.registry.models import PaymentChannel as Pay

DEMO_SEED = 20261207
DEFAULT_RECIPIENTS = 3000

# PKH components per year (design: amounts for realistic demo data), paid in 4 tahap.
PKH_COMPONENTS = (3_000_000, 2_400_000, 900_000, 1_500_000, 2_000_000)
BPNT_PER_QUARTER = 600_000  # Rp200.000 a month
BLT_PER_QUARTER = 900_000  # BLT Dana Desa, Rp300.000 a month
PBI_JK_PREMIUM_PER_YEAR = 42_000 * 12  # paid to BPJS Kesehatan, not to the household


def _names(text: str) -> tuple[str, ...]:
    """Split "Siti, Sri, Ni Made" into names; keeps the tables below readable."""
    return tuple(part.strip() for part in text.split(","))


MOBILE_PREFIXES = tuple(
    "0811 0812 0813 0821 0822 0852 0853 0856 0857 0858 0817 0818 0819 0859 0877 0878 "
    "0895 0896 0897 0881 0882".split()
)
STREETS = _names(
    "Jl. Merdeka, Jl. Mawar, Jl. Melati, Gg. Kenanga, Jl. Pahlawan, Jl. Kartini, "
    "Jl. Diponegoro, Jl. Sudirman, Gg. Masjid, Jl. Pasar, Jl. Kebun, Lorong Damai"
)


@dataclass(frozen=True)
class District:
    """A kecamatan with its NIK prefix (province + regency + district codes)."""

    prefix: str
    regency: str
    name: str
    villages: tuple[str, ...]


@dataclass(frozen=True)
class ProvinceProfile:
    """What varies by province: share of recipients, places, names, payment channels.

    Names are (given names, second names) per sex, as people in the region are named.
    """

    code: str
    share: float
    districts: tuple[District, ...]
    female: tuple[tuple[str, ...], tuple[str, ...]]
    male: tuple[tuple[str, ...], tuple[str, ...]]
    channels: tuple[tuple[str, int], ...]


_JAVA_FEMALE = "Siti, Sri, Dewi, Nur, Rina, Yuni, Ratna, Endang, Sumiati, Fitri, Aminah, Wulan"
_JAVA_MALE = "Ahmad, Budi, Agus, Slamet, Joko, Dedi, Hendra, Rudi, Bambang, Eko, Yusuf, Iwan"

PROFILES: tuple[ProvinceProfile, ...] = (
    ProvinceProfile(
        code="32",
        share=0.30,
        districts=(
            District(
                "320101", "Kabupaten Bogor", "Cibinong", _names("Pakansari, Tengah, Cirimekar")
            ),
            District(
                "320102", "Kabupaten Bogor", "Gunung Putri", _names("Wanaherang, Bojong Nangka")
            ),
            District(
                "320410", "Kabupaten Bandung", "Baleendah", _names("Andir, Manggahang, Jelekong")
            ),
            District("327302", "Kota Bandung", "Sukasari", _names("Gegerkalong, Isola, Sarijadi")),
        ),
        female=(
            _names(_JAVA_FEMALE + ", Euis, Neneng, Iis"),
            _names("Nurjanah, Kurniasih, Rahayu, Mulyani, Komalasari, Wulandari"),
        ),
        male=(
            _names(_JAVA_MALE + ", Asep, Ujang, Dadang"),
            _names("Suryana, Sopandi, Permana, Hidayat, Setiawan, Saepudin"),
        ),
        channels=((Pay.BRI, 60), (Pay.BNI, 20), (Pay.MANDIRI, 10), (Pay.PT_POS, 10)),
    ),
    ProvinceProfile(
        code="35",
        share=0.30,
        districts=(
            District(
                "357801", "Kota Surabaya", "Tegalsari", _names("Kedungdoro, Dr. Soetomo, Wonorejo")
            ),
            District(
                "357815", "Kota Surabaya", "Tambaksari", _names("Pacar Keling, Ploso, Gading")
            ),
            District(
                "350901", "Kabupaten Jember", "Kaliwates", _names("Mangli, Sempusari, Tegal Besar")
            ),
            District(
                "350903", "Kabupaten Jember", "Sumbersari", _names("Antirogo, Kranjingan, Wirolegi")
            ),
        ),
        female=(
            _names(_JAVA_FEMALE + ", Sulastri, Tutik, Suprapti"),
            _names("Wulandari, Susanti, Wahyuni, Lestari, Sulistyowati, Rahmawati"),
        ),
        male=(
            _names(_JAVA_MALE + ", Supriadi, Suparman, Mulyono"),
            _names("Purnomo, Santoso, Hariyanto, Prasetyo, Wibowo, Saputra"),
        ),
        channels=((Pay.BRI, 50), (Pay.BNI, 25), (Pay.MANDIRI, 10), (Pay.BTN, 5), (Pay.PT_POS, 10)),
    ),
    ProvinceProfile(
        code="73",
        share=0.15,
        districts=(
            District("737101", "Kota Makassar", "Mariso", _names("Lette, Panambungan, Bontorannu")),
            District(
                "737111", "Kota Makassar", "Tamalate", _names("Barombong, Parangtambung, Mangasa")
            ),
            District("730201", "Kabupaten Bulukumba", "Ujung Bulu", _names("Caile, Terang-Terang")),
        ),
        female=(
            _names("Andi, Hasnah, Nurhayati, Hasniah, St. Aminah, Rosmini, Sumiati, Hadijah"),
            _names("Rahmawati, Haerani, Syamsiah, Nurdin, Baso, Ramli"),
        ),
        male=(
            _names("Andi, Muhammad, Abdul, Syamsul, Baharuddin, Muh."),
            _names("Rahman, Hamzah, Syamsuddin, Sudirman, Ramli, Nurdin"),
        ),
        channels=((Pay.BRI, 40), (Pay.BNI, 20), (Pay.MANDIRI, 20), (Pay.BSI, 5), (Pay.PT_POS, 15)),
    ),
    ProvinceProfile(
        code="51",
        share=0.08,
        districts=(
            District(
                "517101", "Kota Denpasar", "Denpasar Selatan", _names("Sanur, Sesetan, Pedungan")
            ),
            District(
                "510302", "Kabupaten Badung", "Mengwi", _names("Kapal, Abianbase, Mengwitani")
            ),
        ),
        female=(
            _names("Ni Made, Ni Ketut, Ni Luh, Ni Wayan, Ni Nyoman"),
            _names("Suartini, Darmini, Wiryani, Sukerti, Sariasih"),
        ),
        male=(
            _names("I Made, I Ketut, I Wayan, I Nyoman, I Gede"),
            _names("Sukarta, Suarta, Wirawan, Arsana, Sudarma"),
        ),
        channels=((Pay.BNI, 50), (Pay.BRI, 30), (Pay.PT_POS, 20)),
    ),
    ProvinceProfile(
        code="81",
        share=0.07,
        districts=(
            District("817101", "Kota Ambon", "Nusaniwe", _names("Benteng, Kudamati, Wainitu")),
            District(
                "817102", "Kota Ambon", "Sirimau", _names("Batu Merah, Karang Panjang, Waihaong")
            ),
            District("810103", "Kabupaten Maluku Tengah", "Kota Masohi", _names("Namaelo, Lesane")),
        ),
        female=(
            _names("Maria, Yohana, Agustina, Fatima, Salma, Novita"),
            _names("Latuconsina, Pattiasina, Tuhumury, Sahetapy, Ohorella, Pelupessy"),
        ),
        male=(
            _names("Yosep, Johanis, Abdullah, Hasan, Markus, Ruben"),
            _names("Wattimena, Tuasikal, Latuconsina, Pattiasina, Tuhumury, Ohorella"),
        ),
        channels=((Pay.BRI, 40), (Pay.PT_POS, 60)),
    ),
    ProvinceProfile(
        code="94",
        share=0.10,
        districts=(
            District("947101", "Kota Jayapura", "Jayapura Utara", _names("Bhayangkara, Gurabesi")),
            District("947102", "Kota Jayapura", "Abepura", _names("Kota Baru, Awiyo, Yobe")),
            District("940305", "Kabupaten Jayapura", "Sentani", _names("Hinekombe, Dobonsolo")),
        ),
        female=(
            _names("Yohana, Maria, Martha, Naomi, Ribka, Debora"),
            _names("Wenda, Kogoya, Tabuni, Wanimbo, Rumbiak, Ohee"),
        ),
        male=(
            _names("Yakobus, Markus, Petrus, Yunus, Daniel, Isak"),
            _names("Wenda, Kogoya, Yikwa, Mandowen, Kaisiepo, Yoku"),
        ),
        channels=((Pay.PT_POS, 70), (Pay.BRI, 20), (Pay.MANDIRI, 10)),
    ),
)

_DISTRICTS = {district.prefix: district for profile in PROFILES for district in profile.districts}


@dataclass(frozen=True)
class Plan:
    """One programme of a persona: a year of paid tahap, then this tahap's payment.

    `history_day` is the day of the month past tahap were paid (None: no history);
    `now` is (days from today, status) of this tahap's payment (None: nothing now).
    """

    program: str
    amount: int
    channel: str
    history_day: int | None = 14
    now: tuple[int, str] | None = None


@dataclass(frozen=True)
class Persona:
    """A fixed demo household to try in a chat; `shows` says what it demonstrates."""

    key: str
    nik: str
    name: str
    phone: str | None
    shows: str
    registered: bool = True
    home: tuple[str, str, str] = ("", "", "")  # district prefix, village, street address
    smartphone: bool = False
    plans: tuple[Plan, ...] = ()
    pbi_jk: bool = False


@dataclass
class DemoData:
    """CSV-ready rows (every value a string) in the import formats of the design."""

    recipients: list[dict[str, str]] = field(default_factory=list)
    disbursements: list[dict[str, str]] = field(default_factory=list)


DEMO_PERSONAS: tuple[Persona, ...] = (
    Persona(
        key="siti",
        nik="3201015503880003",
        name="Siti Wulandari",
        phone="+6281210000001",
        shows="Jawa Barat (WIB), WhatsApp user, PKH + BPNT + PBI-JK; PKH due in 4 days and "
        "BPNT in 6 days (KKS Bank BRI); a year of tersalur history",
        home=("320101", "Pakansari", "Jl. Mawar No. 12, RT 03/RW 05"),
        smartphone=True,
        plans=(
            Plan("PKH", 975_000, Pay.BRI, now=(4, Status.DIJADWALKAN)),
            Plan("BPNT", BPNT_PER_QUARTER, Pay.BRI, history_day=17, now=(6, Status.DIJADWALKAN)),
        ),
        pbi_jk=True,
    ),
    Persona(
        key="yohana",
        nik="9471016108790002",
        name="Yohana Wenda",
        phone="+6282199000002",
        shows="Papua (WIT), SMS only, PKH + BPNT via Kantor Pos; this tahap's PKH gagal "
        "(what to do, ADU), BPNT tersalur",
        home=("947101", "Gurabesi", "Jl. Sam Ratulangi No. 7"),
        plans=(
            Plan("PKH", 600_000, Pay.PT_POS, history_day=19, now=(-6, Status.GAGAL)),
            Plan("BPNT", BPNT_PER_QUARTER, Pay.PT_POS, history_day=19, now=(-6, Status.TERSALUR)),
        ),
    ),
    Persona(
        key="made",
        nik="5171010211700004",
        name="I Made Sukarta",
        phone="+6285737000003",
        shows="Bali (WITA), BPNT ditunda, BLT due in 9 days (BNI), PBI-JK",
        home=("517101", "Sesetan", "Jl. Raya Sesetan Gg. Merpati No. 4"),
        smartphone=True,
        plans=(
            Plan("BPNT", BPNT_PER_QUARTER, Pay.BNI, history_day=15, now=(2, Status.DITUNDA)),
            Plan("BLT", BLT_PER_QUARTER, Pay.BNI, history_day=None, now=(9, Status.DIJADWALKAN)),
        ),
        pbi_jk=True,
    ),
    Persona(
        key="ahmad",
        nik="3578013001650005",
        name="Ahmad Hidayat",
        phone="+6287812000004",
        shows="Jawa Timur (WIB), BPNT history but nothing scheduled now, PBI-JK (no cash)",
        home=("357801", "Kedungdoro", "Jl. Kedungdoro Gg. III No. 21"),
        plans=(Plan("BPNT", BPNT_PER_QUARTER, Pay.BRI, history_day=16),),
        pbi_jk=True,
    ),
    Persona(
        key="sumiati",
        nik="7371015006580006",
        name="Sumiati",
        phone="+6285255000005",
        shows="Sulawesi Selatan (WITA), phone shared with Rahmawati: the bot asks which "
        "household; PKH + BPNT due in 8 days",
        home=("737101", "Lette", "Jl. Rajawali Lr. 2 No. 9"),
        plans=(
            Plan("PKH", 600_000, Pay.BRI, history_day=18, now=(8, Status.DIJADWALKAN)),
            Plan("BPNT", BPNT_PER_QUARTER, Pay.BRI, history_day=18, now=(8, Status.DIJADWALKAN)),
        ),
    ),
    Persona(
        key="rahmawati",
        nik="7371014112920007",
        name="Rahmawati",
        phone="+6285255000005",
        shows="same phone as Sumiati; BPNT due in 8 days, PBI-JK",
        home=("737101", "Lette", "Jl. Rajawali Lr. 2 No. 9"),
        smartphone=True,
        plans=(
            Plan("BPNT", BPNT_PER_QUARTER, Pay.BRI, history_day=18, now=(8, Status.DIJADWALKAN)),
        ),
        pbi_jk=True,
    ),
    Persona(
        key="maria",
        nik="8171024704830009",
        name="Maria Latuconsina",
        phone=None,
        shows="Maluku (WIT), no phone registered: any phone gets only the masked answer "
        "and is sent to the kelurahan/desa or 171",
        home=("817102", "Batu Merah", "Jl. Sultan Babullah No. 30"),
        plans=(Plan("PKH", 750_000, Pay.PT_POS, history_day=20, now=(5, Status.DIJADWALKAN)),),
    ),
    Persona(
        key="euis",
        nik="3201015208840010",
        name="Euis Komalasari",
        phone=None,
        shows="no phone registered, found by name and village without a NIK: NAMA, "
        "'Euis Komalasari', 'desa Sukamaju', then 2 (Sukamaju, Kec. Cibinong); "
        "PKH tersalur, BPNT dalam proses",
        home=("320101", "Sukamaju", "Kp. Babakan RT 02/RW 04"),
        plans=(
            Plan("PKH", 750_000, Pay.BRI, history_day=16, now=(-3, Status.TERSALUR)),
            Plan("BPNT", BPNT_PER_QUARTER, Pay.BRI, history_day=16, now=(10, Status.DIJADWALKAN)),
        ),
    ),
    Persona(
        key="dedi",
        nik="3204100503690011",
        name="Dedi Permana",
        phone=None,
        shows="the other Sukamaju (Kec. Baleendah, Kab. Bandung): the village name is "
        "ambiguous, so a name look-up asks which one; BPNT ditunda",
        home=("320410", "Sukamaju", "Jl. Cisirung No. 3"),
        plans=(
            Plan("BPNT", BPNT_PER_QUARTER, Pay.BNI, history_day=15, now=(3, Status.DITUNDA)),
        ),
    ),
    Persona(
        key="unregistered",
        nik="3273014407950008",
        name="(not registered)",
        phone=None,
        shows="well-formed NIK that is not in the register: 'tidak terdaftar', how to USUL",
        registered=False,
    ),
)


def demo_today() -> date:
    """Today in WIB, where most recipients live; the generator's default reference day."""
    return datetime.now(ZoneInfo(DEFAULT_ZONE)).date()


def make_nik(prefix: str, birth_date: date, female: bool, serial: int) -> str:
    """Compose a NIK from its parts (the inverse of bot.rules.nik.parse_nik)."""
    day = birth_date.day + (FEMALE_DAY_OFFSET if female else 0)
    return f"{prefix}{day:02d}{birth_date:%m%y}{serial:04d}"


def _quarter(day: date) -> tuple[int, int]:
    return day.year, (day.month - 1) // 3 + 1


def _previous(year: int, quarter: int, back: int) -> tuple[int, int]:
    index = year * 4 + quarter - 1 - back
    return index // 4, index % 4 + 1


def _period(year: int, quarter: int) -> str:
    return f"Tahap {quarter} {year}"


def _past_date(year: int, quarter: int, day_of_month: int) -> date:
    """Past tahap were paid in the second month of their quarter."""
    return date(year, (quarter - 1) * 3 + 2, day_of_month)


def _row(
    nik: str, program: str, period: str, amount: int, channel: str, when: date, status: str
) -> dict[str, str]:
    return {
        "nik": nik,
        "program": program,
        "period": period,
        "amount": str(amount),
        "channel": channel,
        "scheduled_date": when.isoformat(),
        "status": status,
    }


def _pbi_jk_row(nik: str, today: date) -> dict[str, str]:
    """PBI-JK: the year's premium, paid to BPJS Kesehatan, so no channel."""
    return _row(
        nik,
        "PBI-JK",
        f"Iuran {today.year}",
        PBI_JK_PREMIUM_PER_YEAR,
        "",
        date(today.year, 1, 2),
        Status.TERSALUR,
    )


def _recipient_row(
    nik: str,
    name: str,
    birth_date: date,
    phone: str,
    district: District,
    village: str,
    address: str,
    smartphone: bool,
) -> dict[str, str]:
    return {
        "nik": nik,
        "name": name,
        "birth_date": birth_date.isoformat(),
        "phone": phone,
        "province": district.prefix[:2],
        "regency": district.regency,
        "district": district.name,
        "village": village,
        "address": address,
        "has_smartphone": "true" if smartphone else "false",
    }


def _local_phone(e164: str | None) -> str:
    """The way people write a number on a form: 0812-1000-0001."""
    if e164 is None:
        return ""
    national = "0" + e164[3:]
    return f"{national[:4]}-{national[4:8]}-{national[8:]}"


def _persona_data(today: date) -> DemoData:
    """The personas' rows; dates are relative to `today` so the demo never goes stale."""
    year, quarter = _quarter(today)
    past = [_previous(year, quarter, back) for back in (4, 3, 2, 1)]
    data = DemoData()
    for persona in DEMO_PERSONAS:
        if not persona.registered:
            continue
        prefix, village, address = persona.home
        birth_date = parse_nik(persona.nik, today=today).birth_date
        data.recipients.append(
            _recipient_row(
                persona.nik,
                persona.name,
                birth_date,
                _local_phone(persona.phone),
                _DISTRICTS[prefix],
                village,
                address,
                persona.smartphone,
            )
        )
        for plan in persona.plans:
            if plan.history_day is not None:
                data.disbursements += [
                    _row(
                        persona.nik,
                        plan.program,
                        _period(y, q),
                        plan.amount,
                        plan.channel,
                        _past_date(y, q, plan.history_day),
                        Status.TERSALUR,
                    )
                    for y, q in past
                ]
            if plan.now is not None:
                days, status = plan.now
                when = today + timedelta(days=days)
                data.disbursements.append(
                    _row(
                        persona.nik,
                        plan.program,
                        _period(year, quarter),
                        plan.amount,
                        plan.channel,
                        when,
                        status,
                    )
                )
        if persona.pbi_jk:
            data.disbursements.append(_pbi_jk_row(persona.nik, today))
    return data


def _weighted(rng: random.Random, table: Iterable[tuple[str, int]]) -> str:
    choices, weights = zip(*table)
    return rng.choices(choices, weights=weights)[0]


def _phone_as_typed(rng: random.Random, national: str) -> str:
    """Numbers as they arrive in real extracts: 08…, +628…, 628… or with dashes."""
    style = rng.random()
    if style < 0.5:
        return national
    if style < 0.7:
        return "+62" + national[1:]
    if style < 0.8:
        return "62" + national[1:]
    return f"{national[:4]}-{national[4:8]}-{national[8:]}"


def generate(
    recipients: int = DEFAULT_RECIPIENTS, seed: int = DEMO_SEED, today: date | None = None
) -> DemoData:
    """Generate the personas plus `recipients` random households and their payments."""
    today = today or demo_today()
    rng = random.Random(seed)
    data = _persona_data(today)
    used_niks = {persona.nik for persona in DEMO_PERSONAS}
    used_phones = {
        _local_phone(persona.phone).replace("-", "") for persona in DEMO_PERSONAS if persona.phone
    }
    serials: dict[str, int] = {}
    year, quarter = _quarter(today)
    past = [_previous(year, quarter, back) for back in (4, 3, 2, 1)]
    weights = [profile.share for profile in PROFILES]
    for _ in range(recipients):
        profile = rng.choices(PROFILES, weights=weights)[0]
        district = rng.choice(profile.districts)
        female = rng.random() < 0.75
        first, last = profile.female if female else profile.male
        name = f"{rng.choice(first)} {rng.choice(last)}"
        birth_date = date(today.year - rng.randint(22, 85), rng.randint(1, 12), rng.randint(1, 28))
        stem = make_nik(district.prefix, birth_date, female, 0)[:12]
        nik = ""
        while not nik or nik in used_niks:
            serials[stem] = serials.get(stem, 0) + 1
            nik = f"{stem}{serials[stem]:04d}"
        used_niks.add(nik)
        phone, smartphone = "", False
        if rng.random() < 0.70:
            national = ""
            while not national or national in used_phones:
                national = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
            used_phones.add(national)
            phone = _phone_as_typed(rng, national)
            smartphone = rng.random() < 0.6
        street, number = rng.choice(STREETS), rng.randint(1, 120)
        address = f"{street} No. {number}, RT {rng.randint(1, 12):02d}/RW {rng.randint(1, 9):02d}"
        data.recipients.append(
            _recipient_row(
                nik,
                name,
                birth_date,
                phone,
                district,
                rng.choice(district.villages),
                address,
                smartphone,
            )
        )
        data.disbursements += _household_payments(rng, nik, profile, today, past, (year, quarter))
    return data


def _household_payments(
    rng: random.Random,
    nik: str,
    profile: ProvinceProfile,
    today: date,
    past: list[tuple[int, int]],
    current: tuple[int, int],
) -> list[dict[str, str]]:
    """One household's programmes and payments: history plus this tahap's."""
    channel = _weighted(rng, profile.channels)
    programmes: list[tuple[str, int]] = []
    if rng.random() < 0.40:
        components = rng.sample(PKH_COMPONENTS, rng.randint(1, 3))
        programmes.append(("PKH", sum(components) // 4))
    if rng.random() < 0.75:
        programmes.append(("BPNT", BPNT_PER_QUARTER))
    blt = rng.random() < 0.10
    rows: list[dict[str, str]] = []
    day_of_month = rng.randint(3, 26)
    for program, amount in programmes:
        for y, q in past:
            status = Status.TERSALUR if rng.random() < 0.96 else Status.GAGAL
            when = _past_date(y, q, day_of_month)
            rows.append(_row(nik, program, _period(y, q), amount, channel, when, status))
    # This tahap is paid out over some weeks, household by household.
    when = today + timedelta(days=rng.randint(-25, 20))
    if blt:
        programmes.append(("BLT", BLT_PER_QUARTER))
    for program, amount in programmes:
        if when < today:
            status = Status.TERSALUR if rng.random() < 0.94 else Status.GAGAL
        else:
            status = Status.DIJADWALKAN if rng.random() < 0.93 else Status.DITUNDA
        rows.append(_row(nik, program, _period(*current), amount, channel, when, status))
    if rng.random() < 0.85:
        rows.append(_pbi_jk_row(nik, today))
    return rows


def _write_csv(path: Path, columns: tuple[str, ...], rows: Iterable[dict[str, str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_recipients_csv(path: Path, rows: Iterable[dict[str, str]]) -> Path:
    return _write_csv(path, RECIPIENT_COLUMNS, rows)


def write_disbursements_csv(path: Path, rows: Iterable[dict[str, str]]) -> Path:
    return _write_csv(path, DISBURSEMENT_COLUMNS, rows)


def seed_demo(
    db: Database, recipients: int = DEFAULT_RECIPIENTS, today: date | None = None
) -> tuple[ImportReport, ImportReport]:
    """Load the demo data set through the importer, as an operator would (idempotent)."""
    data = generate(recipients=recipients, today=today)
    with tempfile.TemporaryDirectory(prefix="bansos-demo-") as tmp:
        recipients_csv = write_recipients_csv(Path(tmp) / "recipients.csv", data.recipients)
        disbursements_csv = write_disbursements_csv(
            Path(tmp) / "disbursements.csv", data.disbursements
        )
        return import_recipients(db, recipients_csv), import_disbursements(db, disbursements_csv)
