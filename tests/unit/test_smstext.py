import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.rules.smstext import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    fit_segments,
    format_for_channel,
    is_gsm7,
    segment_count,
    to_gsm7,
)


def test_alphabet_sizes():
    # 128 basic code points minus the escape; ten extension characters.
    assert len(set(GSM7_BASIC)) == len(GSM7_BASIC) == 127
    assert len(set(GSM7_EXTENDED)) == len(GSM7_EXTENDED) == 10
    assert "€" in GSM7_EXTENDED and "[" in GSM7_EXTENDED and "@" in GSM7_BASIC


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Bansos PKH tahap 4 cair Rp900.000 @ BRI", True),
        ("Harga {naik} 10€ [info] ~ ^ | \\", True),
        ("É è Ñ ü à Ø ¿ ¡ § ¤ £ ¥ Δ ß\n\r", True),
        ("Halo 👋", False),
        ("“kutip”", False),
        ("tahap 4 – cair", False),
        ("á", False),
        ("`kode`", False),
        ("\x1b", False),
        ("", True),
    ],
)
def test_is_gsm7(text, expected):
    assert is_gsm7(text) is expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 459, 3),
        ("a" * 460, 4),
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("[" * 80, 1),
        ("a" * 159 + "€", 2),
        ("a" * 158 + "€", 1),
        # An escape pair is never split: 152 plain + "€" leaves one septet free.
        ("a" * 152 + "€" + "a" * 153, 3),
        ("á" * 70, 1),
        ("á" * 71, 2),
        ("á" * 134, 2),
        ("á" * 135, 3),
        ("a" * 69 + "á", 1),
        ("😀" * 35, 1),
        ("😀" * 36, 2),
        ("a" * 68 + "😀", 1),
        ("a" * 69 + "😀", 2),
    ],
)
def test_segment_count(text, expected):
    assert segment_count(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Halo Bu 👋 jadwal cair 😀", "Halo Bu jadwal cair"),
        ("“Sembako” ‘BPNT’", "\"Sembako\" 'BPNT'"),
        ("Ketik *CEK* _spasi_ ~NIK~", "Ketik CEK spasi NIK"),
        ("```CEK 3201014501900003```", "CEK 3201014501900003"),
        ("nama_file dan 5*3*2 tetap", "nama_file dan 5*3*2 tetap"),
        ("tahap 4 – 2026 — cair…", "tahap 4 - 2026 - cair..."),
        ("Rp200.000\u00a0per bulan", "Rp200.000 per bulan"),
        ("Ibu Séna di Bogóra, façade", "Ibu Séna di Bogora, facade"),
        ("Ç é É à Ñ ü", "Ç é É à Ñ ü"),
        ("baris 1\r\nbaris 2", "baris 1\nbaris 2"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("a\n\nb", "a\n\nb"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("ﬁle ½", "file 1/2"),
        ("👍", ""),
        ("", ""),
    ],
)
def test_to_gsm7(text, expected):
    assert to_gsm7(text) == expected
    assert is_gsm7(to_gsm7(text))


LONG = " ".join(["Penyaluran bansos PKH tahap empat"] * 30)


@pytest.mark.parametrize("max_segments", [1, 2, 3])
@pytest.mark.parametrize(
    "text",
    [LONG, "x" * 1000, "€" * 500, "Ibu Siti " + "á" * 300, "kata " * 200],
)
def test_fit_segments_bounded(text, max_segments):
    result = fit_segments(text, max_segments)
    assert segment_count(result) <= max_segments
    assert result.endswith("...")
    assert text.startswith(result[:-3])


def test_fit_segments_cuts_on_a_word_boundary():
    result = fit_segments(LONG, 1)
    assert result[:-3] == LONG[: len(result) - 3]
    assert LONG[len(result) - 3] == " "
    assert segment_count(result) == 1


def test_fit_segments_leaves_short_text_alone():
    assert fit_segments("Jadwal cair Senin, 7 Desember 2026.") == "Jadwal cair Senin, 7 Desember 2026."
    assert fit_segments("a" * 459) == "a" * 459


def test_fit_segments_rejects_zero():
    with pytest.raises(ValueError):
        fit_segments("halo", 0)


@pytest.mark.parametrize(
    "text, channel, expected",
    [
        ("Halo *Bu* 👋", "sms", "Halo Bu"),
        ("Halo *Bu* 👋", "whatsapp", "Halo *Bu* 👋"),
    ],
)
def test_format_for_channel(text, channel, expected):
    assert format_for_channel(text, channel) == expected


def test_format_for_channel_bounds():
    sms = format_for_channel(LONG + " 😀", "sms")
    assert is_gsm7(sms) and segment_count(sms) <= 3 and sms.endswith("...")
    whatsapp = format_for_channel(LONG * 3, "whatsapp")
    assert len(whatsapp) <= 1600 and whatsapp.endswith("...")


def test_format_for_unknown_channel():
    with pytest.raises(ValueError):
        format_for_channel("halo", "fax")


@given(st.text())
def test_any_text_becomes_safe_short_sms(text):
    gsm = to_gsm7(text)
    assert is_gsm7(gsm)
    assert segment_count(fit_segments(gsm)) <= 3


@given(st.text(), st.integers(min_value=1, max_value=5))
def test_fit_segments_never_exceeds_bound(text, max_segments):
    assert segment_count(fit_segments(text, max_segments)) <= max_segments


@pytest.mark.parametrize(
    "text",
    ["a.n. S*** W********.", "terdaftar a.n. S*** W******** (Jawa Barat)", "NIK 3201********0003"],
)
def test_masks_survive_sms_formatting(text: str) -> None:
    assert format_for_channel(text, "sms") == text
