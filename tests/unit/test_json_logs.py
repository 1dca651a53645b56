"""LOG_FORMAT=json: one JSON object per line, masked as the text lines are."""
from __future__ import annotations

import json
import logging

import pytest
from gunicorn.config import Config

from bot.channels.sandbox import SandboxTransport
from bot.rules.logmask import MaskedGunicornLogger, configure_logging

NIK = "3201014501900003"
MASKED_NIK = "3201********0003"
PHONE = "+6281234567890"
MASKED_PHONE = "+62812****7890"


@pytest.fixture
def clean_root():
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved = {handler: (handler.filters[:], handler.formatter) for handler in saved_handlers}
    yield root
    root.handlers[:] = saved_handlers
    for handler, (filters, formatter) in saved.items():
        handler.filters[:] = filters
        handler.setFormatter(formatter)
    root.setLevel(saved_level)


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_our_records_are_json_lines_with_nik_and_phone_masked(clean_root, capsys):
    configure_logging("info", log_format="json")
    logging.getLogger("bot.somewhere").warning("nik %s ditolak", NIK)
    SandboxTransport().send(PHONE, "Halo", "sms")
    try:
        raise ValueError(f"unknown recipient {NIK}")
    except ValueError:
        logging.getLogger("bot.somewhere").exception("lookup failed")
    err = capsys.readouterr().err
    lines = json_lines(err)
    assert lines[0]["levelname"] == "WARNING" and lines[0]["name"] == "bot.somewhere"
    assert lines[0]["message"] == f"nik {MASKED_NIK} ditolak"
    assert any(MASKED_PHONE in str(line["message"]) for line in lines)
    assert "Traceback" in str(lines[-1]["exc_info"]) and MASKED_NIK in str(lines[-1]["exc_info"])
    assert NIK not in err and PHONE not in err and "6281234567890" not in err


def test_text_stays_the_default(clean_root, capsys):
    configure_logging("info")
    logging.getLogger("bot.somewhere").info("nik %s", NIK)
    err = capsys.readouterr().err
    assert f"INFO bot.somewhere: nik {MASKED_NIK}" in err
    with pytest.raises(json.JSONDecodeError):
        json_lines(err)


def test_gunicorns_logs_are_json_lines_without_query_strings(monkeypatch, capsys):
    monkeypatch.setenv("LOG_FORMAT", "json")
    config = Config()
    config.set("errorlog", "-")
    config.set("accesslog", "-")
    logger = MaskedGunicornLogger(config)
    logger.error("Error handling request %s", f"/webhooks/kannel/sms?from=%2B6281234567890&text=CEK+{NIK}")
    logger.error("NIK in a message: %s", NIK)
    written = capsys.readouterr()
    lines = json_lines(written.out + written.err)
    assert [line["message"] for line in lines] == [
        "Error handling request /webhooks/kannel/sms?...",
        f"NIK in a message: {MASKED_NIK}",
    ]
    assert all(line["name"] == "gunicorn.error" for line in lines)


def test_an_unknown_log_format_stops_the_start(clean_root):
    with pytest.raises(ValueError, match="LOG_FORMAT must be text or json"):
        configure_logging("info", log_format="jsno")


def test_fields_given_as_extra_are_masked_too(clean_root, capsys):
    """python-json-logger writes every `extra=` attribute; none of them shows a whole NIK."""
    configure_logging("info", log_format="json")
    logging.getLogger("bot.somewhere").warning(
        "inbound",
        extra={
            "body": f"CEK {NIK}",
            "error": ValueError(f"unknown recipient {NIK}"),
            "detail": {"niks": [NIK], "attempt": 2},
        },
    )
    err = capsys.readouterr().err
    [line] = json_lines(err)
    assert line["body"] == f"CEK {MASKED_NIK}"
    assert line["error"] == f"unknown recipient {MASKED_NIK}"
    assert line["detail"] == {"niks": [MASKED_NIK], "attempt": 2}
    assert NIK not in err
