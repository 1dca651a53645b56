"""The cluster statistic: flags a planted village and not its neighbours, nothing on uniform data."""
from __future__ import annotations

import math
import random

import pytest

from bot.config import load_settings
from bot.reports.models import ComplaintCategory
from bot.reports.signal_alerts import summary_text
from bot.reports.signals import Cluster
from bot.reports.signal_stats import (
    Mention,
    Region,
    StatSettings,
    VillageCount,
    chance_text,
    named_clusters,
    point_names,
    poisson_tail,
    village_clusters,
    village_reason,
)
from bot.rules.smstext import format_for_channel, is_gsm7, segment_count

LEVY = ComplaintCategory.POTONGAN_PUNGLI
WATCHED_CATEGORIES = (LEVY, ComplaintCategory.KARTU_DIPEGANG_ORANG_LAIN, ComplaintCategory.DANA_BELUM_DITERIMA)
SETTINGS = StatSettings(period_days=30, baseline_days=84, min_count=3, alpha=0.01, named_min=3)


def village(name: str, period: int, baseline: int, regency: str = "Kabupaten Bandung", households: int = 100) -> VillageCount:
    return VillageCount(Region("32", regency, "Baleendah", name), LEVY, households, period, baseline)


def test_poisson_tail_matches_the_textbook_sum() -> None:
    for count, expected in ((3, 3.0), (1, 0.2), (8, 0.5), (12, 7.5)):
        direct = 1 - sum(math.exp(-expected) * expected**i / math.factorial(i) for i in range(count))
        assert math.isclose(poisson_tail(count, expected), direct, rel_tol=1e-9)
    assert poisson_tail(0, 2.0) == 1.0
    assert poisson_tail(30, 0.5) > 0  # tiny, but not rounded away


def test_the_planted_village_is_flagged_and_its_neighbours_are_not() -> None:
    counts = [village("Andir", 8, 2)] + [village(name, 1, 3) for name in ("Manggahang", "Jelekong", "Bojongmalaka", "Rancamanyar")]
    clusters = village_clusters(counts, SETTINGS)
    assert [c.region.village for c in clusters] == ["Andir"]
    reason = village_reason(clusters[0], SETTINGS)
    assert reason.startswith("Desa/Kel. Andir, Kec. Baleendah, Kabupaten Bandung: 8 pelapor mengadukan potongan/pungli dalam 30 hari")
    # The chance is said with the threshold it had to beat: alpha 0.01 over the 5 pairs tested.
    assert clusters[0].tested == 5
    assert reason.endswith(
        "Peluang kebetulan sekitar 1 dalam 42.000, di bawah batas 1 dalam 500 yang dipakai karena "
        "5 pasangan desa dan jenis aduan diperiksa sekaligus."
    )


def test_a_big_village_with_many_complaints_for_its_size_is_not_a_cluster() -> None:
    """Eight complaints among ten times the households is the regency's rate, not a cluster."""
    counts = [village("Andir", 8, 20, households=1000)] + [village(n, 1, 3) for n in ("Manggahang", "Jelekong")]
    assert village_clusters(counts, SETTINGS) == []


def test_a_village_always_this_high_is_not_new() -> None:
    counts = [village("Andir", 8, 24)] + [village(n, 1, 3) for n in ("Manggahang", "Jelekong", "Bojongmalaka")]
    assert village_clusters(counts, SETTINGS) == []


def test_below_the_minimum_count_nothing_is_flagged() -> None:
    counts = [village("Andir", 2, 0)] + [village(n, 0, 0) for n in ("Manggahang", "Jelekong")]
    assert village_clusters(counts, SETTINGS) == []


def test_nothing_is_flagged_on_uniform_data() -> None:
    flat = [village(f"Desa {i}", 3, 8, regency=f"Kab {i % 4}") for i in range(40)]
    assert village_clusters(flat, SETTINGS) == []
    rng = random.Random(7)

    def poisson(mean: float) -> int:
        # Knuth's method: enough for small means.
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1

    noisy = [village(f"Desa {i}", poisson(2.0), poisson(5.6), regency=f"Kab {i % 8}") for i in range(200)]
    assert village_clusters(noisy, SETTINGS) == []


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def test_quiet_villages_count_as_tested_so_low_rates_flag_nothing() -> None:
    """500 villages in 10 regencies, 3 categories, each Poisson(0.2) a period with the
    same rate in the baseline: nothing is going on, so with alpha 0.01 for the whole
    run at most 1 of 50 periods may show a cluster (dividing alpha only by the pairs
    that reached the minimum count flagged some 60 % of them)."""
    periods_with_clusters = 0
    for seed in range(50):
        rng = random.Random(seed)
        counts = [
            VillageCount(
                Region("32", f"Kab {regency}", "Baleendah", f"Desa {number}"), category, 100,
                _poisson(rng, 0.2), _poisson(rng, 0.2 * 84 / 30),
            )
            for regency in range(10)
            for number in range(50)
            for category in WATCHED_CATEGORIES
        ]
        periods_with_clusters += bool(village_clusters(counts, SETTINGS))
    assert periods_with_clusters <= 1


def test_chance_in_words() -> None:
    assert chance_text(3e-4) == "sekitar 1 dalam 3.300"
    assert chance_text(6.4e-6) == "sekitar 1 dalam 160.000"
    assert chance_text(0.25) == "sekitar 25 dalam 100"
    assert chance_text(1e-10) == "kurang dari 1 dalam 1 miliar"


def test_names_of_agents_and_points_are_read_from_complaints() -> None:
    names = dict(point_names("Agen Sri Rahayu minta potongan 50 ribu; e-warong Berkah juga. Pendamping Bu Yuni pegang KKS"))
    assert names == {"agen sri rahayu": "Agen Sri Rahayu", "e-warong berkah": "e-Warong Berkah", "pendamping yuni": "Pendamping Yuni"}
    assert point_names("Uang dipotong di agen yang dekat pasar") == ()


def test_two_people_sharing_a_first_name_are_two_names() -> None:
    rahayu, wahyuni = point_names("agen Sri Rahayu potong 50 ribu"), point_names("agen Sri Wahyuni potong 50 ribu")
    assert rahayu[0][0] != wahyuni[0][0]
    bandung = Region("32", "Kabupaten Bandung", "Baleendah", "Andir")
    mentions = [Mention(1, 1, bandung, LEVY, rahayu), Mention(2, 2, bandung, LEVY, rahayu), Mention(3, 3, bandung, LEVY, wahyuni)]
    assert named_clusters(mentions, SETTINGS) == []


def test_generic_words_after_agen_or_petugas_are_not_names() -> None:
    for text in (
        "Dipotong petugas bank 50 ribu", "toko sembako menahan kartu", "di agen terdekat dipotong",
        "kader posyandu pegang KKS", "petugas pusat minta uang", "petugas kantor desa minta uang",
        "agen kelurahan memotong", "dipotong agen tanpa bukti",
    ):
        assert point_names(text) == (), text
    assert point_names("dipotong agen Darto tanpa bukti") == (("agen darto", "Agen Darto"),)


def test_complaints_of_unknown_regency_never_make_a_named_cluster() -> None:
    names = point_names("agen Sri potong 50 ribu")
    for where in (Region(), Region("32")):
        mentions = [Mention(i, i, where, LEVY, names) for i in range(1, 6)]
        assert named_clusters(mentions, SETTINGS) == []


def test_a_name_is_flagged_when_several_reporters_share_it_not_one_reporter_repeating() -> None:
    bandung = Region("32", "Kabupaten Bandung", "Baleendah", "Andir")
    names = point_names("agen Darto memotong Rp50.000")

    def mention(report_id: int, reporter: int) -> Mention:
        return Mention(report_id, reporter, bandung, LEVY, names)

    assert named_clusters([mention(1, 1), mention(2, 1), mention(3, 1)], SETTINGS) == []
    flagged = named_clusters([mention(1, 1), mention(2, 2), mention(3, 3)], SETTINGS)
    assert [(c.label, c.reporters, c.report_ids) for c in flagged] == [("Agen Darto", 3, frozenset({1, 2, 3}))]


def test_the_supervisors_summary_is_a_short_gsm7_sms_however_many_clusters() -> None:
    def cluster(n: int) -> Cluster:
        long_name = "Jelekong Barat Daya " * 5
        return Cluster(
            key=f"desa|{n}", kind="desa", region=Region("32", "Kabupaten Bandung", "Baleendah", long_name),
            category=LEVY, title="", reason="", report_ids=frozenset({n}), routed_to=frozenset({"3204"}),
            summary=f"Desa/Kel. {long_name}: {n} pelapor potongan/pungli dalam 30 hari, biasanya 0,4",
        )

    text = format_for_channel(summary_text([cluster(n) for n in range(3, 9)]), "sms")
    assert text.startswith("Sinyal Asisten Bansos: 6 klaster aduan baru")
    assert is_gsm7(text) and segment_count(text) <= 3


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SIGNAL_BASELINE_DAYS", "0"), ("SIGNAL_PERIOD_DAYS", "-7"), ("SIGNAL_MIN_COUNT", "0"),
     ("SIGNAL_ALPHA", "0"), ("SIGNAL_ALPHA", "1.5"), ("SIGNAL_SUMMARY_INTERVAL", "0")],
)
def test_a_signal_setting_out_of_range_stops_the_start(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        load_settings()
