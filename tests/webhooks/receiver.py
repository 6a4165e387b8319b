"""A tiny HTTP/1.1 receiver on 127.0.0.1: records every request and answers as it is told.

It runs in the test's own event loop (asyncio.start_server), so nothing leaves the machine and
no thread or timing is involved: `arrived` is set when a request has been read in full, and a
receiver told to `hold` answers only once `release` is set (or never, if the test ends first).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs

LOOPBACK = "127.0.0.1"
_REASONS = {200: "OK", 204: "No Content", 302: "Found", 404: "Not Found", 500: "Server Error"}


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    connection: int = 0  # which connection it came on (1, 2, ... in the order they opened)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.text, keep_blank_values=True, strict_parsing=True)


@dataclass
class Receiver:
    """Answers `status` with `body`, or holds the request, or closes without an answer."""

    status: int = 200
    body: bytes = b"ok"
    headers: Sequence[tuple[str, str]] = ()
    hold: bool = False  # answer only once `release` is set
    close_without_answer: bool = False
    keep_alive: bool = False  # answer without "Connection: close" and read the next request
    path: str = "/webhooks"
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _connections: int = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{self.path}"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        self.release.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self._connections += 1
        connection = self._connections
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(replace(request, connection=connection))
                self.arrived.set()
                if self.close_without_answer:
                    return
                if self.hold:
                    await self.release.wait()
                writer.write(self._response())
                await writer.drain()
                if not self.keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _response(self) -> bytes:
        reason = _REASONS.get(self.status, "Status")
        lines = [f"HTTP/1.1 {self.status} {reason}", f"Content-Length: {len(self.body)}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        lines += ["Content-Type: text/plain"]
        if not self.keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


async def _read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, path, _ = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Received(method=method, path=path, headers=headers, body=body)


class Receivers:
    """Starts receivers for one test and stops them all at its end."""

    def __init__(self) -> None:
        self._started: list[Receiver] = []

    async def start(self, **options: object) -> Receiver:
        receiver = await Receiver(**options).start()  # type: ignore[arg-type]
        self._started.append(receiver)
        return receiver

    async def stop_all(self) -> None:
        for receiver in self._started:
            await receiver.stop()


@contextlib.asynccontextmanager
async def receivers() -> AsyncIterator[Receivers]:
    pool = Receivers()
    try:
        yield pool
    finally:
        await pool.stop_all()


def unused_loopback_port() -> int:
    """A port on 127.0.0.1 where nobody listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
    return port
