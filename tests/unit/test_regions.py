from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.rules.regions import PROVINCES, format_date, format_local, province, zone_for_province

DISBURSEMENT = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)


def test_all_38_provinces_with_their_zones():
    assert len(PROVINCES) == 38
    assert {p.tz_label for p in PROVINCES.values()} == {"WIB", "WITA", "WIT"}
    assert all(code == p.code and len(code) == 2 for code, p in PROVINCES.items())


@pytest.mark.parametrize(
    "code, name, tz, label",
    [
        ("11", "Aceh", "Asia/Jakarta", "WIB"),
        ("31", "DKI Jakarta", "Asia/Jakarta", "WIB"),
        ("61", "Kalimantan Barat", "Asia/Jakarta", "WIB"),
        ("62", "Kalimantan Tengah", "Asia/Jakarta", "WIB"),
        ("63", "Kalimantan Selatan", "Asia/Makassar", "WITA"),
        ("65", "Kalimantan Utara", "Asia/Makassar", "WITA"),
        ("51", "Bali", "Asia/Makassar", "WITA"),
        ("53", "Nusa Tenggara Timur", "Asia/Makassar", "WITA"),
        ("73", "Sulawesi Selatan", "Asia/Makassar", "WITA"),
        ("81", "Maluku", "Asia/Jayapura", "WIT"),
        ("82", "Maluku Utara", "Asia/Jayapura", "WIT"),
        ("91", "Papua Barat", "Asia/Jayapura", "WIT"),
        ("92", "Papua Barat Daya", "Asia/Jayapura", "WIT"),
        ("94", "Papua", "Asia/Jayapura", "WIT"),
        ("95", "Papua Selatan", "Asia/Jayapura", "WIT"),
        ("96", "Papua Tengah", "Asia/Jayapura", "WIT"),
        ("97", "Papua Pegunungan", "Asia/Jayapura", "WIT"),
    ],
)
def test_province(code, name, tz, label):
    found = province(code)
    assert (found.name, found.tz, found.tz_label) == (name, tz, label)


@pytest.mark.parametrize("code", ["99", "93", "", "3", None])
def test_unknown_province(code):
    assert province(code) is None
    assert zone_for_province(code) == ZoneInfo("Asia/Jakarta")


@pytest.mark.parametrize(
    "code, zone",
    [("32", "Asia/Jakarta"), ("64", "Asia/Makassar"), ("82", "Asia/Jayapura")],
)
def test_zone_for_province(code, zone):
    assert zone_for_province(code) == ZoneInfo(zone)


@pytest.mark.parametrize(
    "moment, code, with_time, expected",
    [
        (DISBURSEMENT, "32", False, "Senin, 7 Desember 2026"),
        (DISBURSEMENT, "32", True, "Senin, 7 Desember 2026 pukul 09.00 WIB"),
        (DISBURSEMENT, "51", True, "Senin, 7 Desember 2026 pukul 10.00 WITA"),
        (DISBURSEMENT, "94", True, "Senin, 7 Desember 2026 pukul 11.00 WIT"),
        (DISBURSEMENT, None, True, "Senin, 7 Desember 2026 pukul 09.00 WIB"),
        (DISBURSEMENT.replace(tzinfo=None), "73", True, "Senin, 7 Desember 2026 pukul 10.00 WITA"),
        # 16:30 UTC is already the next day in Jayapura but not yet in Jakarta.
        (datetime(2026, 8, 16, 16, 30, tzinfo=timezone.utc), "31", True,
         "Minggu, 16 Agustus 2026 pukul 23.30 WIB"),
        (datetime(2026, 8, 16, 16, 30, tzinfo=timezone.utc), "96", True,
         "Senin, 17 Agustus 2026 pukul 01.30 WIT"),
        (datetime(2027, 1, 1, 9, 5, tzinfo=timezone(timedelta(hours=7))), "31", True,
         "Jumat, 1 Januari 2027 pukul 09.05 WIB"),
    ],
)
def test_format_local(moment, code, with_time, expected):
    assert format_local(moment, code, with_time=with_time) == expected


@pytest.mark.parametrize(
    "day, expected",
    [
        (date(2026, 3, 4), "Rabu, 4 Maret 2026"),
        (date(2026, 5, 21), "Kamis, 21 Mei 2026"),
        (date(2026, 10, 3), "Sabtu, 3 Oktober 2026"),
        (date(2026, 2, 3), "Selasa, 3 Februari 2026"),
    ],
)
def test_format_date(day, expected):
    assert format_date(day) == expected
