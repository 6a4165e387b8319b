"""Leak scan: no secret a test was handed may be found where it should not be.

Every secret the suite creates reaches it through a response (`secret`, `token`,
`accessToken`, `refreshToken`, `invitationToken`) or is sent by it (`password`, ...). After each
database test the scan looks for each one in the database (the SQLite file and its -wal as raw
bytes; on PostgreSQL every row of every table cast to text), in every response body after the
one that handed it over, and in every log record of the test. A hit fails the test, naming the
secret by its first 6 characters only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from tests.support import PASSWORD

RESPONSE_KEYS = frozenset({"secret", "token", "accessToken", "refreshToken", "invitationToken"})
REQUEST_KEYS = frozenset({"password", "newPassword", "currentPassword"})
MIN_LENGTH = 8  # shorter strings would match by chance


@dataclass
class Secret:
    value: str
    origin: str
    handed_at: int  # index of the response that handed it over; -1 when the test sent it

    @property
    def label(self) -> str:
        return f"{self.value[:6]}… ({self.origin})"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The message and every extra attribute: a structured log may carry the secret in either.
        try:
            message = record.getMessage()
        except Exception:  # a broken record is not ours to judge here
            message = str(record.msg)
        self.lines.append((record.name, f"{message} {record.__dict__!r}"))


@dataclass
class LeakScan:
    secrets: dict[str, Secret] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    records: _Records = field(default_factory=_Records)
    database_url: str | None = None  # set by the database_url fixture
    postgresql: list[tuple[str, bytes]] | None = None  # read by the app fixture before it closes

    def add(self, value: object, origin: str, handed_at: int = -1) -> None:
        if isinstance(value, str) and len(value) >= MIN_LENGTH and value not in self.secrets:
            self.secrets[value] = Secret(value, origin, handed_at)

    async def on_request(self, request: httpx.Request) -> None:
        try:
            content = request.content
        except httpx.RequestNotRead:  # a streamed body: the tests that stream send no password
            return
        if b'assword"' in content:
            self._walk(_json(content), REQUEST_KEYS, "request", -1)

    async def on_response(self, response: httpx.Response) -> None:
        body = await response.aread()
        index = len(self.bodies)
        self.bodies.append(body)
        if any(key.encode() in body for key in ('ecret"', 'oken"')):
            self._walk(_json(body), RESPONSE_KEYS, "response", index)

    def _walk(self, node: Any, keys: frozenset[str], origin: str, index: int) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in keys:
                    self.add(value, f"{origin} {key}", index)
                self._walk(value, keys, origin, index)
        elif isinstance(node, list):
            for item in node:
                self._walk(item, keys, origin, index)

    def hits(self, database: list[tuple[str, bytes]]) -> list[str]:
        """Where each secret was found that it should not be."""
        found: list[str] = []
        for secret in self.secrets.values():
            needles = _needles(secret.value)
            for where, content in database:
                if any(n in content for n in needles):
                    found.append(f"{secret.label} in {where}")
            for index, body in enumerate(self.bodies):
                if index > secret.handed_at and any(n in body for n in needles):
                    found.append(f"{secret.label} in response body #{index}")
            for logger, line in self.records.lines:
                if secret.value in line:
                    found.append(f"{secret.label} in a log record of {logger}")
        return found


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _needles(value: str) -> tuple[bytes, ...]:
    raw = value.encode()
    # bytea reads back as hex in PostgreSQL's text form
    return raw, raw.hex().encode()


def sqlite_contents(path: Path) -> list[tuple[str, bytes]]:
    contents = []
    for candidate in (path, path.with_name(path.name + "-wal")):
        if candidate.exists():
            contents.append((candidate.name, candidate.read_bytes()))
    return contents


async def postgresql_contents(engine: AsyncEngine) -> list[tuple[str, bytes]]:
    """Every row of every table as PostgreSQL's text form of the row: one round trip."""
    selects = " UNION ALL ".join(
        f"SELECT '{t.name}', coalesce(string_agg(r::text, E'\\n'), '') FROM {t.name} r"
        for t in SQLModel.metadata.sorted_tables
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(text(selects))).all()
    return [(f"table {name}", str(content).encode()) for name, content in rows]


@pytest.fixture
def leak_scan() -> Iterator[LeakScan]:
    scan = LeakScan()
    scan.add(PASSWORD, "tests.support.PASSWORD")
    root = logging.getLogger()
    ours = logging.getLogger("gql_api")
    level = ours.level
    ours.setLevel(logging.DEBUG)  # every line the app can write, whatever the root level
    root.addHandler(scan.records)
    try:
        yield scan
    finally:
        root.removeHandler(scan.records)
        ours.setLevel(level)
