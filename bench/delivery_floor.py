"""The delivery floor: the same signed webhook requests, posted by a plain httpx client.

Reads the requests a delivery worker sent (as bench/receiver.py recorded them: path, headers,
body) and posts each once more, byte for byte the same body and the same `content-type`,
`user-agent` and `webhook-*` headers, with one `httpx.AsyncClient` (connections kept alive)
and `--concurrency` requests in flight at once, to the same receiver. No database, no
rendering, no signing, no address checks: what delivering a webhook costs at the least from
Python. Any answer other than 200 fails the run. Prints one JSON line with the count, the time
taken and the CPU time used (the rate itself is measured by the receiver, the same way as for
the worker).

    python bench/delivery_floor.py --url http://127.0.0.1:8002 --requests requests.json \
        --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

KEPT = ("content-type", "user-agent", "webhook-id", "webhook-timestamp", "webhook-signature")


async def post_all(url: str, requests: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    failures: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def lane(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            request = queue.get_nowait()
            headers = {k: v for k, v in request["headers"].items() if k in KEPT}
            response = await client.post(
                url + request["path"], content=request["body"].encode("utf-8"), headers=headers
            )
            if response.status_code != 200:
                failures.append(f"HTTP {response.status_code}")

    started, cpu = time.monotonic(), time.process_time()
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:
        await asyncio.gather(*(lane(client) for _ in range(concurrency)))
    return {
        "sent": len(requests),
        "failures": failures[:10],
        "seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time() - cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="the receiver, http://127.0.0.1:<port>")
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args()
    requests = json.loads(args.requests.read_text(encoding="utf-8"))
    result = asyncio.run(post_all(args.url, requests, args.concurrency))
    print(json.dumps(result), flush=True)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
