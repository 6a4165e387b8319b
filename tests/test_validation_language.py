"""Validation errors are cached per document (gql_api.suggestions), and our own rules write
their messages in the language of the request (gql_api.nul_guard): each request still reads
them in its own language, never in that of the request that filled the cache.

The catalog here is one of its own (one Korean message), so that the test says what it means
whatever the shipped catalog holds at the moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

from gql_api import i18n
from gql_api.nul_guard import MESSAGE

KOREAN = "문자열에는 NUL(\\u0000) 문자가 들어갈 수 없습니다."
DOCUMENT = '{ node(id: "a\\u0000b") { id } }'


@pytest.fixture
def korean_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    catalog = Catalog(locale="ko")
    catalog.add(MESSAGE.msgid, KOREAN)
    folder = tmp_path / "ko" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / f"{i18n.DOMAIN}.mo").open("wb") as mo:
        write_mo(mo, catalog)
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    i18n.translations.cache_clear()
    yield
    i18n.translations.cache_clear()


async def _message(client: httpx.AsyncClient, language: str) -> str:
    response = await client.post(
        "/graphql", json={"query": DOCUMENT}, headers={"Accept-Language": language}
    )
    errors = response.json()["errors"]
    assert len(errors) == 1
    assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    message: str = errors[0]["message"]
    return message


async def test_a_cached_validation_error_is_read_in_each_requests_language(
    korean_catalog: None, client: httpx.AsyncClient
) -> None:
    # given: the document validated once for a Korean request
    assert await _message(client, "ko") == KOREAN

    # when: the same document comes from an English client, then a Korean one again
    english = await _message(client, "en")
    korean_again = await _message(client, "ko-KR")

    # then
    assert english == "Strings must not contain NUL (\\u0000) characters."
    assert korean_again == KOREAN
