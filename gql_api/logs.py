"""Structured JSON logs carrying the request id of the request being served."""

from __future__ import annotations

import itertools
import json
import logging
import os
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

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


class JsonFormatter(logging.Formatter):
    """One JSON object per line; long values are cut in the middle (head and tail kept)."""

    _RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": _capped(record.getMessage()),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in vars(record).items():
            if key not in self._RESERVED and key not in entry:
                entry[key] = _capped_value(value)
        if record.exc_info:
            entry["exception"] = _capped(self.formatException(record.exc_info))
        line = json.dumps(entry, ensure_ascii=False, default=str)
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


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request's URL at INFO: a webhook URL's query may carry the receiver's
    # token. Webhook attempts are recorded (and logged) by the service itself instead.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
