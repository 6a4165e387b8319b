"""GraphiQL in a real headless Chromium against the real server, with the network "unplugged".

The server is started as `make run` starts it (`integration-api migrate`, then `serve`) on a free
loopback port. Chromium is Debian's (/usr/bin/chromium, see scripts/ensure-chromium.sh), driven by
Playwright; every request to a host other than the server's is blocked and counted, and the name
resolver maps every other host to nothing, so a page that needed the internet would stay blank.

Korean must render with a real font (Debian's fonts-noto-cjk, which scripts/ensure-chromium.sh
installs), never as boxes. GRAPHIQL_SCREENSHOT=docs/graphiql.png re-takes the README's
screenshot (the dashboard in Korean); a normal run writes only into its temporary folder.
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

from gql_api.graphiql import DEFAULT_DOCUMENT
from tests.support import PASSWORD, SIGN_UP, STORE_CREATE

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
HEADERS_TAB = "Headers"
README_SCREENSHOT = os.environ.get("GRAPHIQL_SCREENSHOT")


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
    # A Korean user's browser: the API answers in Korean (Accept-Language), as the README's
    # screenshot shows.
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ko-KR")
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
    if selector == QUERY_EDITOR:
        # GraphiQL reads the operation's name 100 ms after the last change, and then the page
        # copies the query into the address: until then, running would send the default
        # document's operation name ("Dashboard") with this query.
        page.wait_for_function(
            "text => new URLSearchParams(window.location.search).get('q') === text", arg=text
        )


def _screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path))
    OUTPUT_DIR.mkdir(exist_ok=True)
    shutil.copyfile(path, OUTPUT_DIR / path.name)


def _hangul(text: str) -> int:
    return sum(1 for char in text if "\uac00" <= char <= "\ud7a3")


def _assert_korean_is_drawn_with_a_cjk_font(page: Page, text: str) -> None:
    """Chromium's own account (DevTools' CSS.getPlatformFontsForNode) of the fonts that drew
    the response's `text`: its Hangul came from a CJK font. Without one, Chromium draws the
    same characters as boxes from the Latin font, and no CJK font is listed."""
    assert _hangul(text) > 0
    element = page.locator(RESPONSE).get_by_text(text).first
    element.wait_for()
    element.evaluate("element => element.setAttribute('data-font-probe', '')")
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        document = cdp.send("DOM.getDocument", {"depth": 0})
        node = cdp.send(
            "DOM.querySelector",
            {"nodeId": document["root"]["nodeId"], "selector": "[data-font-probe]"},
        )
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    finally:
        cdp.detach()
    cjk = [font for font in fonts if "CJK" in font["familyName"]]
    assert cjk, f"{text!r} drawn without a CJK font (install fonts-noto-cjk): {fonts}"
    assert sum(font["glyphCount"] for font in cjk) >= _hangul(text), fonts


def _sign_up(server: Server, *, merchant: str, email: str, name: str) -> str:
    """A new merchant's session token."""
    signed_up = httpx.post(
        f"{server.url}/graphql",
        json={
            "query": SIGN_UP,
            "variables": {
                "input": {
                    "merchantName": merchant,
                    "email": email,
                    "password": PASSWORD,
                    "name": name,
                }
            },
        },
        timeout=30,
    ).json()
    token: str = signed_up["data"]["merchantSignUp"]["session"]["token"]
    return token


def _create_store(server: Server, token: str, name: str) -> None:
    created = httpx.post(
        f"{server.url}/graphql",
        json={"query": STORE_CREATE, "variables": {"name": name}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert created["data"]["storeCreate"]["userErrors"] == [], created


def _set_authorization(page: Page, token: str) -> None:
    page.locator(".graphiql-editor-tools").get_by_role("button", name=HEADERS_TAB).click()
    _type_into(page, TOOL_EDITOR, f'{{"Authorization": "Bearer {token}"}}')


def _headers_editor_value(page: Page) -> str:
    page.locator(".graphiql-editor-tools").get_by_role("button", name=HEADERS_TAB).click()
    page.wait_for_selector(TOOL_EDITOR)
    return _editor_value(page, TOOL_EDITOR)


def _local_storage(page: Page) -> dict[str, str]:
    entries: dict[str, str] = page.evaluate(
        "() => Object.fromEntries(Object.entries(window.localStorage))"
    )
    return entries


def _reload(page: Page) -> None:
    page.reload(wait_until="load")
    page.wait_for_selector(QUERY_EDITOR)
    page.wait_for_selector(EXECUTE)


def test_graphiql_loads_offline_and_runs_a_query(graphiql: GraphiQLPage, tmp_path: Path) -> None:
    page = graphiql.page
    query = "{ pgProviders { provider displayName } }"
    _type_into(page, QUERY_EDITOR, query)
    page.locator(EXECUTE).click()
    response = page.locator(RESPONSE)
    response.get_by_text('"KCP_V2"').wait_for()
    assert '"pgProviders"' in response.inner_text()
    assert "errors" not in _editor_value(page, f"{RESPONSE} .CodeMirror")
    # The catalog's Korean names are drawn in Korean, not as boxes.
    _assert_korean_is_drawn_with_a_cjk_font(page, "KG이니시스")

    _screenshot(page, tmp_path / "graphiql.png")
    assert graphiql.network.blocked == []
    loaded = {urlsplit(url).path for url in graphiql.network.allowed}
    assert "/graphiql-assets/graphiql.min.js" in loaded
    assert "/graphql" in loaded
    assert graphiql.problems == []


def test_graphiql_sends_the_authorization_header_and_never_stores_it(
    graphiql: GraphiQLPage, server: Server, tmp_path: Path
) -> None:
    token = _sign_up(
        server, merchant="Browser Shop", email="owner@browser.example", name="Kim Browser"
    )
    page = graphiql.page
    query = "{ viewer { role user { email } } }"

    # when
    _set_authorization(page, token)
    _type_into(page, QUERY_EDITOR, query)
    page.keyboard.press("Control+Enter")
    page.locator(RESPONSE).get_by_text('"OWNER"').wait_for()

    # then: the header was sent
    assert "owner@browser.example" in page.locator(RESPONSE).inner_text()
    _screenshot(page, tmp_path / "graphiql-authorized.png")
    # and GraphiQL saved the query in its history, without the header
    saved = _local_storage(page)
    assert any(query in value for value in saved.values()), saved
    assert not [key for key, value in saved.items() if token in key + value], saved

    # when the page is opened again
    _reload(page)
    # then the header is gone from the editor and from storage
    assert token not in _headers_editor_value(page)
    assert not [key for key, value in _local_storage(page).items() if token in key + value]
    assert graphiql.network.blocked == []
    assert graphiql.problems == []


def test_a_header_an_older_page_stored_is_dropped(graphiql: GraphiQLPage) -> None:
    """Before issue 17 the page kept headers in localStorage: a browser that still holds one
    loses it on its next visit, instead of having it put back in the Headers pane."""
    page = graphiql.page
    token = "pos_left-behind-by-the-older-page"
    header = f'{{"Authorization": "Bearer {token}"}}'
    # given what GraphiQL 3 saved with shouldPersistHeaders: true
    page.evaluate(
        """([header, entry]) => {
            localStorage.setItem("graphiql:headers", header);
            localStorage.setItem("graphiql:shouldPersistHeaders", "true");
            localStorage.setItem("graphiql:queries", JSON.stringify({queries: [entry]}));
        }""",
        [header, {"query": "{ viewer { role } }", "headers": header, "operationName": None}],
    )
    # when
    _reload(page)
    # then
    assert token not in _headers_editor_value(page)
    saved = _local_storage(page)
    assert "{ viewer { role } }" in saved["graphiql:queries"]  # the history itself is kept
    assert not [key for key, value in saved.items() if token in key + value], saved
    assert graphiql.problems == []


def test_a_new_user_sees_the_dashboard_query_and_it_runs_in_korean(
    graphiql: GraphiQLPage, server: Server, tmp_path: Path
) -> None:
    page = graphiql.page
    # given: nothing saved, so the editor shows the default document
    assert _editor_value(page, QUERY_EDITOR) == DEFAULT_DOCUMENT
    # and a merchant that named things in Korean
    token = _sign_up(server, merchant="연동 상점", email="owner@korean.example", name="김연동")
    _create_store(server, token, "강남점")
    _create_store(server, token, "판교점")

    # when the document is run as it stands, with the session token in the Headers pane
    _set_authorization(page, token)
    page.locator(EXECUTE).click()
    response = page.locator(RESPONSE)
    response.get_by_text('"OWNER"').wait_for()

    # then the dashboard answers (the editor draws only the lines in view: read its text),
    answer = _editor_value(page, f"{RESPONSE} .CodeMirror")
    assert '"errors"' not in answer
    for shown in ('"연동 상점"', '"대표상점"', '"강남점"', '"판교점"', '"webhookSettings"'):
        assert shown in answer
    # and its Korean is drawn in Korean
    _assert_korean_is_drawn_with_a_cjk_font(page, '"김연동"')
    # For the picture: from step 2 of the document on, and the header from its start.
    page.locator(QUERY_EDITOR).first.evaluate(
        """element => {
            const editor = element.CodeMirror;
            const line = editor.getValue().split("\\n").findIndex(l => l.startsWith("# 2."));
            editor.scrollTo(null, editor.heightAtLine(line, "local"));
        }"""
    )
    page.locator(TOOL_EDITOR).first.evaluate("element => element.CodeMirror.scrollTo(0, null)")
    _screenshot(page, tmp_path / "graphiql-dashboard.png")
    if README_SCREENSHOT:  # the README's picture, on request only
        shutil.copyfile(tmp_path / "graphiql-dashboard.png", ROOT / README_SCREENSHOT)
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
