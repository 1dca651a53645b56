import pytest

from bot.reports.parsing import ParsedReport, match_category, match_proposed_for, parse_one_message
from bot.reports.models import CATEGORIES, ProposedFor, ReportKind

USUL, SANGGAH, ADU = ReportKind.USUL, ReportKind.SANGGAH, ReportKind.PENGADUAN


@pytest.mark.parametrize(
    "kind, typed, code",
    [
        (SANGGAH, "1", "meninggal"),
        (SANGGAH, "2", "pindah"),
        (SANGGAH, " 2. ", "pindah"),
        (SANGGAH, "no. 6", "asn_tni_polri"),
        (SANGGAH, "meninggal", "meninggal"),
        (SANGGAH, "sdh meninggal dunia", "meninggal"),
        (SANGGAH, "Almarhum sejak 2024", "meninggal"),
        (SANGGAH, "orangnya sudah pindah ke Batam", "pindah"),
        (SANGGAH, "keluarganya mampu, punya mobil", "mampu"),
        (SANGGAH, "tidak layak dapat bantuan", "mampu"),
        (SANGGAH, "terdaftar dua kali", "data_ganda"),
        (SANGGAH, "tdk dikenal di desa kami", "tidak_dikenal"),
        (SANGGAH, "suaminya PNS", "asn_tni_polri"),
        (SANGGAH, "anaknya polisi", "asn_tni_polri"),
        # "tidak mampu" means poor: the opposite of the "mampu" objection.
        (SANGGAH, "tidak mampu", None),
        (SANGGAH, "7", None),
        (ADU, "1", "dana_belum_diterima"),
        (ADU, "7", "lainnya"),
        (ADU, "8", None),
        (ADU, "blm cair sdh 3 bulan", "dana_belum_diterima"),
        (ADU, "dana dipotong ketua kelompok", "potongan_pungli"),
        (ADU, "ada pungli di agen", "potongan_pungli"),
        (ADU, "diminta uang rokok 20rb", "potongan_pungli"),
        (ADU, "kartu KKS dipegang pendamping", "kartu_dipegang_orang_lain"),
        (ADU, "PIN ATM diminta petugas", "kartu_dipegang_orang_lain"),
        (ADU, "kartu hilang", "kartu_hilang_rusak"),
        (ADU, "nama salah ketik", "data_salah"),
        (ADU, "agen tidak ramah", "layanan_petugas"),
        (ADU, "lainnya", "lainnya"),
        (USUL, "1", "lansia_tunggal"),
        (USUL, "nenek tinggal sendirian", "lansia_tunggal"),
        (USUL, "anaknya tunanetra", "disabilitas"),
        (USUL, "suami kena PHK", "kehilangan_pekerjaan"),
        (USUL, "rumah bocor hampir roboh", "rumah_tidak_layak"),
        (USUL, "lain-lain", "lainnya"),
        # "tunai" is not "tuna...": cash is no disability.
        (USUL, "butuh bantuan tunai", None),
        (USUL, "", None),
    ],
)
def test_match_category(kind, typed, code):
    assert match_category(kind, typed) == code


def test_every_menu_number_picks_its_category():
    for kind, choices in CATEGORIES.items():
        for number, choice in enumerate(choices, 1):
            assert match_category(kind, str(number)) == choice.code


@pytest.mark.parametrize(
    "typed, code",
    [
        ("1", ProposedFor.UNTUK_DIRI_SENDIRI),
        ("untuk saya sendiri", ProposedFor.UNTUK_DIRI_SENDIRI),
        ("keluarga kami", ProposedFor.UNTUK_DIRI_SENDIRI),
        ("2", ProposedFor.UNTUK_ORANG_LAIN),
        ("untuk tetangga saya", ProposedFor.UNTUK_ORANG_LAIN),
        ("orang lain", ProposedFor.UNTUK_ORANG_LAIN),
        ("3", None),
        ("entahlah", None),
    ],
)
def test_match_proposed_for(typed, code):
    assert match_proposed_for(typed) == code


@pytest.mark.parametrize(
    "kind, text, expected",
    [
        (
            ADU,
            "ADU Siti Aminah 3201014501900003 Kp. Sukamaju RT 02/05 Desa Cibodas dana PKH "
            "tahap 3 belum diterima sudah 2 bulan",
            ParsedReport(
                "Siti Aminah", "3201014501900003", "Kp. Sukamaju RT 02/05 Desa Cibodas",
                "dana PKH tahap 3 belum diterima sudah 2 bulan", "dana_belum_diterima",
            ),
        ),
        (
            ADU,
            "adu siti aminah 3201 0145 0190 0003 kp sukamaju rt 2/5 desa cibodas kartu kks "
            "dipegang ketua kelompok",
            ParsedReport(
                "siti aminah", "3201014501900003", "kp sukamaju rt 2/5 desa cibodas",
                "kartu kks dipegang ketua kelompok", "kartu_dipegang_orang_lain",
            ),
        ),
        (
            ADU,
            "ADU#Siti Aminah#3201014501900003#Kp Sukamaju RT 02/05#dana dipotong 50rb",
            ParsedReport(
                "Siti Aminah", "3201014501900003", "Kp Sukamaju RT 02/05",
                "dana dipotong 50rb", "potongan_pungli",
            ),
        ),
        (
            ADU,
            "Siti 3201014501900003 Jl. Melati No. 5 Kel. Sukajadi Kartu KKS hilang",
            ParsedReport(
                "Siti", "3201014501900003", "Jl. Melati No. 5 Kel. Sukajadi",
                "Kartu KKS hilang", "kartu_hilang_rusak",
            ),
        ),
        (
            SANGGAH,
            "SANGGAH Budi Santoso NIK 3201010501900003 Desa Cibodas RT.01/03 sdh meninggal dunia",
            ParsedReport(
                "Budi Santoso", "3201010501900003", "Desa Cibodas RT.01/03",
                "sdh meninggal dunia", "meninggal",
            ),
        ),
        (
            USUL,
            "USUL nama: Mbah Karto 3201010501400003 alamat: Dusun Krajan RT 01 RW 03 "
            "isi: lansia tinggal sendiri tidak ada yg merawat",
            ParsedReport(
                "Mbah Karto", "3201010501400003", "Dusun Krajan RT 01 RW 03",
                "lansia tinggal sendiri tidak ada yg merawat", "lansia_tunggal",
            ),
        ),
        (
            ADU,
            "ADU Ani 3201014501900003 dana belum cair",
            ParsedReport("Ani", "3201014501900003", None, "dana belum cair", "dana_belum_diterima"),
        ),
        (ADU, "ADU dana bpnt blm cair", ParsedReport(description="dana bpnt blm cair", category="dana_belum_diterima")),
        (ADU, "ADU", ParsedReport()),
        (ADU, "   ", ParsedReport()),
    ],
)
def test_parse_one_message(kind, text, expected):
    assert parse_one_message(kind, text) == expected


def test_found_lists_only_filled_fields():
    parsed = parse_one_message(ADU, "ADU Ani 3201014501900003 dana belum cair")
    assert parsed.found() == {
        "subject_name": "Ani",
        "subject_nik": "3201014501900003",
        "description": "dana belum cair",
        "category": "dana_belum_diterima",
    }
