"""Notice texts: Indonesian, GSM-7, one segment where possible, every fact in it."""
from __future__ import annotations

import pytest

from bot.notices.planning import NoticeFacts, sms_text, template_variables
from bot.notices.models import NoticeKind
from bot.rules.smstext import is_gsm7, segment_count


def facts(kind: str = NoticeKind.REMINDER, **changes: object) -> NoticeFacts:
    values: dict[str, object] = {
        "kind": kind,
        "name": "Siti Wulandari",
        "program": "PKH",
        "period": "Tahap 4 2026",
        "amount": 975_000,
        "payment_channel": "BRI",
        "day": "Kamis, 10 Desember 2026",
    }
    values.update(changes)
    return NoticeFacts(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", NoticeKind.ALL)
def test_every_kind_carries_every_fact_in_one_segment(kind: str) -> None:
    text = sms_text(facts(kind))
    assert is_gsm7(text)
    assert segment_count(text) == 1
    for part in ("S*** W********", "PKH Tahap 4 2026", "Rp975.000", "KKS Bank BRI",
                 "Kamis, 10 Desember 2026", "GRATIS, tanpa potongan"):
        assert part in text
    assert "Siti" not in text


@pytest.mark.parametrize(
    "kind, words",
    [
        (NoticeKind.REMINDER, "cair Kamis"),
        (NoticeKind.DISBURSED, "sudah cair"),
        (NoticeKind.FAILED, "gagal disalurkan"),
        (NoticeKind.POSTPONED, "ditunda dari"),
    ],
)
def test_each_kind_says_what_happened(kind: str, words: str) -> None:
    assert words in sms_text(facts(kind))


def test_post_office_is_where_to_collect() -> None:
    text = sms_text(facts(payment_channel="PT Pos"))
    assert "di Kantor Pos" in text


@pytest.mark.parametrize("kind", NoticeKind.ALL)
def test_long_names_are_shortened_to_stay_in_one_segment(kind: str) -> None:
    long = facts(
        kind,
        name="Andi Muhammad Baharuddin Syamsuddin Rahman",
        amount=2_250_000,
        payment_channel="Mandiri",
        day="Rabu, 25 November 2026",
    )
    text = sms_text(long)
    assert segment_count(text) == 1
    assert text.startswith("Bansos A***: PKH")
    assert "GRATIS, tanpa potongan" in text


def test_names_with_characters_outside_gsm7_stay_gsm7() -> None:
    text = sms_text(facts(name="Ñoman Çahyo"))
    assert is_gsm7(text)


def test_template_variables_for_whatsapp() -> None:
    assert template_variables(facts(NoticeKind.FAILED)) == {
        "1": "S*** W********",
        "2": "PKH Tahap 4 2026",
        "3": "Rp975.000",
        "4": "KKS Bank BRI",
        "5": "Kamis, 10 Desember 2026",
        "6": "Penyaluran bantuan gagal. Hubungi pendamping sosial atau 171.",
    }
