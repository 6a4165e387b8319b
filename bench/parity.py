"""Is the framework floor level with the app? Checked before any load; a difference fails the run.

What the floor must share with the app (issue 20), and how each is checked:

- uvicorn's options: those `integration-api serve` passes to uvicorn.run are captured from the
  CLI itself (`--serve-options`: the real `serve` command with the API's environment, uvicorn.run
  replaced by a function that prints its arguments) and handed to the floor; the HTTP
  implementation and event loop actually loaded are then read from outside, in each running
  server's /proc/<pid>/maps (uvloop, httptools).
- the JSON encoder: from outside, the dashboard answer of both servers must be the same bytes
  (json.dumps and orjson differ in separators and escapes); and each server's GraphQL view,
  built by its own factory (`--probe`), must encode a sample exactly as orjson.dumps does.
- the garbage collector: `--probe` builds each app through the factory uvicorn calls, runs its
  lifespan start-up as uvicorn does, and reports gc.get_freeze_count(). The app logs nothing
  about it and must not grow a debug header for it, and the collector's state cannot be read
  from outside the process; this runs the same code the servers run.

    python bench/parity.py --serve-options            (environment: the API's)
    python bench/parity.py --probe app                (environment: the API's)
    python bench/parity.py --probe floor --data bench/out/dashboard-sqlite.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Set by the caller for each server (the floor's host and port are its own), or not uvicorn's.
NOT_COMPARED = frozenset({"host", "port", "log_config", "log_level", "factory"})
# A sample with what tells the encoders apart: non-ASCII text, separators, floats, null.
SAMPLE: dict[str, Any] = {"data": {"name": "가맹점 Café", "n": [1, 2.5, None, True], "e": {}}}
MODULES = ("uvloop", "httptools")


class ParityError(RuntimeError):
    """The floor is not level with the app; the message says in what."""


@dataclass(frozen=True)
class Probe:
    encoder: str  # orjson | json | other: <first bytes>
    gc_frozen: int  # gc.get_freeze_count() after the lifespan's start-up

    def text(self) -> str:
        return f"encoder {self.encoder}, {self.gc_frozen:,} objects frozen by gc.freeze()"


def _run(argv: list[str], *, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(  # noqa: S603
        [sys.executable, str(Path(__file__).resolve()), *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise ParityError(f"bench/parity.py {' '.join(argv)} failed: {done.stderr.strip()[-800:]}")
    return lines[-1]


def serve_options(*, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """The options `integration-api serve` passes to uvicorn.run in this environment, except
    those set per server (NOT_COMPARED)."""
    options: dict[str, Any] = json.loads(_run(["--serve-options"], env=env, cwd=cwd))
    return options


def probe(argv: list[str], *, env: dict[str, str], cwd: Path) -> Probe:
    return Probe(**json.loads(_run(["--probe", *argv], env=env, cwd=cwd)))


def loaded_modules(pid: int) -> set[str]:
    """Which of MODULES the process has loaded (their compiled extensions in its memory map)."""
    maps = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8", errors="replace")
    return {name for name in MODULES if f"/{name}/" in maps}


def check_level(*, app: Probe, floor: Probe, app_modules: set[str], floor_modules: set[str]) -> str:
    """One line saying what is level, or ParityError naming every difference."""
    problems = []
    if app.encoder != floor.encoder:
        problems.append(f"the app encodes with {app.encoder}, the floor with {floor.encoder}")
    if (app.gc_frozen > 0) != (floor.gc_frozen > 0):
        problems.append(
            f"gc.freeze(): {app.gc_frozen:,} objects frozen in the app, {floor.gc_frozen:,} in "
            "the floor"
        )
    if app_modules != floor_modules:
        problems.append(
            f"loaded: app {sorted(app_modules) or 'neither'}, floor "
            f"{sorted(floor_modules) or 'neither'} of {', '.join(MODULES)}"
        )
    if problems:
        raise ParityError("the floor is not level with the app: " + "; ".join(problems))
    return (
        f"app: {app.text()}; floor: {floor.text()}; both have loaded "
        f"{', '.join(sorted(app_modules)) or f'neither of {MODULES}'}"
    )


# ---- in the subprocess -----------------------------------------------------------------------


def _capture_serve_options() -> dict[str, Any]:
    import uvicorn

    from gql_api import cli

    captured: dict[str, Any] = {}

    def run(_app: object, **options: Any) -> None:
        captured.update(options)

    uvicorn.run = run  # type: ignore[assignment]  # what `serve` hands uvicorn, not serving
    code = cli.main(["serve"])
    if code != 0 or not captured:
        raise SystemExit(f"integration-api serve exited with {code} before starting uvicorn")
    return {k: v for k, v in sorted(captured.items()) if k not in NOT_COMPARED}


def _encoder_of(view: Any) -> str:
    import orjson

    encoded = view.encode_json(SAMPLE)
    encoded = encoded.encode() if isinstance(encoded, str) else bytes(encoded)
    if encoded == orjson.dumps(SAMPLE):
        return "orjson"
    if encoded in (
        json.dumps(SAMPLE).encode(),
        json.dumps(SAMPLE, ensure_ascii=False).encode(),
        json.dumps(SAMPLE, separators=(",", ":")).encode(),
        json.dumps(SAMPLE, separators=(",", ":"), ensure_ascii=False).encode(),
    ):
        return "json"
    return f"other: {encoded[:40]!r}"


async def _probe(which: str, data: Path | None) -> Probe:
    """Build the app as uvicorn does (its factory), run its lifespan start-up, then look."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    app: Starlette
    if which == "app":
        from gql_api.app import create_app

        app = create_app()
    else:
        sys.path.insert(0, str(ROOT / "bench"))
        from floor import create_app as create_floor  # type: ignore[import-not-found]

        assert data is not None, "--data is required for the floor"
        app = create_floor(data)
    view = next(r.endpoint for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    async with app.router.lifespan_context(app):
        return Probe(encoder=_encoder_of(view), gc_frozen=gc.get_freeze_count())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--serve-options", action="store_true")
    parser.add_argument("--probe", choices=("app", "floor"))
    parser.add_argument("--data", type=Path)
    args = parser.parse_args()
    if args.serve_options:
        print(json.dumps(_capture_serve_options()))
    elif args.probe:
        found = asyncio.run(_probe(args.probe, args.data))
        print(json.dumps({"encoder": found.encoder, "gc_frozen": found.gc_frozen}))
    else:
        parser.error("--serve-options or --probe")


if __name__ == "__main__":
    main()
