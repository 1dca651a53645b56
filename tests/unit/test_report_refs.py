import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.conversation.keywords import keyword_payload
from bot.reports.refs import (
    ALPHABET,
    PREFIXES,
    kind_of_reference,
    new_reference,
    normalise_reference,
)
from bot.reports.models import ReportKind

REFERENCE_RE = re.compile(r"(USL|SGH|ADU)-\d{8}-[A-Z2-9]{4}")


def test_alphabet_has_no_look_alikes():
    assert not set("0O1I") & set(ALPHABET)
    assert len(set(ALPHABET)) == len(ALPHABET) == 32


@pytest.mark.parametrize(
    "kind, prefix",
    [(ReportKind.USUL, "USL"), (ReportKind.SANGGAH, "SGH"), (ReportKind.PENGADUAN, "ADU")],
)
def test_reference_format_per_kind(kind, prefix):
    reference = new_reference(kind, datetime(2026, 11, 23, 3, 0, tzinfo=timezone.utc))
    assert reference.startswith(f"{prefix}-20261123-")
    assert kind_of_reference(reference) == kind


@pytest.mark.parametrize(
    "utc, day",
    [
        # 16:59 UTC is 23:59 WIB, 17:00 UTC is already the next day in Jakarta.
        (datetime(2026, 11, 23, 16, 59, tzinfo=timezone.utc), "20261123"),
        (datetime(2026, 11, 23, 17, 0, tzinfo=timezone.utc), "20261124"),
        (datetime(2026, 11, 24, 1, 0, tzinfo=timezone(timedelta(hours=9))), "20261123"),
    ],
)
def test_reference_date_is_the_day_in_wib(utc, day):
    assert new_reference(ReportKind.PENGADUAN, utc).split("-")[1] == day


def test_reference_needs_an_aware_time():
    with pytest.raises(ValueError):
        new_reference(ReportKind.USUL, datetime(2026, 11, 23, 3, 0))


def test_injected_random_source_picks_the_characters():
    draws = iter([0, 1, 30, 31])
    reference = new_reference(
        ReportKind.USUL, datetime(2026, 1, 2, tzinfo=timezone.utc), lambda n: next(draws)
    )
    assert reference == "USL-20260102-AB89"


@given(
    kind=st.sampled_from(ReportKind.ALL),
    when=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(timezone.utc)
    ),
)
def test_every_reference_is_well_formed_and_survives_retyping(kind, when):
    reference = new_reference(kind, when)
    assert REFERENCE_RE.fullmatch(reference)
    assert reference.startswith(PREFIXES[kind])
    assert set(reference[-4:]) <= set(ALPHABET)
    assert normalise_reference(reference) == reference
    assert normalise_reference(reference.lower().replace("-", "")) == reference
    assert normalise_reference(" " + reference.replace("-", " ").lower() + " ") == reference
    # The keyword parser and this module agree on what a reference is.
    assert keyword_payload(f"TIKET {reference.lower()}") == (
        '/check_ticket{"ticket_ref": "' + reference + '"}'
    )


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("ADU-20261123-ABCD", "ADU-20261123-ABCD"),
        ("adu-20261123-abcd", "ADU-20261123-ABCD"),
        ("ADU20261123ABCD", "ADU-20261123-ABCD"),
        ("usl 20261123 k7mz", "USL-20261123-K7MZ"),
        ("SGH--20261123--XY23", "SGH-20261123-XY23"),
        ("ADU-20261123-ABC0", None),
        ("ADU-20261123-ABCI", None),
        ("ADU-2026112-ABCD", None),
        ("ADU-20261123-ABCDE", None),
        ("XYZ-20261123-ABCD", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_reference(typed, expected):
    assert normalise_reference(typed) == expected
