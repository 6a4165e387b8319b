"""A local webhook receiver that verifies what it receives, for the README's first hour.

    export WEBHOOK_SECRET=whsec_…    # the value webhookSecretIssue showed
    .venv/bin/python scripts/webhook_receiver.py --port 9000

Each POST is checked with the `standardwebhooks` package (a dev dependency, installed by
`make run`): JSON bodies and form-urlencoded ones (payload version 2024-01-01). A verified
webhook is printed as `verified <webhook-id> <content type>: <payload>` and answered 200, the
only answer the service counts as received; anything else is printed as `REJECTED …` and
answered 400, so the delivery log shows the failure. The secret comes from the environment,
not the command line, where other users of the machine could read it.

`verify` below is the README's verification example, character for character
(tests/test_readme_walkthrough.py checks it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


# README: verify
def verify(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The payload of a webhook whose signature checks out; WebhookVerificationError if not.

    `body` is the raw request body: the signature covers those bytes, not a re-encoding."""
    headers = {name.lower(): value for name, value in headers.items()}
    webhook = Webhook(secret)  # the whsec_… value, prefix included
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # A form body is not JSON: without json_parse=False, verify() checks the signature
        # and then fails parsing the body as JSON (a ValueError, not a verification error).
        webhook.verify(body, headers, json_parse=False)
        return dict(parse_qsl(body.decode(), keep_blank_values=True))
    payload: dict[str, Any] = webhook.verify(body, headers)
    return payload


# README: end


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        parser.error("set WEBHOOK_SECRET to the signing secret webhookSecretIssue showed")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            headers = dict(self.headers.items())
            webhook_id = self.headers.get("webhook-id", "(no webhook-id)")
            content_type = self.headers.get("content-type", "")
            try:
                payload = verify(secret, body, headers)
            except (WebhookVerificationError, ValueError) as error:
                print(f"REJECTED {webhook_id}: {error}", flush=True)
                self._answer(400, b"signature not verified")
                return
            shown = json.dumps(payload, ensure_ascii=False)
            print(f"verified {webhook_id} {content_type}: {shown}", flush=True)
            self._answer(200, b"ok")

        def do_GET(self) -> None:
            """Says it is up (the README waits for this before the first test call)."""
            self._answer(200, b"webhook receiver: POST webhooks here")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", "text/plain")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *values: object) -> None:
            """Quiet: each webhook is printed by do_POST."""

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"receiving webhooks on http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
