"""Configuration that fails early and clearly: every command that reads settings refuses a bad
one in one line per problem naming the environment variable, exit code 2, no traceback and no
password; `check-config` prints every value in effect, secrets masked."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import create_engine
from db.migrate import upgrade
from gql_api.config_check import COMMAND_SETTINGS, settings_read_by
from gql_api.settings import Settings
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.pg_server import PostgresServer

CLI = Path(sys.executable).parent / "integration-api"
PASSWORD = "db-password-never-shown"
UNREACHABLE = f"postgresql://app:{PASSWORD}@127.0.0.1:1/app"  # a closed local port
METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"
PLATFORM_TOKEN = "platform-token-for-the-tests-0123456789"
PRODUCTION = {
    "APP_ENV": "production",
    "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
    "METRICS_PORT": "9464",
}


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`integration-api ARGS` in an empty folder (no .env), with only these settings set."""
    names = {name.upper() for name in Settings.model_fields}
    clean = {key: value for key, value in os.environ.items() if key.upper() not in names}
    return subprocess.run(
        [str(CLI), *args],
        env={"DATA_DIR": str(tmp_path), **clean, **env},
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


CASES = [
    pytest.param(["check-config"], {"ENCRYPTION_KEYS": "notakey"}, "ENCRYPTION_KEYS",
                 "integration-api generate-key", id="check-config-bad-key"),
    pytest.param(["serve"], {"ENCRYPTION_KEYS": "notakey"}, "ENCRYPTION_KEYS",
                 "integration-api generate-key", id="serve-bad-key"),
    pytest.param(["migrate"], {"DATABASE_URL": f"mysql://app:{PASSWORD}@db/app"}, "DATABASE_URL",
                 "mysql is not supported; use sqlite:///", id="migrate-mysql"),
    pytest.param(["worker"], {"LOG_LEVEL": "verbose"}, "LOG_LEVEL",
                 "use DEBUG, INFO, WARNING, ERROR or CRITICAL", id="worker-log-level"),
    pytest.param(["serve"], {"PORT": "eighty"}, "PORT", "write a whole number", id="serve-port"),
    pytest.param(["check-config"], {"WEBHOOK_RETRY_SCHEDULE_MINUTES": "1,soon"},
                 "WEBHOOK_RETRY_SCHEDULE_MINUTES entry 2", "write a number", id="list-entry"),
    pytest.param(["check-config"], {"METRICS_TOKEN": "short"}, "METRICS_TOKEN",
                 "at least 32 characters", id="metrics-token"),
    pytest.param(["check-config"], {"PORT": "9464", "METRICS_PORT": "9464"}, "METRICS_PORT",
                 "must differ from PORT", id="metrics-port"),
    pytest.param(["serve"], {**PRODUCTION, "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"},
                 "WEBHOOK_ALLOWED_NETWORKS", "WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION=true",
                 id="production-loopback-webhooks"),
    pytest.param(["check-config"], {**PRODUCTION, "ARGON2_MEMORY_KIB": "1024"},
                 "ARGON2_MEMORY_KIB", "set at least 19456", id="production-argon2"),
    pytest.param(["migrate"], {"DATABASE_URL": UNREACHABLE}, "DATABASE_URL",
                 "PostgreSQL at 127.0.0.1:1: connection refused", id="migrate-unreachable"),
    pytest.param(["serve"], {"DATABASE_URL": UNREACHABLE}, "DATABASE_URL",
                 "PostgreSQL at 127.0.0.1:1: connection refused", id="serve-unreachable"),
    pytest.param(["worker", "--once"], {"DATABASE_URL": UNREACHABLE}, "DATABASE_URL",
                 "PostgreSQL at 127.0.0.1:1: connection refused", id="worker-unreachable"),
    pytest.param(["check-config", "--connect"], {"DATABASE_URL": UNREACHABLE}, "DATABASE_URL",
                 "PostgreSQL at 127.0.0.1:1: connection refused", id="connect-unreachable"),
    pytest.param(["serve"], {}, "DATABASE_URL", "not migrated (no tables yet); run "
                 "`integration-api migrate`", id="serve-unmigrated"),
    pytest.param(["check-config", "--connect"], {}, "DATABASE_URL", "not migrated (no tables "
                 "yet); run `integration-api migrate`", id="connect-unmigrated"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "env", "variable", "advice"), CASES)
def test_a_bad_configuration_is_one_line_naming_the_variable(
    tmp_path: Path, args: list[str], env: dict[str, str], variable: str, advice: str
) -> None:
    # given a fresh SQLite file unless the case names another database
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}", **env}

    # when
    result = run(args, tmp_path, **env)

    # then: exit code 2, one line naming the variable and what to do, nothing else
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    problem = result.stderr.splitlines()[-1]
    assert problem.startswith(variable), result.stderr
    assert advice in problem
    assert PASSWORD not in result.stdout + result.stderr
    assert not (tmp_path / "fresh.db").exists()  # serve and friends created nothing


def test_every_problem_is_reported_at_once_one_line_each(tmp_path: Path) -> None:
    # when three settings are wrong, then the production rules for two more
    fields = run(["check-config"], tmp_path, ENCRYPTION_KEYS="a,b", PORT="0", LOG_LEVEL="loud")
    production = run(
        ["check-config"],
        tmp_path,
        APP_ENV="production",
        ARGON2_TIME_COST="1",
        WEBHOOK_ALLOWED_NETWORKS="10.0.0.0/8,8.8.8.0/24,fe80::/10",
    )

    # then each is a line of its own, starting with its variable
    assert fields.returncode == production.returncode == 2
    assert _variables(fields.stderr) == ["PORT", "ENCRYPTION_KEYS", "LOG_LEVEL"]
    assert _variables(production.stderr) == [
        "ENCRYPTION_KEYS", "METRICS_PORT", "ARGON2_TIME_COST", "WEBHOOK_ALLOWED_NETWORKS",
        "WEBHOOK_ALLOWED_NETWORKS",
    ]  # fmt: skip
    assert "10.0.0.0/8 (private)" in production.stderr
    assert "fe80::/10 (link-local)" in production.stderr
    assert "8.8.8.0/24" not in production.stderr  # public addresses need no permission


def _variables(stderr: str) -> list[str]:
    """The variable each line starts with."""
    return [re.split(r"[^A-Z0-9_]", line, maxsplit=1)[0] for line in stderr.splitlines()]


def test_check_config_prints_every_value_in_effect_with_secrets_masked(tmp_path: Path) -> None:
    # when production is configured with every kind of secret, GraphiQL left unset
    result = run(
        ["check-config"],
        tmp_path,
        **PRODUCTION,
        DATABASE_URL=f"postgresql://app:{PASSWORD}@db:5432/app",
        METRICS_TOKEN=METRICS_TOKEN,
        PLATFORM_EVENT_TOKENS=PLATFORM_TOKEN,
        LOG_LEVEL="debug",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION="true",
    )

    # then every variable once, by its environment name, with the value in effect
    assert result.returncode == 0, result.stderr
    printed = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert list(printed) == [name.upper() for name in Settings.model_fields]
    assert printed["DATABASE_URL"] == "postgresql://app:***@db:5432/app"
    assert printed["ENCRYPTION_KEYS"] == "1 key(s)"
    assert printed["METRICS_TOKEN"] == "***"
    assert printed["PLATFORM_EVENT_TOKENS"] == "1 token(s)"
    assert printed["GRAPHIQL_ENABLED"] == printed["INTROSPECTION_ENABLED"] == "false"
    assert printed["LOG_LEVEL"] == "DEBUG"
    assert printed["DEFAULT_LOCALE"] == "ko"
    assert printed["WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION"] == "true"
    for secret in (PASSWORD, TEST_ENCRYPTION_KEY, METRICS_TOKEN, PLATFORM_TOKEN):
        assert secret not in result.stdout + result.stderr
    # and loopback webhooks, allowed on purpose, are still pointed out
    assert "warning: WEBHOOK_ALLOWED_NETWORKS opens 127.0.0.0/8 (loopback)" in result.stderr


def test_check_config_connect_reports_a_migrated_database(
    tmp_path: Path, database_url: str
) -> None:
    # when / then: the test database is migrated to the newest revision
    result = run(["check-config", "--connect"], tmp_path, DATABASE_URL=database_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("database: reachable, migrated to ")


def test_migrate_then_serve_check_passes_on_a_new_sqlite_file(tmp_path: Path) -> None:
    # given a SQLite file in a folder that does not exist yet
    url = f"sqlite:///{tmp_path / 'new' / 'app.db'}"

    # when
    migrated = run(["migrate"], tmp_path, DATABASE_URL=url)
    checked = run(["check-config", "--connect"], tmp_path, DATABASE_URL=url)

    # then
    assert migrated.returncode == 0, migrated.stderr
    assert checked.returncode == 0, checked.stderr


def test_a_database_behind_this_release_asks_for_migrate(tmp_path: Path) -> None:
    # given a database migrated to an earlier revision only
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0014")

    # when
    result = run(["serve"], tmp_path, DATABASE_URL=url)

    # then
    assert result.returncode == 2
    assert result.stderr.startswith("DATABASE_URL: SQLite database ")
    assert "is at migration 0014, this release needs" in result.stderr
    assert result.stderr.rstrip().endswith("run `integration-api migrate`")


def test_each_command_names_settings_that_exist() -> None:
    for command in COMMAND_SETTINGS:
        for prefix in COMMAND_SETTINGS[command]:
            assert any(name.upper().startswith(prefix) for name in Settings.model_fields), prefix
    assert settings_read_by("migrate") == ["DATABASE_URL"]
    assert len(settings_read_by("serve")) == len(Settings.model_fields)


async def _admin(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


def test_postgresql_refusing_or_unmigrated_is_one_line(
    tmp_path: Path, pg_server: PostgresServer
) -> None:
    # given a database that does not exist, and one that exists with no tables
    with_password = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{pg_server.port}"
    empty = f"config_check_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(pg_server.url, f"CREATE DATABASE {empty}"))
    try:
        # when
        missing = run(["migrate"], tmp_path, DATABASE_URL=f"{with_password}/no_such_database")
        unmigrated = run(["serve"], tmp_path, DATABASE_URL=f"{with_password}/{empty}")
    finally:
        asyncio.run(_admin(pg_server.url, f"DROP DATABASE IF EXISTS {empty} WITH (FORCE)"))

    # then the server's refusal, or the advice to migrate, in one line; no password
    where = f"PostgreSQL at 127.0.0.1:{pg_server.port}"
    assert missing.returncode == unmigrated.returncode == 2
    assert missing.stderr == (
        f'DATABASE_URL: {where} refused the connection: database "no_such_database" does not '
        "exist; check the user, password and database name\n"
    )
    assert unmigrated.stderr == (
        f"DATABASE_URL: {where} is not migrated (no tables yet); run `integration-api migrate`\n"
    )
    for result in (missing, unmigrated):
        assert PASSWORD not in result.stdout + result.stderr


def test_a_file_that_is_no_database_is_one_line(tmp_path: Path) -> None:
    # given DATABASE_URL naming a file that is not a SQLite database
    (tmp_path / "notes.db").write_text("not a database, just notes\n" * 100)

    # when
    result = run(["serve"], tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'notes.db'}")

    # then
    assert result.returncode == 2
    assert result.stderr.startswith("DATABASE_URL: cannot open SQLite database ")
    assert "file is not a database; check that the file is one this service created" in (
        result.stderr
    )
    assert len(result.stderr.splitlines()) == 1


MISREAD_URLS = [
    # a port that is not a number: SQLAlchemy's ValueError repeats it (here, the password)
    pytest.param(f"postgresql://app:{PASSWORD}@db:5432x/app", "a port that is not a number?",
                 id="port-not-a-number"),
    pytest.param(f"postgresql://app:{PASSWORD}/appdb", "a port that is not a number?",
                 id="host-forgotten"),
    # an @ in the password: its tail would be taken for the host
    pytest.param(f"postgresql://app:{PASSWORD}@x@db/app", "percent-encode it (@ as %40",
                 id="at-in-password"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "advice"), MISREAD_URLS)
def test_a_database_url_read_wrongly_is_one_line_without_the_password(
    tmp_path: Path, url: str, advice: str
) -> None:
    # when the URL is misread and other secret settings are wrong too
    result = run(["serve"], tmp_path, DATABASE_URL=url, METRICS_TOKEN="token-too-short-but-secret")

    # then one line each, exit 2, and neither secret shown
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert _variables(result.stderr) == ["DATABASE_URL", "METRICS_TOKEN"]
    assert advice in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert "token-too-short-but-secret" not in result.stderr


def test_a_password_given_as_a_query_parameter_is_masked(tmp_path: Path) -> None:
    result = run(
        ["check-config"], tmp_path, DATABASE_URL=f"postgresql://app@db/app?password={PASSWORD}"
    )
    assert result.returncode == 0, result.stderr
    printed = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert printed["DATABASE_URL"] == "postgresql://app@db/app?password=***"
    assert PASSWORD not in result.stdout + result.stderr


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    """`METRICS_PORT=` in a compose file or a template: the default, not a refusal."""
    result = run(["check-config"], tmp_path, METRICS_PORT="", METRICS_TOKEN="", GRAPHIQL_ENABLED="")
    assert result.returncode == 0, result.stderr
    printed = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert printed["GRAPHIQL_ENABLED"] == "true"


def test_a_dotenv_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"\xff\xfe=1\n")
    result = run(["check-config"], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "configuration cannot be read: .env or a variable is not UTF-8 text; write it in UTF-8"
    )


def test_a_libpq_sslmode_in_the_url_is_understood(tmp_path: Path, pg_migrated: str) -> None:
    """Managed PostgreSQL hands out `?sslmode=…` URLs; asyncpg calls it `ssl`."""
    result = run(
        ["check-config", "--connect"], tmp_path, DATABASE_URL=f"{pg_migrated}?sslmode=disable"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("database: reachable, migrated to ")
