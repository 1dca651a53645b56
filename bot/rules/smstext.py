"""SMS length and character rules in one place (GSM 03.38).

One character outside the GSM-7 alphabet turns a whole SMS into UCS-2, which cuts a
segment from 160 to 70 characters, and recipients on feature phones may pay per
segment. Replies are written once for both channels; this module makes them SMS-safe
and short enough (never more than three segments) on the way out.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# The escape character (0x1B) is left out: it introduces the extension table and is
# not a character a text can carry by itself.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "\f^{}\\[~]|€"

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67
WHATSAPP_MAX_CHARS = 1600
ELLIPSIS = "..."

_BASIC = frozenset(GSM7_BASIC)
_EXTENDED = frozenset(GSM7_EXTENDED)
_GSM7 = _BASIC | _EXTENDED
# Every reply runs these: the regular expression engine walks a text in C, where a
# loop over its characters in Python cost more than the rest of the reply's rules.
_OUTSIDE_GSM7 = re.compile(f"[^{re.escape(GSM7_BASIC + GSM7_EXTENDED)}]")
_EXTENDED_CHARS = re.compile(f"[{re.escape(GSM7_EXTENDED)}]")

_REPLACEMENTS = str.maketrans(
    {
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
        "\u00b4": "'", "`": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
        "\u00ab": '"', "\u00bb": '"',
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2015": "-", "\u2212": "-", "\u2022": "-", "\u00b7": "-",
        "\u2026": ELLIPSIS,
        "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\t": " ",
        "\u2044": "/", "\u00d7": "x",
        "\u200b": None, "\u200c": None, "\u200d": None, "\ufeff": None,
    }
)
_CODE_BLOCK = re.compile(r"```(.*?)```", re.DOTALL)
# WhatsApp emphasis: a marker pair hugging non-space text, not inside a word
# ("nama_file", "5*3*2" and masked names like "S*** W****" stay as they are).
_EMPHASIS = [
    re.compile(
        rf"(?<![\w{m}]){m}(?=[^\s{m}])(.+?)(?<=[^\s{m}]){m}(?![\w{m}])"
    )
    for m in (re.escape(marker) for marker in ("*", "_", "~"))
]
_LINE_BREAKS = re.compile(r"\r\n|[\r\f\v\x85\u2028\u2029]")
_SPACE_RUNS = re.compile(r"[ ]{2,}")
_TRAILING_SPACES = re.compile(r"[ ]+\n")
_BLANK_LINE_RUNS = re.compile(r"\n{3,}")


def is_gsm7(text: str) -> bool:
    """Whether text fits the GSM-7 alphabet, basic or extended."""
    return _OUTSIDE_GSM7.search(text) is None


def _count_parts(costs: list[int], single: int, part: int) -> int:
    """Count segments, never splitting a multi-unit character across two parts."""
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part:
            parts, used = parts + 1, 0
        used += cost
    return parts


def segment_count(text: str) -> int:
    """How many SMS segments text needs; an empty text still costs one."""
    if is_gsm7(text):
        if len(text) + len(_EXTENDED_CHARS.findall(text)) <= GSM7_SINGLE:
            return 1
        costs = [2 if ch in _EXTENDED else 1 for ch in text]
        return _count_parts(costs, GSM7_SINGLE, GSM7_PART)
    # Characters beyond the Basic Multilingual Plane (most emoji) take two UTF-16 units.
    costs = [len(ch.encode("utf-16-le", "surrogatepass")) // 2 for ch in text]
    return _count_parts(costs, UCS2_SINGLE, UCS2_PART)


def _strip_markdown(text: str) -> str:
    text = _CODE_BLOCK.sub(r"\1", text)
    for pattern in _EMPHASIS:
        text = pattern.sub(r"\1", text)
    return text


def _gsm7_char(found: re.Match[str]) -> str:
    """A character outside GSM-7 as its look-alike, or nothing."""
    ch = found.group()
    if unicodedata.category(ch)[0] == "C":
        return ""
    decomposed = unicodedata.normalize("NFKD", ch).translate(_REPLACEMENTS)
    return "".join(part for part in decomposed if part in _GSM7)


def to_gsm7(text: str) -> str:
    """Rewrite text so it goes out as GSM-7: plain letters, no emoji, no markdown.

    Newlines stay; whatever has no GSM-7 look-alike is dropped rather than forcing
    the whole message into UCS-2.
    """
    text = _LINE_BREAKS.sub("\n", text or "")
    text = _strip_markdown(text).translate(_REPLACEMENTS)
    text = _OUTSIDE_GSM7.sub(_gsm7_char, text)
    text = _TRAILING_SPACES.sub("\n", _SPACE_RUNS.sub(" ", text))
    return _BLANK_LINE_RUNS.sub("\n\n", text).strip()


def _truncate(text: str, fits: Callable[[str], bool]) -> str:
    """Longest word-boundary prefix of text, plus an ellipsis, that `fits` accepts."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(text[:middle] + ELLIPSIS):
            low = middle
        else:
            high = middle - 1
    cut = low
    boundary = max(text.rfind(" ", 0, cut + 1), text.rfind("\n", 0, cut + 1))
    if boundary > 0:
        cut = boundary
    return text[:cut].rstrip(" \n,;:-") + ELLIPSIS


def fit_segments(text: str, max_segments: int = 3) -> str:
    """Shorten text on a word boundary, ending in "...", to at most max_segments."""
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    if segment_count(text) <= max_segments:
        return text
    return _truncate(text, lambda candidate: segment_count(candidate) <= max_segments)


def format_for_channel(text: str, channel: str) -> str:
    """Prepare a reply for its channel: GSM-7 and short for SMS, bounded for WhatsApp."""
    if channel == "sms":
        return fit_segments(to_gsm7(text))
    if channel == "whatsapp":
        if len(text) <= WHATSAPP_MAX_CHARS:
            return text
        return _truncate(text, lambda candidate: len(candidate) <= WHATSAPP_MAX_CHARS)
    raise ValueError(f"unknown channel: {channel!r}")
