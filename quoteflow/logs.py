"""Structured logs without personal data.

Every record goes through :class:`PersonalDataFilter`, which masks e-mail
addresses wherever they appear (message or extra fields), so a careless
``log.info("sent to %s", email)`` cannot leak a customer's address into a log
aggregator. JSON output is one object per line for machines; console output is
``key=value`` for people.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

from quoteflow.kafkalog import LibraryChatterFilter
from quoteflow.settings import LogSettings

EMAIL = re.compile(
    r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-])[A-Za-z0-9.-]*(\.[A-Za-z]{2,})"
)

#: Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def mask_email(text: str) -> str:
    """``jane.doe@example.com`` -> ``j***@e***.com``: enough to tell two apart, not to mail."""
    return EMAIL.sub(r"\1***@\2***\3", text)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _mask(value: Any) -> Any:
    """Mask strings anywhere inside extra fields (dicts, lists, tuples)."""
    if isinstance(value, str):
        return mask_email(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


class PersonalDataFilter(logging.Filter):
    """Masks e-mail addresses in the message, extra fields and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_email(record.getMessage())
        record.args = None
        for key, value in _fields(record).items():
            setattr(record, key, _mask(value))
        if record.exc_info and not record.exc_text:
            # Exception messages often quote the offending value; format once, masked.
            record.exc_text = mask_email(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            entry["exc"] = record.exc_text or mask_email(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        line = f"{line} {extras}" if extras else line
        if record.exc_info:
            line += "\n" + (record.exc_text or mask_email(self.formatException(record.exc_info)))
        return line


#: Libraries whose INFO is per-request chatter.
NOISY_LOGGERS = ("httpx", "httpx2", "httpcore", "urllib3")


def configure_logging(settings: LogSettings) -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else ConsoleFormatter())
    # Chatter first: a line it drops is not worth masking.
    handler.addFilter(LibraryChatterFilter(logging.getLevelName(settings.level)))
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_quoteflow", False)]:
        root.removeHandler(old)
    handler._quoteflow = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.level)
    # HTTP clients log a line per request at INFO (the registry client's every
    # lookup); at our INFO that drowns what quoteflow says. DEBUG still shows them.
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
