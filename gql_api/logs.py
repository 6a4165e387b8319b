"""Structured JSON logs carrying the request id of the request being served."""

from __future__ import annotations

import itertools
import json
import logging
import logging.config
import os
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_request_id: ContextVar[str] = ContextVar("request_id", default="-")


# Request ids need to be unique, not unguessable: a per-process random prefix and a counter
# (uuid4 asks the kernel for randomness on every request, a system call that also hands the
# GIL to the database threads).
_PROCESS_PREFIX = uuid.uuid4().hex[:16]
_sequence = itertools.count(1)


def _new_process() -> None:
    """A forked worker gets a prefix of its own (`gunicorn --preload` and the like)."""
    global _PROCESS_PREFIX, _sequence
    _PROCESS_PREFIX = uuid.uuid4().hex[:16]
    _sequence = itertools.count(1)


os.register_at_fork(after_in_child=_new_process)


def new_request_id() -> str:
    return f"{_PROCESS_PREFIX}{next(_sequence):016x}"


def set_request_id(request_id: str) -> None:
    _request_id.set(request_id)


def current_request_id() -> str:
    return _request_id.get()


MAX_FIELD_CHARS = 4096  # per message, traceback or extra value: a line stays a few KB


# JSON escapes the C0 controls (ESC is written \u001b) but leaves the C1 ones raw, and a
# terminal takes U+009B for "ESC [": a request path could colour or move an operator's screen.
_C1_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x80, 0xA0)}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with no terminal control sequence in it (every control
    character escaped); long values are cut in the middle (head and tail kept)."""

    # uvicorn's color_message repeats the message with terminal colour codes.
    _RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {
        "message",
        "asctime",
        "color_message",
    }

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": _capped(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in self._RESERVED and key not in entry:
                entry[key] = _capped_value(value)
        if record.exc_info:
            entry["exception"] = _capped(self.formatException(record.exc_info))
        line = json.dumps(entry, ensure_ascii=False, default=str).translate(_C1_ESCAPES)
        # A lone surrogate cannot be written as UTF-8: written as its \ud800 escape instead.
        return line.encode("utf-8", "backslashreplace").decode("utf-8")


def _capped(text: str) -> str:
    if len(text) <= MAX_FIELD_CHARS:
        return text
    half = MAX_FIELD_CHARS // 2
    return f"{text[:half]} …[{len(text) - 2 * half} characters cut]… {text[-half:]}"


def _capped_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _capped(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    return value if len(text) <= MAX_FIELD_CHARS else _capped(text)


# httpx logs every request's URL at INFO: a webhook URL's query may carry the receiver's
# token. Webhook attempts are recorded (and logged) by the service itself instead.
_QUIET_LOGGERS = ("httpx", "httpcore")


def logging_config(level: str) -> dict[str, Any]:
    """The logging set-up of every process (`logging.config.dictConfig`): JSON lines on stderr.

    `serve --workers N` hands it to uvicorn, which applies it in each worker process it spawns;
    one-process commands apply it themselves (configure_logging)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {name: {"level": "WARNING"} for name in _QUIET_LOGGERS},
    }


def configure_logging(level: str) -> None:
    logging.config.dictConfig(logging_config(level))
