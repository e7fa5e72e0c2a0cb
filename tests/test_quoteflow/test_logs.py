"""Logs mask e-mail addresses wherever they appear."""

from __future__ import annotations

import io
import json
import logging

import pytest

from quoteflow.logs import ConsoleFormatter, JsonFormatter, PersonalDataFilter, mask_email

pytestmark = pytest.mark.unit


def test_mask_email_keeps_shape_not_address() -> None:
    masked = mask_email("sent to jane.doe@example.co.uk and bob@mail.example.com")
    assert "jane.doe" not in masked and "example.co" not in masked and "bob@" not in masked
    assert masked == "sent to j***@e***.uk and b***@m***.com"


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    handler.addFilter(PersonalDataFilter())
    logger = logging.getLogger(f"test.{id(out)}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, out


def test_json_lines_mask_message_args_and_extra_fields() -> None:
    logger, out = _capture(JsonFormatter())
    logger.info("trigger for %s", "jane@example.com", extra={"to": "jane@example.com", "n": 3})
    entry = json.loads(out.getvalue())
    assert entry["msg"] == "trigger for j***@e***.com"
    assert entry["to"] == "j***@e***.com" and entry["n"] == 3
    assert entry["level"] == "info" and entry["ts"].endswith("Z")
    assert "jane@example.com" not in out.getvalue()


def test_console_format_is_key_value() -> None:
    logger, out = _capture(ConsoleFormatter())
    logger.warning("slow", extra={"ms": 12})
    assert out.getvalue().strip().endswith("slow ms=12")


def test_exceptions_and_nested_extras_are_masked() -> None:
    logger, out = _capture(JsonFormatter())
    try:
        raise ValueError("bad address bob@example.org")
    except ValueError:
        logger.exception(
            "failed", extra={"to": ["bob@example.org"], "ctx": {"e": "bob@example.org"}}
        )
    entry = json.loads(out.getvalue())
    assert "bob@example.org" not in out.getvalue()
    assert "b***@e***.org" in entry["exc"] and "ValueError" in entry["exc"]
    assert entry["to"] == ["b***@e***.org"] and entry["ctx"] == {"e": "b***@e***.org"}
