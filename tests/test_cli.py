"""The operator's command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_ENCRYPTION_KEY
from tests.support import PASSWORD

CLI = [sys.executable, "-m", "gql_api"]


def _run(args: list[str], tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "DATA_DIR": str(tmp_path),
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_PARALLELISM": "1",
    }
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = _run(["--help"], tmp_path)
    assert result.returncode == 0
    for command in ("serve", "migrate", "export-schema", "check-config", "create-merchant"):
        assert command in result.stdout


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
    assert result.returncode == 1
    assert "ENCRYPTION_KEYS is required" in result.stderr


def test_export_schema_writes_the_committed_sdl(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    assert _run(["export-schema", "--output", str(target)], tmp_path).returncode == 0
    committed = Path(__file__).resolve().parent.parent / "schema.graphql"
    assert target.read_text() == committed.read_text()
