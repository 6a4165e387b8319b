#!/usr/bin/env python3
"""Re-fetch GraphiQL's files from the npm registry into gql_api/graphiql/static/ and check them.

    .venv/bin/python scripts/fetch_graphiql_assets.py          # npm pack, check sha384, write
    .venv/bin/python scripts/fetch_graphiql_assets.py --check  # only check the files in static/

Which files, from which package versions, with which sha384, is written in
gql_api/graphiql/assets.py. Every file must match its integrity value there (which is also the one
strawberry's bundled graphiql.html uses, checked when strawberry is importable); nothing is written
unless all of them do. Exits non-zero on any mismatch or failure. Needs `npm` on PATH.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
ASSETS_MODULE = ROOT / "gql_api" / "graphiql" / "assets.py"


def load_manifest() -> ModuleType:
    # Loaded by path so that the script needs neither the package's dependencies nor its install.
    spec = importlib.util.spec_from_file_location("graphiql_assets_manifest", ASSETS_MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while building the classes
    spec.loader.exec_module(module)
    return module


def sri_sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def strawberry_integrities() -> set[str] | None:
    """The integrity values in strawberry's own graphiql.html, or None without strawberry."""
    spec = importlib.util.find_spec("strawberry")
    if spec is None or spec.origin is None:
        return None
    page = Path(spec.origin).parent / "static" / "graphiql.html"
    if not page.is_file():
        return None
    return set(re.findall(r'integrity="(sha384-[^"]+)"', page.read_text(encoding="utf-8")))


def npm_pack(package: str, destination: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not on PATH")
    # The arguments are this script's own constants, not outside input.
    output = subprocess.run(  # noqa: S603
        [npm, "pack", "--json", "--silent", "--pack-destination", str(destination), package],
        check=True,
        capture_output=True,
        text=True,
        cwd=destination,
    ).stdout
    filename = str(json.loads(output)[0]["filename"])
    return destination / filename


def read_member(tarball: Path, member: str) -> bytes:
    with tarfile.open(tarball, "r:gz") as archive:
        extracted = archive.extractfile(member)
        if extracted is None:
            raise FileNotFoundError(f"{member} is not a file in {tarball.name}")
        return extracted.read()


def check_local(manifest: ModuleType) -> list[str]:
    problems = []
    for asset in manifest.ASSETS:
        path = manifest.STATIC_DIR / asset.file
        if not path.is_file():
            problems.append(f"{asset.file}: missing")
        elif (actual := sri_sha384(path.read_bytes())) != asset.integrity:
            problems.append(f"{asset.file}: {actual} != {asset.integrity}")
    for licence in manifest.LICENCES:
        if not (manifest.STATIC_DIR / licence.file).is_file():
            problems.append(f"{licence.file}: missing")
    return problems


def fetch(manifest: ModuleType) -> list[str]:
    problems: list[str] = []
    contents: dict[str, bytes] = {}
    packages = sorted({a.package for a in manifest.ASSETS} | {x.package for x in manifest.LICENCES})
    with tempfile.TemporaryDirectory(prefix="graphiql-assets-") as tmp:
        tarballs = {}
        for package in packages:
            print(f"npm pack {package}", file=sys.stderr)
            tarballs[package] = npm_pack(package, Path(tmp))
        for asset in manifest.ASSETS:
            data = read_member(tarballs[asset.package], asset.member)
            actual = sri_sha384(data)
            if actual != asset.integrity:
                problems.append(f"{asset.package} {asset.member}: {actual} != {asset.integrity}")
            contents[asset.file] = data
        for licence in manifest.LICENCES:
            text = read_member(tarballs[licence.package], licence.member)
            contents[licence.file] = licence.note.encode() + text
    if problems:
        return problems
    manifest.STATIC_DIR.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (manifest.STATIC_DIR / name).write_bytes(data)
        print(f"wrote {name} ({len(data)} bytes)", file=sys.stderr)
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only check the files already in static/"
    )
    args = parser.parse_args()
    manifest = load_manifest()

    problems: list[str] = []
    known = strawberry_integrities()
    if known is None:
        print("strawberry not importable: not comparing with its graphiql.html", file=sys.stderr)
    else:
        problems += [
            f"{a.file}: {a.integrity} is not in strawberry's graphiql.html"
            for a in manifest.ASSETS
            if a.integrity not in known
        ]
    try:
        problems += check_local(manifest) if args.check else fetch(manifest)
    except (subprocess.CalledProcessError, OSError, ValueError, KeyError) as error:
        problems.append(f"{type(error).__name__}: {error}")
    for problem in problems:
        print(f"MISMATCH {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {len(manifest.ASSETS)} files match their sha384", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
