"""Leak scan: no secret a test was handed may be found where it should not be.

Every secret the suite creates reaches it through an HTTP response (`secret`, `token`,
`accessToken`, `refreshToken`, `invitationToken`) or is sent by it (passwords, PG credentials
the catalog marks secret). Every httpx client of the test process is watched (the `client`
fixture's, a test's own, those talking to `serve` subprocesses), so after each test the scan
looks for each secret in:
- the test's database: the SQLite file and its -wal as raw bytes; on PostgreSQL every row of
  every table cast to text, or a `pg_dump` of a database a test made for its server processes;
- every response body (and its headers) after the one that handed it over, and the body of
  every request the app sends out (webhooks: any request not to `/graphql`);
- every log record of the test process (gql_api at DEBUG) and every line the test's server,
  worker and CLI subprocesses wrote.
A hit fails the test, naming the secret by its first 6 characters only. At the end of the
session every secret of the session is looked for in a `pg_dump` of the shared PostgreSQL
test database and in the PostgreSQL server's own log (a constraint violation logs the values
it refused). The figures are printed after the run (`leak scan:` line) from one file per
pytest process, because xdist runs the tests in several.
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from tests.pg_server import PostgresServer
from tests.support import PASSWORD

RESPONSE_KEYS = frozenset({"secret", "token", "accessToken", "refreshToken", "invitationToken"})
REQUEST_KEYS = frozenset({"password", "newPassword", "currentPassword"})
MIN_LENGTH = 8  # shorter strings would match by chance


@cache
def secret_credential_keys() -> frozenset[str]:
    """Credential keys the PG catalog marks secret (no key is secret for one PG and not another)."""
    keys: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("secret") is True and isinstance(node.get("key"), str):
                keys.add(node["key"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(resources.files("gql_api.pg_catalog").joinpath("catalog.json").read_text()))
    return frozenset(keys)


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
class Figures:
    """What one pytest process scanned, summed over its tests."""

    tests: int = 0
    secrets: int = 0
    responses: int = 0
    log_records: int = 0
    subprocess_outputs: int = 0
    database_snapshots: int = 0
    pg_dumps: int = 0
    bytes_scanned: int = 0
    hits: int = 0


@dataclass
class Session:
    figures: Figures = field(default_factory=Figures)
    secrets: dict[str, str] = field(default_factory=dict)  # value -> label
    found: list[str] = field(default_factory=list)  # hits outside any test, reported at the end


SESSION = Session()


@dataclass
class LeakScan:
    secrets: dict[str, Secret] = field(default_factory=dict)
    bodies: list[bytes] = field(default_factory=list)
    records: _Records = field(default_factory=_Records)
    public: set[str] = field(default_factory=set)  # strings sent as ordinary input
    outputs: list[tuple[str, bytes]] = field(default_factory=list)  # subprocess logs
    databases: list[tuple[str, bytes]] = field(default_factory=list)  # pg_dumps of own databases
    database_url: str | None = None  # set by the database_url fixture
    postgresql: list[tuple[str, bytes]] | None = None  # read by the app fixture before it closes

    def add(self, value: object, origin: str, handed_at: int = -1) -> None:
        if isinstance(value, str) and len(value) >= MIN_LENGTH and value not in self.secrets:
            self.secrets[value] = Secret(value, origin, handed_at)

    def on_request(self, request: httpx.Request) -> None:
        try:
            content = request.content
        except httpx.RequestNotRead:  # a streamed body: the tests that stream send no secret
            return
        if request.url.path != "/graphql":
            # Not the test calling the API: a webhook the app sends, an event published. Its
            # body is looked for like a response body (its headers may carry the test's own
            # credentials, to /metrics say).
            self.bodies.append(content)
        elif content[:1] in (b"{", b"["):  # JSON: what it sends is secret or ordinary data
            self._walk(_json(content), "request", -1, request=True)

    def on_response(self, response: httpx.Response) -> None:
        body = response.content
        index = len(self.bodies)
        self.bodies.append(_headers(response.headers) + body)
        if b'ecret"' in body or b'oken"' in body:
            self._walk(_json(body), "response", index, request=False)

    def _walk(self, node: Any, origin: str, index: int, *, request: bool) -> None:
        if isinstance(node, dict):
            secret_credential = request and node.get("key") in secret_credential_keys()
            for key, value in node.items():
                if request and key in RESPONSE_KEYS:
                    continue  # a token sent back (or forged): a secret only if it was handed
                if key in (REQUEST_KEYS if request else RESPONSE_KEYS):
                    self.add(value, f"{origin} {key}", index)
                elif secret_credential and key == "value":
                    self.add(value, f"credential {node['key']}", index)
                else:
                    self._walk(value, origin, index, request=request)
        elif isinstance(node, list):
            for item in node:
                self._walk(item, origin, index, request=request)
        elif request and isinstance(node, str):
            self.public.add(node)

    def hits(self, database: list[tuple[str, bytes]]) -> list[str]:
        """Where each secret was found that it should not be."""
        found: list[str] = []
        places = [*database, *self.databases, *self.outputs]
        for secret in self.secrets.values():
            if secret.handed_at == -1 and secret.value in self.public:
                continue  # the test sent it as a secret and as ordinary data (a name, a MID)
            needles = _needles(secret.value)
            for where, content in places:
                if any(n in content for n in needles):
                    found.append(f"{secret.label} in {where}")
            for index, body in enumerate(self.bodies):
                if index > secret.handed_at and any(n in body for n in needles):
                    found.append(f"{secret.label} in response body #{index}")
            for logger, line in self.records.lines:
                if secret.value in line:
                    found.append(f"{secret.label} in a log record of {logger}")
        return found

    def conclude(self, database: list[tuple[str, bytes]]) -> list[str]:
        """The test's scan, counted in the session's figures: what `hits` finds."""
        found = self.hits(database)
        places = [*database, *self.databases, *self.outputs]
        figures = SESSION.figures
        figures.tests += 1
        figures.secrets += len(self.secrets)
        figures.responses += len(self.bodies)
        figures.log_records += len(self.records.lines)
        figures.subprocess_outputs += len(self.outputs)
        figures.database_snapshots += 1 if self.database_url else 0
        figures.pg_dumps += len(self.databases)
        figures.bytes_scanned += sum(len(c) for _, c in places) + sum(map(len, self.bodies))
        figures.hits += len(found)
        for secret in self.secrets.values():
            SESSION.secrets.setdefault(secret.value, secret.label)
        return found


_current: LeakScan | None = None


def record_output(where: str, content: bytes) -> None:
    """What a subprocess of the running test wrote (its log, stdout or stderr). Outside a test
    (a module fixture's teardown) it is looked for every secret of the session so far."""
    if _current is not None:
        _current.outputs.append((where, content))
    else:
        SESSION.figures.subprocess_outputs += 1
        _scan_late(where, content)


def record_database(server: PostgresServer, name: str) -> None:
    """A `pg_dump` of database `name`, made by the running test (or a module fixture, see
    record_output) for its server processes."""
    dump = (f"pg_dump of {name}", pg_dump(server, name))
    if _current is not None:
        _current.databases.append(dump)
    else:
        SESSION.figures.pg_dumps += 1
        _scan_late(*dump)


def _scan_late(where: str, content: bytes) -> None:
    found = [
        f"{label} in {where}"
        for value, label in SESSION.secrets.items()
        if any(n in content for n in _needles(value))
    ]
    SESSION.figures.bytes_scanned += len(content)
    SESSION.figures.hits += len(found)
    SESSION.found.extend(found)


def pg_dump(server: PostgresServer, name: str) -> bytes:
    result = subprocess.run(
        [
            str(server.bin_dir / "pg_dump"),
            "--host=127.0.0.1",
            f"--port={server.port}",
            "--username=postgres",
            "--no-password",
            name,
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return result.stdout


def _headers(headers: httpx.Headers) -> bytes:
    return b"".join(name + b": " + value + b"\n" for name, value in headers.raw)


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except (ValueError, RecursionError):  # not JSON, or crafted too deep (a test of ours)
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


def final_scan(server: PostgresServer) -> list[str]:
    """Every secret of the session in a pg_dump of the shared test database and the server log."""
    places = [("pg_dump of postgres", pg_dump(server, "postgres"))]
    log = server.root / "log"
    if log.exists():
        places.append(("the PostgreSQL server log", log.read_bytes()))
    found = []
    for value, label in SESSION.secrets.items():
        for where, content in places:
            if any(n in content for n in _needles(value)):
                found.append(f"{label} in {where}")
    figures = SESSION.figures
    figures.pg_dumps += 1
    figures.bytes_scanned += sum(len(c) for _, c in places)
    figures.hits += len(found)
    SESSION.found.extend(found)
    return found


def write_figures(folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    figures = asdict(SESSION.figures) | {"distinct_secrets": len(SESSION.secrets)}
    (folder / f"{name}.json").write_text(json.dumps({"figures": figures, "found": SESSION.found}))


def found_outside_tests(folder: Path) -> list[str]:
    """Hits of every pytest process that no test failed for (module fixtures, the end scan)."""
    return [hit for path in sorted(folder.glob("*.json")) for hit in _read(path)["found"]]


def _read(path: Path) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(path.read_text())
    return content


def summary_line(folder: Path) -> str | None:
    """The figures of every pytest process of the run, summed: None when nothing was scanned."""
    totals: dict[str, int] = {}
    for path in sorted(folder.glob("*.json")):
        for key, value in _read(path)["figures"].items():
            totals[key] = totals.get(key, 0) + int(value)
    if not totals.get("tests"):
        return None
    return (
        f"leak scan: {totals['tests']} tests, {totals['distinct_secrets']} secrets looked for in "
        f"{totals['database_snapshots']} database snapshots, {totals['pg_dumps']} pg_dumps, "
        f"{totals['responses']} response bodies, {totals['log_records']} log records and "
        f"{totals['subprocess_outputs']} subprocess outputs "
        f"({totals['bytes_scanned'] / 1e9:.2f} GB): {totals['hits']} found"
    )


def _watch_httpx(scan: LeakScan, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request and response of every httpx client in this process goes past the scan.

    A streamed response is left alone: reading it here would take it from its reader.
    """
    async_send = httpx.AsyncClient.send
    sync_send = httpx.Client.send

    async def send_async(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> httpx.Response:
        scan.on_request(request)
        response = await async_send(self, request, **kwargs)
        if not kwargs.get("stream"):
            scan.on_response(response)
        return response

    def send_sync(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        scan.on_request(request)
        response = sync_send(self, request, **kwargs)
        if not kwargs.get("stream"):
            scan.on_response(response)
        return response

    monkeypatch.setattr(httpx.AsyncClient, "send", send_async)
    monkeypatch.setattr(httpx.Client, "send", send_sync)


@pytest.fixture
def leak_scan() -> Iterator[LeakScan]:
    global _current
    scan = LeakScan()
    scan.add(PASSWORD, "tests.support.PASSWORD")
    root = logging.getLogger()
    ours = logging.getLogger("gql_api")
    level = ours.level
    ours.setLevel(logging.DEBUG)  # every line the app can write, whatever the root level
    root.addHandler(scan.records)
    _current = scan
    try:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _watch_httpx(scan, monkeypatch)
            yield scan
    finally:
        _current = None
        root.removeHandler(scan.records)
        ours.setLevel(level)
