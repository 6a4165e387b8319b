"""GraphiQL in a real headless Chromium against the real server, with the network "unplugged".

The server is started as `make run` starts it (`integration-api migrate`, then `serve`) on a free
loopback port. Chromium is Debian's (/usr/bin/chromium, see scripts/ensure-chromium.sh), driven by
Playwright; every request to a host other than the server's is blocked and counted, and the name
resolver maps every other host to nothing, so a page that needed the internet would stay blank.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support import PASSWORD, SIGN_UP

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

IN_CI = os.environ.get("CI") == "true"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
ROOT = Path(__file__).resolve().parents[2]
OUTPUT_DIR = ROOT / "test-output"
STARTUP_SECONDS = 30
UI_TIMEOUT_MS = 20_000

QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
TOOL_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
RESPONSE = ".graphiql-response"
EXECUTE = ".graphiql-execute-button"


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"the GraphiQL browser test needs Chromium in CI: {reason}")
    pytest.skip(reason)


@dataclass
class Server:
    url: str
    netloc: str
    log: Path


@dataclass
class Network:
    """What the page asked for: requests to the server go through, all others are blocked."""

    allowed_netloc: str
    allowed: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc == self.allowed_netloc:
            self.allowed.append(url)
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort("internetdisconnected")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("integration-api")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gql_api"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("graphiql-e2e")
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("GRAPHIQL_ENABLED", "INTROSPECTION_ENABLED", "ENCRYPTION_KEYS")
    }
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        APP_ENV="development",
        DATABASE_URL=f"sqlite:///{workdir / 'e2e.db'}",
        DATA_DIR=str(workdir),
        LOG_LEVEL="WARNING",
        # Fast password hashing for the sign-up below (development allows it).
        ARGON2_TIME_COST="1",
        ARGON2_MEMORY_KIB="1024",
        ARGON2_PARALLELISM="1",
    )
    # The working folder is the temporary one, so that no developer's .env changes the settings.
    subprocess.run([*_cli(), "migrate"], cwd=workdir, env=env, check=True, timeout=60)
    log = workdir / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [*_cli(), "serve"], cwd=workdir, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /healthz: {log.read_text()}")
            time.sleep(0.1)
        yield Server(url=url, netloc=f"127.0.0.1:{port}", log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        _unavailable(
            f"{CHROMIUM} not found (scripts/ensure-chromium.sh installs Debian's chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        _unavailable(f"playwright is not installed: {error}")
    with sync_playwright() as playwright:
        # Playwright starts Chromium with a fresh temporary --user-data-dir of its own.
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                # Belt and braces for the request blocking below: no other name resolves.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ],
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class GraphiQLPage:
    page: Page
    network: Network
    problems: list[str]


@pytest.fixture
def graphiql(browser: Browser, server: Server) -> Iterator[GraphiQLPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(UI_TIMEOUT_MS)
    network = Network(allowed_netloc=server.netloc)
    context.route("**/*", network.handle)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.goto(f"{server.url}/graphql", wait_until="load")
    page.wait_for_selector(QUERY_EDITOR)
    page.wait_for_selector(EXECUTE)
    try:
        yield GraphiQLPage(page=page, network=network, problems=problems)
    finally:
        context.close()


def _editor_value(page: Page, selector: str) -> str:
    value: str = page.locator(selector).first.evaluate("element => element.CodeMirror.getValue()")
    return value


def _type_into(page: Page, selector: str, text: str) -> None:
    """Empty a CodeMirror editor and type `text` into it."""
    editor = page.locator(selector).first
    editor.click()
    # Emptied through CodeMirror itself: select-all and Delete, on a loaded machine, could run
    # before GraphiQL had put its default query in, leaving an auto-closed bracket behind.
    editor.evaluate("element => { element.CodeMirror.setValue(''); element.CodeMirror.focus(); }")
    assert _editor_value(page, selector) == ""
    # Key by key, as a person types: CodeMirror closes brackets and quotes as they open, and
    # typing the closing one steps over it, so the editor ends up holding exactly `text`.
    page.keyboard.type(text)
    page.keyboard.press("Escape")  # closes an autocompletion popup, if one is open
    assert _editor_value(page, selector) == text


def _screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path))
    OUTPUT_DIR.mkdir(exist_ok=True)
    shutil.copyfile(path, OUTPUT_DIR / path.name)


def test_graphiql_loads_offline_and_runs_a_query(graphiql: GraphiQLPage, tmp_path: Path) -> None:
    page = graphiql.page
    query = "{ pgProviders { provider displayName } }"
    _type_into(page, QUERY_EDITOR, query)
    page.locator(EXECUTE).click()
    response = page.locator(RESPONSE)
    response.get_by_text('"KCP_V2"').wait_for()
    assert '"pgProviders"' in response.inner_text()
    assert "errors" not in _editor_value(page, f"{RESPONSE} .CodeMirror")

    _screenshot(page, tmp_path / "graphiql.png")
    assert graphiql.network.blocked == []
    loaded = {urlsplit(url).path for url in graphiql.network.allowed}
    assert "/graphiql-assets/graphiql.min.js" in loaded
    assert "/graphql" in loaded
    assert graphiql.problems == []


def test_graphiql_sends_the_authorization_header_from_its_headers_pane(
    graphiql: GraphiQLPage, server: Server, tmp_path: Path
) -> None:
    signed_up = httpx.post(
        f"{server.url}/graphql",
        json={
            "query": SIGN_UP,
            "variables": {
                "input": {
                    "merchantName": "Browser Shop",
                    "email": "owner@browser.example",
                    "password": PASSWORD,
                    "name": "Kim Browser",
                }
            },
        },
        timeout=30,
    ).json()
    token = signed_up["data"]["merchantSignUp"]["session"]["token"]
    page = graphiql.page

    page.locator(".graphiql-editor-tools").get_by_role("button", name="Headers").click()
    _type_into(page, TOOL_EDITOR, f'{{"Authorization": "Bearer {token}"}}')
    _type_into(page, QUERY_EDITOR, "{ viewer { role user { email } } }")
    page.keyboard.press("Control+Enter")
    page.locator(RESPONSE).get_by_text('"OWNER"').wait_for()
    assert "owner@browser.example" in page.locator(RESPONSE).inner_text()

    _screenshot(page, tmp_path / "graphiql-authorized.png")
    assert graphiql.network.blocked == []
    assert graphiql.problems == []


def test_requests_to_other_hosts_are_blocked_and_counted(browser: Browser, server: Server) -> None:
    """The check the tests above rely on: a request to another host is seen, and goes nowhere."""
    context = browser.new_context()
    network = Network(allowed_netloc=server.netloc)
    context.route("**/*", network.handle)
    try:
        page = context.new_page()
        page.goto(f"{server.url}/healthz")
        outcome = page.evaluate(
            """() => fetch("https://unpkg.com/react@18.2.0/umd/react.production.min.js")
                .then(() => "loaded", () => "failed")"""
        )
    finally:
        context.close()
    assert outcome == "failed"
    assert network.blocked == ["https://unpkg.com/react@18.2.0/umd/react.production.min.js"]
    assert [urlsplit(url).path for url in network.allowed] == ["/healthz"]
