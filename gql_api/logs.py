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


class JsonFormatter(logging.Formatter):
    _RESERVED = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or current_request_id(),
        }
        for key, value in vars(record).items():
            if key not in self._RESERVED and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
