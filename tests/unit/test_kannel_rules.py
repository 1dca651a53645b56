"""Kannel's own conventions: text codings, the coding we choose, delivery-report types."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.kannel import DLR_STATUSES, Coding, coding_for, decode_text, dlr_error_code
from bot.conversation.models import MessageStatus
from bot.rules.smstext import segment_count


@pytest.mark.parametrize(
    "data, coding, charset, text",
    [
        pytest.param(b"halo  apa", "0", "UTF-8", "halo  apa", id="7-bit, UTF-8"),
        pytest.param("Matur nuwun 🙏".encode(), "0", "UTF-8", "Matur nuwun 🙏", id="mo-recode UTF-8"),
        pytest.param(b"Caf\xe9", "0", "ISO-8859-1", "Café", id="7-bit, Latin-1"),
        pytest.param(b"halo", "", "", "halo", id="no coding, no charset"),
        pytest.param("halo 🙏\nx".encode("utf-16-be"), "2", "UTF-16BE", "halo 🙏\nx", id="UCS-2 with surrogates"),
        pytest.param("ꦱꦸꦒꦼꦁ".encode("utf-16-be"), "2", "", "ꦱꦸꦒꦼꦁ", id="UCS-2 without charset (Javanese)"),
        pytest.param("Bu Siti".encode("utf-16-be"), "2", "UCS-2", "Bu Siti", id="charset Python does not know"),
        pytest.param(b"\x00h\x00", "2", "UTF-16BE", "h\ufffd", id="odd UCS-2 length"),
        pytest.param(b"\xff\xfehalo", "0", "UTF-8", "\ufffd\ufffdhalo", id="bad UTF-8"),
        pytest.param(b"\x06\x05\x04\x15\x81", "1", "", "", id="8-bit binary"),
    ],
)
def test_decode_text(data: bytes, coding: str, charset: str, text: str) -> None:
    assert decode_text(data, coding, charset) == text


@given(st.text(max_size=200))
def test_any_text_survives_ucs2_as_kannel_hands_it_over(text: str) -> None:
    assert decode_text(text.encode("utf-16-be"), Coding.UCS2, "UTF-16BE") == text


@pytest.mark.parametrize(
    "text, coding",
    [
        ("Bantuan PKH cair 12 Mei. Info: balas MENU", Coding.GSM7),
        ("Harga €5, [catatan] ^_^", Coding.GSM7),
        ("Ibu Siti’s", Coding.UCS2),
        ("Baik Bu 🙏", Coding.UCS2),
        ("", Coding.GSM7),
    ],
)
def test_gsm7_unless_the_text_needs_ucs2(text: str, coding: str) -> None:
    assert coding_for(text) == coding


@pytest.mark.parametrize(
    "text, parts",
    [
        ("é" * 160, 1),
        ("€" * 80, 1),
        ("x" * 458, 3),
        ("ñ’" * 35, 1),
        ("’" * 71, 2),
        ("🙏" * 35, 1),
    ],
)
def test_our_segment_count_is_what_kannel_sends(text: str, parts: int) -> None:
    """Each case was sent through Kannel 1.4.5's sendsms to fakesmsc, which counted the parts."""
    assert segment_count(text) == parts


@pytest.mark.parametrize(
    "dlr_type, status",
    [
        (1, MessageStatus.DELIVERED),
        (2, MessageStatus.UNDELIVERED),
        (4, MessageStatus.SENT),
        (8, MessageStatus.SENT),
        (16, MessageStatus.FAILED),
    ],
)
def test_dlr_types_map_to_our_statuses(dlr_type: int, status: str) -> None:
    assert DLR_STATUSES[dlr_type] == status


@pytest.mark.parametrize(
    "reply, code",
    [
        ("NACK/0x0000000b/Invalid Destination Address", "0x0000000b"),
        ("NACK/0x00000045/", "0x00000045"),
        ("id:4bd2 sub:001 dlvrd:000 submit date:2605121000 done date:2605121200 stat:UNDELIV err:001 text:", "001"),
        ("id:4bd2 sub:001 dlvrd:001 stat:DELIVRD err:000 text:", None),
        ("ACK/", None),
        ("", None),
        (None, None),
        ("NACK/" + "9" * 40, "9" * 16),
    ],
)
def test_error_code_from_the_smsc_words(reply: str | None, code: str | None) -> None:
    assert dlr_error_code(reply) == code
