import pytest

from bot.rules.phone import Address, is_mobile, mask_phone, normalise_phone, parse_address

MOBILE = "+6281234567890"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("081234567890", MOBILE),
        ("6281234567890", MOBILE),
        ("+6281234567890", MOBILE),
        ("whatsapp:+6281234567890", MOBILE),
        ("+62 812-3456-7890", MOBILE),
        ("0812.3456.7890", MOBILE),
        ("  0812 3456 7890  ", MOBILE),
        ("(021) 5551234", "+62215551234"),
        ("021-5551234", "+62215551234"),
        ("+14155552671", "+14155552671"),
        ("0812", None),
        ("12", None),
        ("081234567890123", None),
        ("0812ABCDEFG", None),
        ("abc123", None),
        ("", None),
        ("   ", None),
        ("+1", None),
        ("whatsapp:", None),
    ],
)
def test_normalise_phone(raw, expected):
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+6281234567890", Address(MOBILE, True, "sms")),
        ("081234567890", Address(MOBILE, True, "sms")),
        ("whatsapp:+6281234567890", Address(MOBILE, True, "whatsapp")),
        ("WhatsApp:+62 812 3456 7890", Address(MOBILE, True, "whatsapp")),
        ("whatsapp:abc123", Address("abc123", False, "whatsapp")),
        ("whatsapp: ab c\t123\x00 ", Address("abc123", False, "whatsapp")),
        ("+1", Address("+1", False, "sms")),
        ("", Address("", False, "sms")),
        ("whatsapp:" + "x" * 100, Address("x" * 64, False, "whatsapp")),
        ("whatsapp:Siti 😀", Address("Siti😀", False, "whatsapp")),
    ],
)
def test_parse_address(raw, expected):
    assert parse_address(raw) == expected


def test_parse_address_same_person_on_every_form():
    forms = ["081234567890", "6281234567890", "+6281234567890", "whatsapp:+6281234567890"]
    assert {parse_address(form).value for form in forms} == {MOBILE}


@pytest.mark.parametrize(
    "e164, expected",
    [
        (MOBILE, True),
        ("+628123456789", True),
        ("+62215551234", False),
        ("+62812", False),
        ("abc123", False),
        ("", False),
    ],
)
def test_is_mobile(e164, expected):
    assert is_mobile(e164) is expected


@pytest.mark.parametrize(
    "e164, expected",
    [
        (MOBILE, "+62812****7890"),
        ("+628123456789", "+62812***6789"),
        ("+62215551234", "+62215**1234"),
        ("abc123xyz", "*****3xyz"),
        ("abc", "***"),
        ("", ""),
    ],
)
def test_mask_phone(e164, expected):
    assert mask_phone(e164) == expected
