"""The README's "First hour", run as a reader runs it: what the README says is what is tested.

The walkthrough is the part of README.md between `<!-- walkthrough` and `<!-- /walkthrough -->`.
Its first `sh` block is terminal 1's `[VAR=value …] make run`: the test runs what `make run`
runs (`integration-api migrate`, then `integration-api serve`) with those variables, on a free
port and a fresh SQLite database. Every later `sh` block is pasted, in order, into one bash
(terminal 2, the project folder), with `set -euo pipefail` so that a step that fails stops it,
and only `API` and `RECEIVER_PORT` moved to free ports. The walkthrough's receiver
(scripts/webhook_receiver.py) must print both test calls as verified, and the README's Python
verification example must verify what the service signed, JSON and form bodies alike.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.support_servers import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RECEIVER = ROOT / "scripts" / "webhook_receiver.py"
CLI = Path(sys.executable).parent / "integration-api"
START = "<!-- walkthrough"
END = "<!-- /walkthrough -->"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
SERVER_COMMAND = re.compile(r"(?P<env>(?:[A-Z_]+=\S+ )*)make run")
API_LINE = re.compile(r"^API=http://127\.0\.0\.1:8000/graphql\b", re.MULTILINE)
RECEIVER_PORT_LINE = re.compile(r"^RECEIVER_PORT=9000\b", re.MULTILINE)
# The first hour of the issue, in this order (each must appear in the blocks that run).
STEPS = (
    "merchantSignUp",
    "storeCreate",
    "pgProviders",
    "channelCreate",
    "apiSecretIssue",
    'AUTH="PortOne $API_SECRET"',
    "webhookSettingUpdate",
    "webhookSecretIssue",
    "scripts/webhook_receiver.py",
    "webhookTest",
)
# What the test reads back from terminal 2 once the walkthrough has run.
STATE = '\nprintf "%s\\n" "$AUTH" "$STORE_ID" "$WEBHOOK_SECRET" > "$WALKTHROUGH_STATE"\n'
SCRIPT_SECONDS = 180  # bash with its steps; generous for a loaded 2-core machine

DELIVERIES = """
query Deliveries($storeId: String!) {
  store(storeId: $storeId) {
    webhookSetting(moduleVersion: V2, mode: TEST) {
      deliveries(first: 10) {
        edges { node { trigger succeeded statusCode requestBody requestHeaders { name value } } }
      }
    }
  }
}
"""


@dataclass(frozen=True)
class Block:
    language: str
    text: str


def walkthrough_blocks() -> list[Block]:
    readme = README.read_text(encoding="utf-8")
    assert readme.count(START) == 1, f"README.md needs exactly one {START} marker"
    assert readme.count(END) == 1, f"README.md needs exactly one {END} marker"
    section = readme[readme.index(START) : readme.index(END)]
    return [Block(match[1], match[2]) for match in FENCE.finditer(section)]


def shell_blocks(blocks: list[Block]) -> tuple[dict[str, str], list[str]]:
    """Terminal 1's environment for `make run`, and terminal 2's blocks in order."""
    shell = [block.text for block in blocks if block.language == "sh"]
    assert len(shell) > 1, "the walkthrough has no sh blocks to run"
    server = SERVER_COMMAND.fullmatch(shell[0].strip())
    assert server, f"the walkthrough's first sh block must be `[VAR=value …] make run`: {shell[0]}"
    env = dict(item.split("=", 1) for item in shlex.split(server["env"]))
    return env, shell[1:]


def python_block(blocks: list[Block]) -> str:
    python = [block.text for block in blocks if block.language == "python"]
    assert len(python) == 1, "the walkthrough shows one Python verification example"
    return python[0]


def readme_verify(blocks: list[Block]) -> Any:
    """The README's `verify`, executed from the README's own text."""
    namespace: dict[str, Any] = {}
    code = compile(python_block(blocks), "README.md (python block)", "exec")
    exec(code, namespace)  # noqa: S102 - the README's example is the code under test
    return namespace["verify"]


def test_make_run_is_migrate_then_serve() -> None:
    """The test starts what `make run` runs; if the target changes, the test must follow."""
    makefile = (ROOT / "Makefile").read_text()
    run = re.search(r"^run:(?P<deps>.*)\n(?P<recipe>(?:\t.*\n)+)", makefile, re.MULTILINE)
    assert run is not None
    assert "migrate" in run["deps"].split()
    assert run["recipe"].strip() == "$(BIN)/integration-api serve"


def test_the_receiver_verifies_with_the_readme_code() -> None:
    """scripts/webhook_receiver.py is the README's example: its imports and `verify`, as shown."""
    example = python_block(walkthrough_blocks())
    receiver = RECEIVER.read_text(encoding="utf-8")
    definition = example[example.index("def verify(") :]
    assert definition in receiver
    for line in example[: example.index("def verify(")].splitlines():
        assert line in receiver.splitlines(), line


def test_first_hour_runs_as_written(tmp_path: Path) -> None:
    blocks = walkthrough_blocks()
    server_env, steps = shell_blocks(blocks)
    script = "\n".join(steps)
    positions = [script.find(step) for step in STEPS]
    assert -1 not in positions, dict(zip(STEPS, positions, strict=True))
    assert positions == sorted(positions), "the first hour's steps are out of order"

    database_url = f"sqlite:///{tmp_path / 'integration.db'}"
    subprocess.run(
        [str(CLI), "migrate"],
        env={**os.environ, **server_env, "DATABASE_URL": database_url},
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    receiver_port = free_port()
    with serve(
        database_url,
        extra_env={**server_env, "APP_ENV": "development", "DATA_DIR": str(tmp_path / "var")},
    ) as server:
        script, moved = API_LINE.subn(f"API={server.base_url}/graphql", script)
        assert moved == 1, "the helpers block sets API=http://127.0.0.1:8000/graphql once"
        script, moved = RECEIVER_PORT_LINE.subn(f"RECEIVER_PORT={receiver_port}", script)
        assert moved == 1, "the helpers block sets RECEIVER_PORT=9000 once"
        output = run_terminal_two(script + STATE, tmp_path=tmp_path)
        auth, store_id, webhook_secret = (tmp_path / "state").read_text().splitlines()

        # then: the receiver verified the JSON call and the form call, and said so
        verified = [line for line in output.splitlines() if line.startswith("verified ")]
        assert len(verified) == 2, output
        assert "application/json: " in verified[0], output
        assert '"type": "Transaction.Paid"' in verified[0], output
        assert f'"storeId": "{store_id}"' in verified[0], output
        assert "application/x-www-form-urlencoded: " in verified[1], output
        assert '"status": "Paid"' in verified[1], output
        assert "REJECTED" not in output, output
        assert output.splitlines().count("true") == 2, output  # both test calls succeeded

        # and: the delivery log shows both calls received, and the README's Python example
        # verifies the bodies as the service signed them (and nothing altered)
        answer = httpx.post(
            f"{server.base_url}/graphql",
            json={"query": DELIVERIES, "variables": {"storeId": store_id}},
            headers={"Authorization": auth},
            timeout=60,
        ).json()
    deliveries = [
        edge["node"] for edge in answer["data"]["store"]["webhookSetting"]["deliveries"]["edges"]
    ]
    assert [(d["trigger"], d["succeeded"], d["statusCode"]) for d in deliveries] == [
        ("TEST", True, 200),
        ("TEST", True, 200),
    ]
    form, json_call = deliveries  # newest first
    verify = readme_verify(blocks)
    for delivery in (json_call, form):
        headers = {h["name"]: h["value"] for h in delivery["requestHeaders"]}
        body = delivery["requestBody"].encode()
        payload = verify(webhook_secret, body, headers)
        assert payload.get("type") == "Transaction.Paid" or payload.get("status") == "Paid"
        with pytest.raises(WebhookVerificationError):
            verify(webhook_secret, body.replace(b"Paid", b"Cancelled"), headers)
    # Why the README's example passes json_parse=False for form bodies: without it the
    # signature checks out and then parsing the body as JSON fails.
    form_headers = {h["name"]: h["value"] for h in form["requestHeaders"]}
    with pytest.raises(ValueError):
        Webhook(webhook_secret).verify(form["requestBody"].encode(), form_headers)


def run_terminal_two(script: str, *, tmp_path: Path) -> str:
    """Terminal 2: bash in the project folder; the receiver it leaves in the background is
    stopped with it (its own process group). Output goes to a file, not a pipe, which the
    background receiver would hold open.

    `python3` is this interpreter, first on PATH: a version manager's shim (pyenv) costs
    half a second a call on a busy machine, and the walkthrough makes about twenty."""
    bin_dir, log = tmp_path / "bin", tmp_path / "terminal2.log"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    path = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + script],
            cwd=ROOT,
            env={
                **os.environ,
                "PATH": path,
                "PYTHONUNBUFFERED": "1",
                "WALKTHROUGH_STATE": str(tmp_path / "state"),
            },
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        returncode = process.wait(timeout=SCRIPT_SECONDS)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert returncode == 0, f"a README step failed (exit {returncode}):\n{output}"
    return output
