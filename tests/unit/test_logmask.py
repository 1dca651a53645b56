import io
import logging

import pytest

from bot.rules.logmask import LOG_FORMAT, NikMaskingFilter, configure_logging

NIK = "3201014501900003"
MASKED = "3201********0003"


@pytest.fixture
def stream_logger():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(NikMaskingFilter())
    logger = logging.getLogger("test.logmask")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.propagate = True


@pytest.mark.parametrize(
    "msg, args",
    [
        ("lookup nik=%s", (NIK,)),
        ("lookup nik=" + NIK, ()),
        ("inbound body=%r", ("CEK 3201 0145 0190 0003",)),
        ("lookup %(nik)s", ({"nik": NIK},)),
        ("broken format %s %s", (NIK,)),
    ],
)
def test_message_is_masked(stream_logger, msg, args):
    logger, stream = stream_logger
    logger.info(msg, *args)
    output = stream.getvalue()
    assert MASKED in output
    assert NIK not in output and "3201 0145 0190 0003" not in output


def test_exception_text_is_masked(stream_logger):
    logger, stream = stream_logger
    try:
        raise ValueError(f"unknown recipient {NIK}")
    except ValueError:
        logger.exception("lookup failed")
    output = stream.getvalue()
    assert "Traceback" in output and MASKED in output
    assert NIK not in output


def _log_with_stack(logger, _nik):
    logger.info("where", stack_info=True)


def test_stack_info_is_masked(stream_logger):
    logger, stream = stream_logger
    # The stack text quotes this source line, NIK included.
    _log_with_stack(logger, "3201014501900003")
    output = stream.getvalue()
    assert "Stack (most recent call last)" in output and MASKED in output
    assert NIK not in output


@pytest.fixture
def clean_root():
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_filters = {handler: handler.filters[:] for handler in saved_handlers}
    yield root
    root.handlers[:] = saved_handlers
    for handler, filters in saved_filters.items():
        handler.filters[:] = filters
    root.setLevel(saved_level)


def test_configure_logging_masks_every_logger(clean_root, capsys):
    configure_logging("debug")
    logging.getLogger("bot.somewhere").warning("nik %s ditolak", NIK)
    err = capsys.readouterr().err
    assert "WARNING bot.somewhere: nik 3201********0003 ditolak" in err
    assert NIK not in err


def test_configure_logging_is_idempotent(clean_root):
    configure_logging()
    count = len(clean_root.handlers)
    configure_logging("WARNING")
    assert len(clean_root.handlers) == count
    assert clean_root.level == logging.WARNING


def test_caplog_sees_masked_records(clean_root, caplog):
    configure_logging()
    with caplog.at_level(logging.INFO):
        logging.getLogger("bot.x").info("cek %s", NIK)
    assert NIK not in caplog.text


def test_configure_logging_adds_the_filter_once(clean_root):
    configure_logging()
    configure_logging()
    for handler in clean_root.handlers:
        assert sum(isinstance(f, NikMaskingFilter) for f in handler.filters) == 1


def test_gunicorns_error_log_loses_query_strings_and_masks_niks(capsys: pytest.CaptureFixture[str]) -> None:
    """gunicorn writes a failed request's URI, query string and all, into its error log."""
    from gunicorn.config import Config

    from bot.rules.logmask import MaskedGunicornLogger

    config = Config()
    config.set("errorlog", "-")
    config.set("accesslog", "-")
    logger = MaskedGunicornLogger(config)
    logger.error("Error handling request %s", "/webhooks/kannel/sms?id=1&from=%2B6281234567890&text=CEK+3201015503880003")
    logger.error("NIK in a message: %s", "3201015503880003")
    written = capsys.readouterr()
    text = written.out + written.err
    assert "/webhooks/kannel/sms?..." in text and "3201********0003" in text
    for needle in ("6281234567890", "3201015503880003", "CEK"):
        assert needle not in text
