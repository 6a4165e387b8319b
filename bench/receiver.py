"""A webhook receiver for the delivery benchmark: answers 200 at once and remembers each request.

A raw ASGI app (no framework, no routing beyond the control paths) served by uvicorn with the
settings of `integration-api serve` (1 worker, no access log, uvloop/httptools), in a process
of its own, so that the receiver is never what limits the delivery rate. Every POST to any
other path is answered `200 ok` and recorded with its arrival time (`time.monotonic()`: the
system-wide CLOCK_MONOTONIC, comparable with the publisher's clock in another process), its
headers and its body. Control paths (not recorded):

- `GET /healthz`: 200;
- `GET /_count`: how many requests have been recorded (cheap, for polling progress);
- `GET /_records`: every recorded request as JSON, `[{"t", "path", "headers", "body"}]`;
- `POST /_reset`: forget them.

    python bench/receiver.py --port 8002
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import uvicorn

Scope = dict[str, Any]

_OK = {"type": "http.response.body", "body": b"ok"}
_OK_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
}


class Receiver:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]  # lifespan.startup, then lifespan.shutdown
                await send({"type": f"{kind}.complete"})
                if kind == "lifespan.shutdown":
                    return
        path = scope["path"]
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        if scope["method"] == "POST" and not path.startswith("/_"):
            arrived = time.monotonic()
            self.records.append(
                {
                    "t": arrived,
                    "path": path,
                    "headers": {
                        k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                    },
                    "body": b"".join(chunks).decode("utf-8"),
                }
            )
            await send(_OK_START)
            await send(_OK)
            return
        if path == "/_count":
            await self._json(send, len(self.records))
        elif path == "/_records":
            await self._json(send, self.records)
        elif path == "/_reset":
            self.records = []
            await self._json(send, 0)
        elif path == "/healthz":
            await self._json(send, "ok")
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    @staticmethod
    async def _json(send: Any, value: object) -> None:
        body = json.dumps(value).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        Receiver(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
