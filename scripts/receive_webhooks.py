"""A local webhook receiver for trying the service out: prints each request it receives and
answers 200 (or the status given with --status). Standard library only.

    python3 scripts/receive_webhooks.py --port 9000
    # then save http://127.0.0.1:9000/webhooks as a TEST webhook URL
    # (the service needs WEBHOOK_ALLOWED_NETWORKS=127.0.0.0/8 to send to loopback)
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--status", type=int, default=200, help="the answer's status code")
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            print(f"--- {self.command} {self.path}", flush=True)
            for name in ("content-type", "webhook-id", "webhook-timestamp", "webhook-signature"):
                if name in self.headers:
                    print(f"{name}: {self.headers[name]}", flush=True)
            print(body, flush=True)
            self.send_response(args.status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *values: object) -> None:
            """Quiet: the request itself is printed above."""

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"receiving on http://{args.host}:{args.port}/ (Ctrl-C to stop)", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
