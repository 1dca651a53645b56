from datetime import date

import pytest

from bot.rules.nik import InvalidNik, compact_niks, find_niks, is_valid_nik, mask_name, mask_nik, mask_niks, parse_nik

TODAY = date(2026, 6, 15)


@pytest.mark.parametrize(
    "raw, birth_date, is_female",
    [
        ("3201010501900003", date(1990, 1, 5), False),
        ("3201014501900003", date(1990, 1, 5), True),
        ("3201 0145 0190 0003", date(1990, 1, 5), True),
        ("3201.0145.0190.0003", date(1990, 1, 5), True),
        ("3201-0145-0190-0003", date(1990, 1, 5), True),
        (" 3201014501900003\n", date(1990, 1, 5), True),
        ("３２０１０１０５０１９００００３", date(1990, 1, 5), False),
        ("7371137112000101", date(2000, 12, 31), True),
        ("9471022902000001", date(2000, 2, 29), False),
        ("5103011506260001", date(2026, 6, 15), False),
        # Later this year cannot be a birth date yet: an elder born in 1926.
        ("5103011607260001", date(1926, 7, 16), False),
        ("1101011708450001", date(1945, 8, 17), False),
    ],
)
def test_parse_valid_nik(raw, birth_date, is_female):
    nik = parse_nik(raw, today=TODAY)
    assert nik.birth_date == birth_date
    assert nik.is_female is is_female
    assert nik.value.isdigit() and len(nik.value) == 16
    assert is_valid_nik(raw)


def test_parse_nik_parts():
    nik = parse_nik("3201014501900003", today=TODAY)
    assert (nik.province_code, nik.regency_code, nik.district_code, nik.serial) == (
        "32", "01", "01", "0003",
    )


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("320101450190003", "NIK harus 16 angka, Bapak/Ibu mengirim 15 angka."),
        ("32010145019000031", "NIK harus 16 angka, Bapak/Ibu mengirim 17 angka."),
        ("3201 0145 0190", "NIK harus 16 angka, Bapak/Ibu mengirim 12 angka."),
        ("", "NIK belum dikirim. NIK terdiri dari 16 angka."),
        ("3201O14501900003", "NIK berisi huruf. NIK hanya terdiri dari 16 angka."),
        ("siti wulandari", "NIK berisi huruf. NIK hanya terdiri dari 16 angka."),
        ("3201/0145/0190/0003", "NIK hanya boleh berisi angka."),
        ("9901014501900003", "Kode provinsi pada NIK tidak dikenal."),
        ("0001014501900003", "Kode provinsi pada NIK tidak dikenal."),
        ("3200014501900003", "Kode wilayah pada NIK tidak valid."),
        ("3201004501900003", "Kode wilayah pada NIK tidak valid."),
        ("3201017102900003", "Tanggal lahir pada NIK tidak valid."),
        ("3201013102900003", "Tanggal lahir pada NIK tidak valid."),
        ("3201013202900003", "Tanggal lahir pada NIK tidak valid."),
        ("3201014001900003", "Tanggal lahir pada NIK tidak valid."),
        ("3201010001900003", "Tanggal lahir pada NIK tidak valid."),
        ("3201011513900003", "Tanggal lahir pada NIK tidak valid."),
        ("3201012902010003", "Tanggal lahir pada NIK tidak valid."),
        ("3201014501900000", "Nomor urut pada NIK tidak valid."),
    ],
)
def test_parse_invalid_nik(raw, reason):
    with pytest.raises(InvalidNik) as caught:
        parse_nik(raw, today=TODAY)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    assert not is_valid_nik(raw)


def test_birth_date_never_in_the_future():
    nik = parse_nik("3201011506260001", today=date(2026, 6, 14))
    assert nik.birth_date == date(1926, 6, 15)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("3201014501900003", "3201********0003"),
        ("3201 0145 0190 0003", "3201********0003"),
        ("320101450190003", "*************03"),
        ("abc", "*bc"),
        ("12", "**"),
        ("", ""),
    ],
)
def test_mask_nik(raw, expected):
    assert mask_nik(raw) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("nik saya 3201 0145 0190 0003", ["3201014501900003"]),
        ("CEK 3201014501900003", ["3201014501900003"]),
        ("Siti Wulandari 3201.0145.0190.0003 Jl. Melati RT 03 uang belum cair",
         ["3201014501900003"]),
        ("nik 3201014501900003 dan suami 3201011203880001.", ["3201014501900003", "3201011203880001"]),
        ("3201014501900003 081234567890", ["3201014501900003"]),
        ("hp 081234567890 nik 3201014501900003", ["3201014501900003"]),
        ("NIK:3201-0145-0190-0003, terima kasih", ["3201014501900003"]),
        ("nik 320101450190003 kurang satu", []),
        ("nomor 32010145019000031 kelebihan", []),
        ("NIK\n3201014501900003\n", ["3201014501900003"]),
        ("jumlah Rp200.000 tahap 4", []),
        ("", []),
    ],
)
def test_find_niks(text, expected):
    assert find_niks(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("CEK 3201014501900003", "CEK 3201********0003"),
        ("nik saya 3201 0145 0190 0003 ya", "nik saya 3201********0003 ya"),
        ("a=3201014501900003,b=3201.0112.0388.0001", "a=3201********0003,b=3201********0001"),
        ("hp 081234567890 nik 3201014501900003", "hp 081234567890 nik 3201********0003"),
        ("tidak ada nik", "tidak ada nik"),
        ("3201********0003", "3201********0003"),
    ],
)
def test_mask_niks(text, expected):
    assert mask_niks(text) == expected


@pytest.mark.parametrize(
    "name, expected",
    [
        ("Siti Wulandari", "S*** W********"),
        ("Budi", "B***"),
        ("Muh. Ali bin Abdullah", "M*** A** b** A*******"),
        ("I Gede Putu", "I G*** P***"),
        ("Ni Luh Ayu", "N* L** A**"),
        ("", ""),
    ],
)
def test_mask_name(name, expected):
    assert mask_name(name) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("nik saya 3201 0145 0190 0003 ya", "nik saya 3201014501900003 ya"),
        ("3201.0145.0190.0003", "3201014501900003"),
        ("no hp 0812 3456 7890", "no hp 0812 3456 7890"),
    ],
)
def test_compact_niks_writes_niks_as_plain_digits(text: str, expected: str) -> None:
    assert compact_niks(text) == expected
