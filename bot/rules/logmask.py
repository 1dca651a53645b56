"""Logging that never writes a whole NIK, as text lines or as JSON lines.

A NIK is personal data (UU PDP) and turns up in log lines through citizens' own
messages, exception texts and tracebacks. The filter sits on the handler, so records
from every logger that propagates to the root are masked before anything is written.
Phone numbers are masked where they are logged (bot/rules/phone.py `mask_phone`).

LOG_FORMAT=json writes each record as one JSON object (python-json-logger) for a log
shipper, from our processes and from gunicorn alike; the same filters run first.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Any

from gunicorn.glogging import Logger as GunicornLogger
from pythonjsonlogger.json import JsonFormatter

from bot.config import load_settings
from bot.rules.nik import mask_niks

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The fields of a JSON line, besides `exc_info` and `stack_info` when a record has them.
JSON_FIELDS = ("asctime", "levelname", "name", "message")
# A URL's query string, up to the next space or quote.
_QUERY_STRING = re.compile(r"\?[^\s\"']+")
_FORMATTER = logging.Formatter()


class NikMaskingFilter(logging.Filter):
    """Rewrite a record in place so its message, exception and stack show NIKs masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            # A broken format string would make the handler dump msg and args raw;
            # keep both, masked, instead.
            message = f"{record.msg} {record.args!r}"
        record.msg = mask_niks(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_niks(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_niks(record.stack_info)
        return True


class _MaskedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs; its type marks it as already there.

    It writes to whatever `sys.stderr` is at the time of each record, so a process
    that swaps stderr later (a server, a test runner) still gets the output.
    """

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        """StreamHandler.__init__ assigns a stream; the property ignores it."""


def _masked_value(value: Any) -> Any:
    """A JSON field's value with NIKs masked; values JSON cannot hold become masked text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return {key: _masked_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_masked_value(item) for item in value]
    return mask_niks(str(value))


class MaskedJsonFormatter(JsonFormatter):
    """python-json-logger's formatter, masking every value it writes.

    Besides the message it writes every `extra=` attribute of a record, which no
    filter sees as text, and it formats a record's exception and stack afresh rather
    than reuse the texts NikMaskingFilter masked; so each field is masked on the way out.
    """

    def __init__(self) -> None:
        super().__init__(list(JSON_FIELDS), json_ensure_ascii=False)

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def, override]
        return mask_niks(str(super().formatException(ei)))

    def formatStack(self, stack_info: str) -> str:
        return mask_niks(super().formatStack(stack_info))

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: _masked_value(value) for key, value in super().process_log_record(log_data).items()}


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter LOG_FORMAT names: "text" lines or "json" lines; a typo stops the start."""
    if log_format == "json":
        return MaskedJsonFormatter()
    if log_format == "text":
        return logging.Formatter(LOG_FORMAT)
    raise ValueError(f"LOG_FORMAT must be text or json, not {log_format!r}")


def configure_logging(level: str = "INFO", log_format: str | None = None) -> None:
    """Send every log record to stderr with NIKs masked, as LOG_FORMAT says (default:
    the setting); calling it again only sets the level and the format.

    Handlers someone else already put on the root (a server's, a test runner's) get
    the filter too, so no handler on the root writes a whole NIK.
    """
    root = logging.getLogger()
    root.setLevel(level.upper())
    formatter = make_formatter(log_format or load_settings().log_format)
    ours = [handler for handler in root.handlers if isinstance(handler, _MaskedStderrHandler)]
    if not ours:
        ours = [_MaskedStderrHandler()]
        root.addHandler(ours[0])
    for handler in ours:
        handler.setFormatter(formatter)
    for handler in root.handlers:
        if not any(isinstance(existing, NikMaskingFilter) for existing in handler.filters):
            handler.addFilter(NikMaskingFilter())


class QueryStringFilter(logging.Filter):
    """Cut query strings out of a record: Kannel's callbacks carry the sender's number
    (`from=`) and, in get-url mode, the whole message (`text=`) in theirs, and gunicorn
    writes a failed request's URI into its error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            message = f"{record.msg} {record.args!r}"
        record.msg = _QUERY_STRING.sub("?...", message)
        record.args = None
        return True


class MaskedGunicornLogger(GunicornLogger):
    """gunicorn's error and access logs without query strings and with NIKs masked.

    gunicorn's loggers do not propagate to the root, so configure_logging never sees
    them; gunicorn.conf.py names this class (its access format also leaves the query
    string and the referrer out).
    """

    def setup(self, cfg) -> None:  # type: ignore[no-untyped-def]
        super().setup(cfg)
        log_format = load_settings().log_format
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                if log_format != "text":
                    handler.setFormatter(make_formatter(log_format))
                if not any(isinstance(existing, NikMaskingFilter) for existing in handler.filters):
                    handler.addFilter(QueryStringFilter())
                    handler.addFilter(NikMaskingFilter())
