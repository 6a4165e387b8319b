"""The operator's command line."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import create_engine
from db.models import WebhookEvent
from gql_api import cli
from gql_api.nul_guard import MESSAGE as NUL_MESSAGE
from gql_api.request_json import SYNTAX_MESSAGE, UNICODE_MESSAGE
from gql_api.security.encryption import Encryptor
from gql_api.settings import get_settings
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import seed_merchant
from tests.leak_scan import record_output
from tests.support import PASSWORD
from tests.support_servers import CLI as SERVE_CLI
from tests.support_servers import free_port

CLI = [sys.executable, "-m", "gql_api"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "DATA_DIR": str(tmp_path),
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_PARALLELISM": "1",
    }


def _run(args: list[str], tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, env=_env(tmp_path), timeout=120
    )
    record_output(
        f"the output of integration-api {args[0]}", (result.stdout + result.stderr).encode()
    )
    return result


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _run(["--help"], tmp_path)
    assert result.returncode == 0
    commands = ("serve", "migrate", "export-schema", "check-config", "create-merchant")
    for command in (*commands, "generate-key", "worker", "event"):
        assert command in result.stdout


def test_version_and_exit_codes_are_documented(tmp_path: Path) -> None:
    version = _run(["--version"], tmp_path)
    assert version.returncode == 0
    assert (
        version.stdout.strip() == f"integration-api {importlib.metadata.version('integration-api')}"
    )
    usage = _run(["--help"], tmp_path).stdout
    for code, meaning in (
        ("0", "done"),
        ("1", "the operation failed"),
        ("2", "usage or configuration error"),
    ):
        assert re.search(rf"^  {code}  {meaning}", usage, re.MULTILINE), usage


HELP_CASES = {
    "serve": ["DATABASE_URL", "PORT", "ENCRYPTION_KEYS", "WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION"],
    "worker": ["DATABASE_URL", "WEBHOOK_WORKER_CONCURRENCY", "LOG_LEVEL"],
    "migrate": ["DATABASE_URL"],
    "check-config": ["DATABASE_URL", "GRAPHIQL_ENABLED", "DEFAULT_LOCALE"],
    "create-merchant": ["DATABASE_URL", "ENCRYPTION_KEYS", "ARGON2_MEMORY_KIB"],
    "event publish": ["DATABASE_URL", "ENCRYPTION_KEYS"],
    "persisted-queries add": ["DATABASE_URL", "PERSISTED_QUERIES_MAX_ENTRIES"],
    "persisted-queries list": ["DATABASE_URL"],
    "export-schema": [],
    "generate-key": [],
}


@pytest.mark.parametrize(("command", "variables"), HELP_CASES.items(), ids=list(HELP_CASES))
def test_every_command_help_names_the_variables_it_reads(
    command: str, variables: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command.split(), "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # as wrapped on any terminal
    assert "environment" in text
    for name in variables:
        assert re.search(rf"\b{name}\b", text), name


_CREATE = ["create-merchant", "--merchant-name", "Ops", "--email", "ops@example.com"]
_CREATE += ["--name", "Operator"]


def test_create_merchant_reads_a_piped_password_without_a_flag(tmp_path: Path) -> None:
    # given a migrated database
    assert _run(["migrate"], tmp_path).returncode == 0

    # when the password is piped in, as a script would
    created = _run(_CREATE, tmp_path, stdin=PASSWORD + "\n")

    # then it is read as given: no prompt, no warning that it might be echoed
    assert created.returncode == 0, created.stderr
    assert "representative storeId: store-" in created.stdout
    assert created.stderr == ""


def test_create_merchant_takes_a_windows_line_ending_off_the_password(tmp_path: Path) -> None:
    """A password file edited on Windows ends in \r\n: the owner must log in without the \r."""
    # given a migrated database
    assert _run(["migrate"], tmp_path).returncode == 0

    # when
    created = _run(_CREATE, tmp_path, stdin=PASSWORD + "\r\n")

    # then the stored hash is of the password as typed
    assert created.returncode == 0, created.stderr
    with sqlite3.connect(tmp_path / "cli.db") as db:
        (stored,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert PasswordHasher().verify(stored, PASSWORD)


def test_create_merchant_refuses_a_password_that_is_not_utf8_in_one_line(
    tmp_path: Path,
) -> None:
    assert _run(["migrate"], tmp_path).returncode == 0
    result = subprocess.run(
        [*CLI, *_CREATE], input=b"\xffpassword\n", capture_output=True, env=_env(tmp_path),
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert result.stderr.decode().strip() == (
        "create-merchant: the password is not UTF-8 text; write it in UTF-8"
    )


def test_create_merchant_without_a_password_fails_in_one_line(tmp_path: Path) -> None:
    # given a migrated database
    assert _run(["migrate"], tmp_path).returncode == 0

    # when standard input is empty, with the flag and without it (no terminal either way)
    results = [
        subprocess.run(
            [*CLI, *_CREATE, *flag],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            env=_env(tmp_path),
        )
        for flag in ([], ["--password-stdin"])
    ]

    # then one line each, exit code 2, no traceback
    for result in results:
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert "password is empty" in result.stderr


def test_create_merchant_signs_up_without_graphql(tmp_path: Path) -> None:
    # given a migrated database
    assert _run(["migrate"], tmp_path).returncode == 0

    # when an operator creates a merchant, twice with the same email
    args = ["create-merchant", "--merchant-name", "Ops", "--email", "ops@example.com"]
    args += ["--name", "Operator", "--password-stdin"]
    first = _run(args, tmp_path, stdin=PASSWORD + "\n")
    second = _run(args, tmp_path, stdin=PASSWORD + "\n")

    # then the first succeeds with a store ID, the second says why not; no password echoed
    assert first.returncode == 0, first.stderr
    assert "representative storeId: store-" in first.stdout
    assert second.returncode == 1
    assert "EMAIL_TAKEN" in second.stderr
    assert PASSWORD not in first.stdout + first.stderr + second.stdout + second.stderr


def test_check_config_refuses_production_without_keys(tmp_path: Path) -> None:
    ok = _run(["check-config"], tmp_path)
    assert ok.returncode == 0
    assert "ENCRYPTION_KEYS=1 key(s)" in ok.stdout
    assert TEST_ENCRYPTION_KEY not in ok.stdout
    env = {**os.environ, "ENCRYPTION_KEYS": "", "APP_ENV": "production"}
    result = subprocess.run(
        [*CLI, "check-config"], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    assert "ENCRYPTION_KEYS is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_generate_key_prints_a_fresh_key_the_service_accepts(tmp_path: Path) -> None:
    first = _run(["generate-key"], tmp_path)
    second = _run(["generate-key"], tmp_path)
    assert first.returncode == 0 == second.returncode
    key = first.stdout.strip()
    assert key != second.stdout.strip()
    # A key put first in ENCRYPTION_KEYS encrypts; the old one, second, still decrypts.
    sealed = Encryptor([TEST_ENCRYPTION_KEY]).encrypt("sk_live_x", context="c")
    rotated = Encryptor([key, TEST_ENCRYPTION_KEY])
    assert rotated.decrypt(sealed, context="c") == "sk_live_x"
    assert rotated.decrypt(rotated.encrypt("y", context="c"), context="c") == "y"


def test_export_schema_writes_the_committed_sdl(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    assert _run(["export-schema", "--output", str(target)], tmp_path).returncode == 0
    committed = Path(__file__).resolve().parent.parent / "schema.graphql"
    assert target.read_text() == committed.read_text()


# --- event publish, in process ---------------------------------------------------------------


@pytest.fixture
def cli_environment(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """`gql_api.cli.main` run in this process on the test's database; a store's storeId."""
    for name, value in {
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),
        "APP_ENV": "test",
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_PARALLELISM": "1",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    seeded = asyncio.run(seed_merchant(database_url, roles=()))
    try:
        yield seeded.owner.representative_store_id
    finally:
        get_settings.cache_clear()


def _stored_events(database_url: str) -> int:
    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with AsyncSession(engine) as db:
                return (await db.exec(select(func.count()).select_from(WebhookEvent))).one()
        finally:
            await engine.dispose()

    return asyncio.run(count())


def _publish(store_id: str, data: str) -> int:
    return cli.main(
        [
            "event", "publish", "--store", store_id, "--mode", "TEST", "--module-version", "V2",
            "--type", "Transaction.Paid", "--data", data,
        ]
    )  # fmt: skip


_IDS = '"paymentId": "payment-1", "transactionId": "tx-1"'


def test_event_publish_stores_the_event_its_data_describes(
    cli_environment: str, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # when
    code = _publish(cli_environment, "{" + _IDS + ', "amount": 18446744073709551615}')

    # then
    assert code == 0, capsys.readouterr().err
    assert '"status": "SKIPPED"' in capsys.readouterr().out
    assert _stored_events(database_url) == 1


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("{" + _IDS + ', "amount": NaN}', SYNTAX_MESSAGE),
        ("{" + _IDS + ', "amount": -Infinity}', SYNTAX_MESSAGE),
        ("{" + _IDS + ', "amount": 1e400}', SYNTAX_MESSAGE),
        ("{" + _IDS + ', "amount": ' + "9" * 5000 + "}", SYNTAX_MESSAGE),
        ("{" + _IDS + ', "note": "\\ud800"}', UNICODE_MESSAGE),
        ("{" + _IDS + ', "note": "\ud800"}', UNICODE_MESSAGE),
        ("{" + _IDS + ', "note": "a\\u0000b"}', NUL_MESSAGE),
        ('"paymentId"', "data must be a JSON object."),
    ],
    ids=["nan", "infinity", "overflow", "5000-digits", "escaped-surrogate", "raw-surrogate",
         "nul", "not-an-object"],
)  # fmt: skip
def test_event_publish_refuses_data_the_endpoint_refuses(
    cli_environment: str,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    data: str,
    reason: str,
) -> None:
    # when
    code = _publish(cli_environment, data)

    # then: a usage error in words, no traceback, nothing stored
    assert code == 2
    assert capsys.readouterr().err == f"INVALID_INPUT data: {reason}\n"
    assert _stored_events(database_url) == 0


# --- serve's log lines -----------------------------------------------------------------------


def test_serve_log_lines_carry_no_terminal_escapes(tmp_path: Path) -> None:
    # given `integration-api serve` on a migrated database, its two streams captured apart
    assert _run(["migrate"], tmp_path).returncode == 0
    port = free_port()
    env = {**_env(tmp_path), "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "info"}
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        server = subprocess.Popen(
            [str(SERVE_CLI), "serve"], env=env, cwd=tmp_path, stdout=stdout, stderr=stderr
        )
    try:
        _wait_until_answering(f"http://127.0.0.1:{port}/healthz", server, err)

        # when requests name paths with an ANSI colour sequence (ESC [, and its one-character
        # C1 form U+009B) that the access log writes down
        for path in ("/%1B%5B31mred", "/%C2%9B2Jcleared"):
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=60)

    # then every line, uvicorn's start-up and shutdown lines included, is JSON without escapes
    lines = (out.read_text() + err.read_text()).splitlines()
    messages = [json.loads(line)["message"] for line in lines]
    assert any(message.startswith("Uvicorn running on") for message in messages)
    assert any("red" in message for message in messages)
    assert any("cleared" in message for message in messages)
    for line in lines:
        assert "\x1b" not in line
        assert "\x9b" not in line


def _wait_until_answering(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"serve did not answer {url}: {log.read_text()}")
