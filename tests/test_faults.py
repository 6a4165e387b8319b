"""Faults a running service must survive: PostgreSQL stopped for a while under a real
`integration-api serve` process, and a mutation whose second write the database refuses.

PostgreSQL away: every request fails masked and retryable (nothing of it committed), `/readyz`
says 503, the process stays up, and once PostgreSQL is back the service answers again by
itself with every acknowledged write still there. tests/test_database_recovery.py covers an
instant restart in-process; here the database is gone while requests arrive.

A mutation interrupted after its first write: one transaction per mutation, so the row
written first is rolled back with it; nothing partial is left for a retry to trip on.

SQLite on a full or read-only filesystem (a tmpfs the test mounts: root ignores file modes,
so nothing else refuses root's writes; skipped where mounting is not allowed): writes fail
masked (on a read-only one every request: WAL needs its -shm), the file passes
`PRAGMA integrity_check` afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from db.migrate import upgrade
from tests.conftest import IN_CI, make_settings
from tests.pg_server import PostgresServer
from tests.support import PASSWORD, STORE_CREATE, Api, GraphQLResponse, connect
from tests.support_servers import Server, serve
from tests.test_database_recovery import serving

STRICT = {"accept": "application/graphql-response+json"}
# Generous: a request must fail, not hang, while the database is away.
CLIENT_TIMEOUT_SECONDS = 30.0
RECOVERY_DEADLINE_SECONDS = 30.0

SIGN_UP = """
mutation SignUp($input: MerchantSignUpInput!) {
  merchantSignUp(input: $input) { session { token } userErrors { code } }
}
"""

STORE_NAMES = "{ merchant { stores(first: 50) { edges { node { name } } } } }"


@pytest.fixture
def own_postgresql() -> Iterator[PostgresServer]:
    """A migrated PostgreSQL server of the test's own, to stop: stopping the session's server
    would break the other tests."""
    try:
        server = PostgresServer.start()
    except FileNotFoundError as error:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {error}")
        pytest.skip(f"PostgreSQL not available: {error}")
    try:
        upgrade(server.url)
        yield server
    finally:
        server.stop()


def gql(server: Server, query: str, variables: dict[str, Any], token: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={**STRICT, "authorization": f"Bearer {token}"},
        timeout=CLIENT_TIMEOUT_SECONDS,
    )


def create_store(server: Server, token: str, name: str) -> httpx.Response:
    return gql(server, STORE_CREATE, {"name": name}, token)


def store_names(server: Server, token: str) -> set[str]:
    answer = gql(server, STORE_NAMES, {}, token)
    assert answer.status_code == 200, answer.text
    edges = answer.json()["data"]["merchant"]["stores"]["edges"]
    return {edge["node"]["name"] for edge in edges}


def ready(server: Server) -> int:
    return httpx.get(f"{server.base_url}/readyz", timeout=CLIENT_TIMEOUT_SECONDS).status_code


def assert_masked_retryable(answer: httpx.Response, port: int) -> None:
    """A 503 with Retry-After, every error INTERNAL and retryable, nothing of the failure shown."""
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"], answer.headers
    errors = answer.json()["errors"]
    assert errors, answer.text
    for error in errors:
        assert error["message"] == "Internal server error."
        assert error["extensions"]["code"] == "INTERNAL"
        assert error["extensions"]["retryable"] is True
    assert str(port) not in answer.text.replace(answer.headers["x-request-id"], "")


def test_postgresql_stopped_and_started_again(own_postgresql: PostgresServer) -> None:
    with serve(own_postgresql.url, {"WEBHOOK_WORKER": "off", "DEFAULT_LOCALE": "en"}) as server:
        # given: an owner and stores the service acknowledged
        signed_up = httpx.post(
            f"{server.base_url}/graphql",
            json={
                "query": SIGN_UP,
                "variables": {
                    "input": {
                        "merchantName": "Faults",
                        "email": "faults@example.com",
                        "password": PASSWORD,
                        "name": "Owner",
                    }
                },
            },
            timeout=CLIENT_TIMEOUT_SECONDS,
        )
        token = signed_up.json()["data"]["merchantSignUp"]["session"]["token"]
        before = {f"Before {n}" for n in range(3)}
        for name in sorted(before):
            answer = create_store(server, token, name)
            assert answer.json()["data"]["storeCreate"]["userErrors"] == [], answer.text

        # when: PostgreSQL stops, and requests arrive meanwhile
        own_postgresql.halt()
        try:
            refused_write = create_store(server, token, "While away")
            refused_read = gql(server, STORE_NAMES, {}, token)
            readiness = ready(server)
            alive = server.process.poll() is None
        finally:
            own_postgresql.resume()

        # then: each failed masked and retryable, not ready, the process still up
        assert_masked_retryable(refused_write, own_postgresql.port)
        assert_masked_retryable(refused_read, own_postgresql.port)
        assert readiness == 503
        assert alive, server.output()

        # and: with PostgreSQL back, the service answers again by itself
        deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
        while gql(server, STORE_NAMES, {}, token).status_code != 200:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)
        assert ready(server) == 200
        after = create_store(server, token, "After")
        assert after.json()["data"]["storeCreate"]["userErrors"] == [], after.text

        # and: every acknowledged write is there; the retryable one committed nothing
        names = store_names(server, token)
        assert before | {"After"} <= names
        assert "While away" not in names
        assert server.process.poll() is None


# --- a mutation interrupted after its first write -------------------------------------------

# The database refuses storeCreate's second write (its audit event), after the store row.
FAIL_AUDIT = {
    "sqlite": [
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events "
        "WHEN NEW.action = 'store.create' BEGIN SELECT RAISE(ABORT, 'injected fault'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'injected fault'; END $$",
        "CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events FOR EACH ROW "
        "WHEN (NEW.action = 'store.create') EXECUTE FUNCTION fail_audit()",
    ],
}
HEAL_AUDIT = {
    "sqlite": ["DROP TRIGGER IF EXISTS fail_audit"],
    "postgresql": [
        "DROP TRIGGER IF EXISTS fail_audit ON audit_events",
        "DROP FUNCTION IF EXISTS fail_audit()",
    ],
}


async def run_sql(database_url: str, statements: list[str]) -> None:
    async with connect(database_url) as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def stores_named(database_url: str, name: str) -> int:
    async with connect(database_url) as conn:
        found = await conn.execute(text("SELECT count(*) FROM stores WHERE name = :n"), {"n": name})
        count = found.scalar_one()
    assert isinstance(count, int)
    return count


async def test_a_mutation_failing_after_its_first_write_leaves_nothing(
    database_url: str, backend: str
) -> None:
    async with serving(make_settings(database_url, webhook_worker="off")) as (api, _):
        owner = await api.sign_up()
        await run_sql(database_url, FAIL_AUDIT[backend])
        try:
            # when: the store row is written, then its audit event is refused
            failed = await api.gql(STORE_CREATE, {"name": "Half"}, token=owner.token)
        finally:
            await run_sql(database_url, HEAL_AUDIT[backend])

        # then: a masked error with a code, and no store row left behind
        assert failed.error_codes == ["INTERNAL"], failed.body
        assert "injected" not in str(failed.body)
        assert await stores_named(database_url, "Half") == 0

        # and: sent again once the database accepts it, it succeeds, once
        again = await api.gql(STORE_CREATE, {"name": "Half"}, token=owner.token)
        assert again.data["storeCreate"]["userErrors"] == [], again.body
        assert await stores_named(database_url, "Half") == 1


# --- SQLite on a full or read-only filesystem -----------------------------------------------


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of the test's own, to fill or make read-only: only a real filesystem
    refuses root's writes (root ignores file modes)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a small filesystem here: {mounted.stderr.decode()}"
        if IN_CI:  # CI runs as root: a fault test that silently skips there proves nothing
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def fill(folder: Path) -> None:
    """Write into `folder` until its filesystem has no byte left."""
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()
            os.fsync(filler.fileno())


def remount(mount_point: Path, mode: str) -> None:
    command = ["mount", "-o", f"remount,{mode}", str(mount_point)]
    subprocess.run(command, check=True, capture_output=True)


def integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        result = db.execute("PRAGMA integrity_check").fetchone()[0]
    assert isinstance(result, str)
    return result


async def test_sqlite_on_a_full_disk_fails_writes_cleanly(
    sqlite_template: Path, small_filesystem: Path
) -> None:
    # given: a service on a SQLite file with data in it
    path = small_filesystem / "api.db"
    shutil.copyfile(sqlite_template, path)
    async with serving(make_settings(f"sqlite:///{path}", webhook_worker="off")) as (api, _):
        owner = await api.sign_up()
        await create_kept_store(api, owner.token)

        # when: its filesystem fills up, and writes keep coming
        fill(small_filesystem)
        failed = [
            await api.gql(STORE_CREATE, {"name": f"Refused {n}"}, token=owner.token)
            for n in range(20)
        ]

        # then: the writes fail masked, with a code and nothing of the cause
        assert_writes_refused(failed)

        # and: reads still answer, with the data written before
        await assert_kept_store_read(api, owner.token)

        # and: once there is room again, writes succeed
        (small_filesystem / "filler").unlink()
        await create_kept_store(api, owner.token, name="After")

    # and: the file is intact
    assert integrity(path) == "ok"


async def test_sqlite_on_a_read_only_filesystem_fails_every_request_cleanly(
    sqlite_template: Path, small_filesystem: Path
) -> None:
    """Not only writes: a WAL database cannot be opened where its -shm cannot be created, so
    on a read-only filesystem nothing can be read either; each request still fails masked,
    and /readyz says so."""
    # given: a SQLite file with data in it, on a filesystem then made read-only
    path = small_filesystem / "api.db"
    shutil.copyfile(sqlite_template, path)
    settings = make_settings(f"sqlite:///{path}", webhook_worker="off")
    async with serving(settings) as (api, _):
        owner = await api.sign_up()
        await create_kept_store(api, owner.token)
    remount(small_filesystem, "ro")

    # when: a service on it is asked to write and to read
    async with serving(settings) as (api, _):
        writes = [
            await api.gql(STORE_CREATE, {"name": f"Refused {n}"}, token=owner.token)
            for n in range(3)
        ]
        read = await api.gql(STORE_NAMES, token=owner.token)
        readiness = await api.client.get("/readyz")

        # then: each failed masked, with a code and nothing of the cause; not ready
        assert_writes_refused([*writes, read])
        assert readiness.status_code == 503, readiness.text

    # and: the file is intact, its data there, once the filesystem is writable again
    remount(small_filesystem, "rw")
    assert integrity(path) == "ok"
    async with serving(settings) as (api, _):
        await assert_kept_store_read(api, owner.token)


async def create_kept_store(api: Api, token: str, name: str = "Kept") -> None:
    created = await api.gql(STORE_CREATE, {"name": name}, token=token)
    assert created.data["storeCreate"]["userErrors"] == [], created.body


async def assert_kept_store_read(api: Api, token: str) -> None:
    read = await api.gql(STORE_NAMES, token=token)
    assert read.status == 200, read.body
    assert "Kept" in str(read.data)


def assert_writes_refused(answers: list[GraphQLResponse]) -> None:
    """Some requests refused (on a full disk the first writes may still fit in a page SQLite
    already has), each refusal masked: INTERNAL, no word of the cause."""
    refused = [answer for answer in answers if answer.body.get("errors")]
    assert refused, [answer.body for answer in answers]
    for answer in refused:
        assert answer.error_codes == ["INTERNAL"], answer.body
        shown = str(answer.body).lower()
        assert "disk" not in shown and "readonly" not in shown and "sqlite" not in shown
