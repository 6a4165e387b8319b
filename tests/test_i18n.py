"""Messages in Korean and English (gql_api.i18n): the Korean catalog covers every message the
code can show, the compiled catalog is the catalog, and a client gets the language it asks for
(Korean by default), with the same codes and paths in both."""

from __future__ import annotations

import re
import string
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from starlette.applications import Starlette

from gql_api.app import create_app
from gql_api.i18n import DOMAIN, LOCALE_DIR, _, _n, negotiate
from gql_api.settings import Settings
from tests.conftest import make_settings
from tests.support import SIGN_UP, Api

PO_FILE = LOCALE_DIR / "ko" / "LC_MESSAGES" / f"{DOMAIN}.po"
MO_FILE = LOCALE_DIR / "ko" / "LC_MESSAGES" / f"{DOMAIN}.mo"
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _extracted() -> dict[str | tuple[str, str], str]:
    """Every message the code marks, as `make messages` extracts it, with where it is."""
    root = Path(__file__).resolve().parent.parent
    found: dict[str | tuple[str, str], str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(root / "gql_api"),
        method_map=[("**.py", "python")],
        keywords={"_": None, "_n": (1, 2)},
    ):
        found.setdefault(message, f"gql_api/{filename}:{lineno}")
    return found


def _catalog() -> Catalog:
    with PO_FILE.open("rb") as po:
        return read_po(po, locale="ko")


def _msgid(message: str | tuple[str, str]) -> str:
    return message if isinstance(message, str) else message[0]


def _placeholders(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(text) if name}


def test_every_message_in_the_code_has_a_korean_translation() -> None:
    catalog = _catalog()
    missing = []
    for message, where in _extracted().items():
        entry = catalog.get(_msgid(message))
        translated = entry is not None and not entry.fuzzy
        if translated and entry is not None:
            strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
            translated = all(strings)
        if not translated:
            missing.append(f"{where}: {_msgid(message)!r}")
    assert not missing, "untranslated (run `make messages`, then translate):\n" + "\n".join(missing)


def test_the_catalog_holds_no_message_the_code_no_longer_has() -> None:
    extracted = {_msgid(message) for message in _extracted()}
    stale = [entry.id for entry in _catalog() if entry.id and _msgid(entry.id) not in extracted]
    assert not stale, f"obsolete entries (run `make messages`): {stale}"


def test_translations_keep_the_placeholders_of_the_english_text() -> None:
    wrong = []
    for entry in _catalog():
        if not entry.id:
            continue
        ids = entry.id if isinstance(entry.id, tuple) else (entry.id,)
        expected = set().union(*(_placeholders(text) for text in ids))
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        for text in strings:
            if text and _placeholders(text) != expected:
                wrong.append((entry.id, text))
    assert not wrong


def test_the_compiled_catalog_is_the_catalog() -> None:
    """The .mo the app loads is compiled from the .po as it is now (`make messages`)."""
    with MO_FILE.open("rb") as mo:
        compiled = read_mo(mo)
    assert _translations(compiled) == _translations(_catalog())


def _translations(catalog: Catalog) -> dict[object, object]:
    def frozen(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {
        frozen(entry.id): frozen(entry.string)
        for entry in catalog
        if entry.id and not entry.fuzzy and any(frozen(entry.string) or ())
    }


@pytest.mark.parametrize(
    ("header", "default", "chosen"),
    [
        (None, "ko", "ko"),
        (None, "en", "en"),
        ("en", "ko", "en"),
        ("en-US,en;q=0.9", "ko", "en"),
        ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "en", "ko"),
        ("fr-FR, en;q=0.5", "ko", "en"),  # French is not offered: the next one asked for
        ("fr", "ko", "ko"),
        ("fr", "en", "en"),
        ("en;q=0.1, ko;q=0.9", "en", "ko"),  # by weight, not by position
        ("en;q=0, ko", "en", "ko"),
        ("en;q=0", "ko", "ko"),  # q=0: not acceptable
        ("EN-gb", "ko", "en"),  # tags are case-insensitive
        ("*", "en", "en"),
        ("en;q=nonsense", "ko", "en"),  # a malformed weight is ignored (as for Accept)
        (";;;,,,q=", "ko", "ko"),
        ("ko;q=0", "ko", "en"),  # the default refused: the other language
        ("ko;q=0, *", "ko", "en"),
        ("en;q=0, ko;q=0", "en", "en"),  # both refused: the default after all
    ],
)
def test_the_language_asked_for_is_chosen(header: str | None, default: str, chosen: str) -> None:
    assert negotiate(header, default=default) == chosen  # type: ignore[arg-type]


def test_a_message_renders_in_either_language_with_its_placeholders() -> None:
    message = _("Internal server error.")
    assert message.render("en") == "Internal server error."
    assert HANGUL.search(message.render("ko"))
    more = _n(
        "{count} more problem not shown; fix these and send the input again.",
        "{count} more problems not shown; fix these and send the input again.",
        3,
    )
    assert more.render("en").startswith("3 more problems")
    assert "3" in more.render("ko") and HANGUL.search(more.render("ko"))


@pytest.fixture
async def korean_by_default(database_url: str) -> AsyncIterator[Api]:
    """The app as shipped: DEFAULT_LOCALE unset (Korean)."""
    settings = make_settings(database_url)
    values = settings.model_dump()
    values.pop("default_locale")
    app: Starlette = create_app(Settings(**values))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client)


WEAK_SIGN_UP = {
    "input": {
        "merchantName": "",
        "email": "not-an-email",
        "password": "short",
        "name": "Kim",
    }
}


async def _sign_up_errors(api: Api, language: str | None) -> list[dict[str, object]]:
    headers = {"Accept-Language": language} if language else {}
    response = await api.client.post(
        "/graphql", json={"query": SIGN_UP, "variables": WEAK_SIGN_UP}, headers=headers
    )
    assert response.status_code == 200
    expected_language = "en" if language and language.startswith("en") else "ko"
    assert response.headers["content-language"] == expected_language
    assert "accept-language" in response.headers.get("vary", "").lower()
    errors: list[dict[str, object]] = response.json()["data"]["merchantSignUp"]["userErrors"]
    return errors


async def test_user_errors_are_korean_by_default_and_english_when_asked(
    korean_by_default: Api,
) -> None:
    korean = await _sign_up_errors(korean_by_default, None)
    asked_korean = await _sign_up_errors(korean_by_default, "ko-KR,ko;q=0.9")
    english = await _sign_up_errors(korean_by_default, "en-US,en;q=0.9")
    assert korean == asked_korean
    # The same problems, codes and paths in both languages; only the sentences differ.
    assert [(e["field"], e["code"]) for e in korean] == [(e["field"], e["code"]) for e in english]
    assert len(korean) >= 3
    for ko, en in zip(korean, english, strict=True):
        assert HANGUL.search(str(ko["message"])), ko
        assert not HANGUL.search(str(en["message"])), en
        assert ko["message"] != en["message"]


async def test_top_level_errors_follow_the_language(korean_by_default: Api) -> None:
    query = {"query": "{ merchant { name } }"}
    for language, hangul in (("ko", True), ("en", False)):
        response = await korean_by_default.client.post(
            "/graphql", json=query, headers={"Accept-Language": language}
        )
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        assert bool(HANGUL.search(error["message"])) is hangul, error


async def test_request_errors_follow_the_language(korean_by_default: Api) -> None:
    for language, hangul in (("ko", True), ("en", False)):
        response = await korean_by_default.client.put(
            "/graphql", json={"query": "{ __typename }"}, headers={"Accept-Language": language}
        )
        assert response.status_code == 405
        (error,) = response.json()["errors"]
        assert bool(HANGUL.search(error["message"])) is hangul, error
        too_large = await korean_by_default.client.post(
            "/graphql",
            content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
            headers={"Accept-Language": language, "Content-Type": "application/json"},
        )
        assert too_large.status_code == 413
        (error,) = too_large.json()["errors"]
        assert bool(HANGUL.search(error["message"])) is hangul, error


async def test_default_locale_english_answers_english_when_nothing_is_asked(api: Api) -> None:
    """The suite's own settings say DEFAULT_LOCALE=en (tests/conftest.py)."""
    response = await api.client.post("/graphql", json={"query": SIGN_UP, "variables": WEAK_SIGN_UP})
    assert response.headers["content-language"] == "en"
    errors = response.json()["data"]["merchantSignUp"]["userErrors"]
    assert errors and not any(HANGUL.search(e["message"]) for e in errors)


async def test_strawberry_s_own_refusals_and_the_scheme_hint_follow_the_language(
    korean_by_default: Api,
) -> None:
    client = korean_by_default.client
    batched = await client.post("/graphql", json=[{"query": "{ __typename }"}])
    no_query = await client.post("/graphql", json={})
    text_body = await client.post(
        "/graphql", content=b"{ __typename }", headers={"Content-Type": "text/plain"}
    )
    no_scheme = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "portone_sk_x"}
    )
    assert no_scheme.status_code == 401
    for response in (batched, no_query, text_body, no_scheme):
        (error,) = response.json()["errors"]
        assert HANGUL.search(error["message"]), error
        assert "or" not in error["message"].split(), error  # no English left in the sentence
        assert response.headers["content-language"] == "ko"


async def test_only_answers_in_a_language_say_which_and_caches_get_one_vary_line(
    korean_by_default: Api,
) -> None:
    client = korean_by_default.client
    plain = await client.post("/healthz")  # Starlette's own plain-text 405
    catalog = await client.get("/graphql", params={"query": "{ pgProviders { provider } }"})
    assert plain.status_code == 405
    assert "content-language" not in plain.headers
    assert catalog.status_code == 200
    assert catalog.headers["content-language"] == "ko"
    varies = catalog.headers.get_list("vary")
    assert len(varies) == 1, varies
    assert {v.strip() for v in varies[0].split(",")} >= {"Accept", "Accept-Language"}
