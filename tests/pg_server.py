"""A throwaway PostgreSQL server for the test session: initdb into a temp dir, loopback port.

PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user (or
`nobody`) and owns its temporary directory.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_bin_dir() -> Path | None:
    explicit = os.environ.get("PG_BIN")
    candidates = [explicit] if explicit else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL")


@dataclass
class PostgresServer:
    bin_dir: Path
    root: Path
    port: int
    user: str | None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def _cmd(self, *args: str) -> list[str]:
        if self.user is None:
            return list(args)
        return ["runuser", "-u", self.user, "--", *args]

    @classmethod
    def start(cls) -> PostgresServer:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise FileNotFoundError("PostgreSQL server binaries not found")
        user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="gql-api-pg-"))
        os.chmod(root, 0o755)
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(bin_dir=bin_dir, root=root, port=_free_port(), user=user)
        data = root / "data"
        subprocess.run(
            server._cmd(
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ),
            check=True,
            capture_output=True,
        )
        options = (
            f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            server._cmd(
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            ),
            check=True,
            capture_output=True,
        )
        return server

    def restart(self) -> None:
        """Stop the server at once, as a crash would (every client connection breaks), and
        start it again on the same port and data; returns once it accepts connections.

        A checkpoint first: the server commits asynchronously (synchronous_commit=off), and an
        immediate stop would lose the last moments' commits, which tests expect to find."""
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "psql"),
                "-h",
                str(self.root),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-c",
                "CHECKPOINT",
            ),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-l",  # not kept from the start: without it the server would hold our pipe
                str(self.root / "log"),
                "-m",
                "immediate",
                "-w",
                "-t",
                "60",
                "restart",
            ),
            check=True,
            capture_output=True,
        )

    def halt(self) -> None:
        """Stop the server (a fast shutdown: clients are disconnected, commits kept) but keep
        its data and port, for `resume`."""
        self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop")

    def resume(self) -> None:
        """Start a `halt`ed server again on the same port and data; returns once it accepts
        connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._pg_ctl("-l", str(self.root / "log"), "-o", options, "-w", "-t", "60", "start")

    def _pg_ctl(self, *args: str) -> None:
        command = self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.root / "data"), *args)
        subprocess.run(command, check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> None:
    """`make postgres`: a throwaway server for trying the service on PostgreSQL by hand, as the
    test setup starts one (no fsync: nothing in it is meant to be kept); Ctrl-C stops it and
    deletes its folder."""
    import signal
    import sys

    server = PostgresServer.start()
    try:
        print(f"DATABASE_URL={server.url}", flush=True)
        print("PostgreSQL is running; Ctrl-C stops it and deletes its data.", file=sys.stderr)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
