"""Persisted queries: Apollo's and urql's automatic protocol, a store shared by processes and
bounded, and trusted documents only (PERSISTED_QUERIES_ONLY), through the real HTTP app."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from db import sqlite_reads
from db.engine import create_engine
from gql_api.app import create_app
from gql_api.persisted_queries import register_trusted
from gql_api.settings import Settings
from tests.conftest import TEST_ENCRYPTION_KEY, make_settings

PROVIDERS = "query Providers { pgProviders { provider displayName } }"
MODULES = "query Modules { pgProviders(moduleVersion: V2) { provider modules { code name } } }"
# What Apollo Client sends (urql sends more types, none of them */*).
APOLLO_ACCEPT = "application/graphql-response+json,application/json;q=0.9"
CLI = [sys.executable, "-m", "gql_api"]


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def persisted(sha256_hash: str, version: object = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha256_hash}}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of one app of its own: one process's worth of state (engine, caches)."""
    app = create_app(settings)
    state = app.state.app_state
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http
    finally:
        state.hashing.close()
        sqlite_reads.close(state.engine)
        await state.engine.dispose()


async def trust(database_url: str, *documents: str) -> None:
    """Register trusted documents as the operator's command does (tested below)."""
    engine = create_engine(database_url)
    try:
        await register_trusted(engine=engine, documents=documents)
    finally:
        await engine.dispose()


async def post(http: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await http.post("/graphql", json=body, headers={"accept": APOLLO_ACCEPT})


def error_codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors") or []]


def providers_of(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert response.status_code == 200, body
    assert "errors" not in body, body
    providers: list[dict[str, Any]] = body["data"]["pgProviders"]
    assert providers
    return providers


async def test_apollo_round_trip_over_post(database_url: str) -> None:
    async with serving(make_settings(database_url)) as http:
        # given a document the server has never seen
        # when the client sends its hash alone
        first = await post(http, operationName="Providers", extensions=persisted(sha(PROVIDERS)))

        # then it is told to send the text, as a GraphQL answer with 200 that no one caches
        assert first.status_code == 200
        assert first.json()["errors"][0]["message"] == "PersistedQueryNotFound"
        assert error_codes(first) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert first.headers["cache-control"] == "no-store"

        # when it sends the text with the hash, then the hash alone
        registering = await post(http, query=PROVIDERS, extensions=persisted(sha(PROVIDERS)))
        by_hash = await post(http, extensions=persisted(sha(PROVIDERS)))

        # then both run the document
        assert providers_of(registering) == providers_of(by_hash)


async def test_a_hash_that_does_not_match_the_text_is_refused(database_url: str) -> None:
    async with serving(make_settings(database_url)) as http:
        # when a client (accepting graphql-response+json) sends a text with another's hash
        mismatched = await post(http, query=MODULES, extensions=persisted(sha(PROVIDERS)))
        # then the request is refused and nothing is registered under either hash
        assert mismatched.status_code == 400
        assert error_codes(mismatched) == ["PERSISTED_QUERY_HASH_MISMATCH"]
        assert mismatched.json()["errors"][0]["message"] == "provided sha does not match query"
        for document in (PROVIDERS, MODULES):
            again = await post(http, extensions=persisted(sha(document)))
            assert error_codes(again) == ["PERSISTED_QUERY_NOT_FOUND"]
        # and a client that accepts application/json alone reads it as GraphQL, with 200
        as_json = await http.post(
            "/graphql",
            json={"query": MODULES, "extensions": persisted(sha(PROVIDERS))},
            headers={"accept": "application/json"},
        )
        assert as_json.status_code == 200
        assert error_codes(as_json) == ["PERSISTED_QUERY_HASH_MISMATCH"]


async def test_unsupported_version_and_malformed_hash_are_refused(database_url: str) -> None:
    async with serving(make_settings(database_url)) as http:
        await post(http, query=PROVIDERS, extensions=persisted(sha(PROVIDERS)))

        version_2 = await post(http, extensions=persisted(sha(PROVIDERS), version=2))
        not_hex = await post(http, extensions=persisted("z" * 64))

        assert version_2.status_code == 400
        assert version_2.json()["errors"][0]["message"] == "Unsupported persisted query version"
        assert error_codes(version_2) == ["BAD_REQUEST"]
        assert not_hex.status_code == 400
        assert error_codes(not_hex) == ["BAD_REQUEST"]


async def test_processes_share_the_store(database_url: str) -> None:
    settings = make_settings(database_url)
    # given a document registered through one process
    async with serving(settings) as first:
        registered = await post(first, query=PROVIDERS, extensions=persisted(sha(PROVIDERS)))
        assert providers_of(registered)
    # when another process, which never saw it, gets its hash alone
    async with serving(settings) as second:
        by_hash = await post(second, extensions=persisted(sha(PROVIDERS)))
    # then it runs there too
    assert providers_of(by_hash) == providers_of(registered)


def numbered(n: int) -> str:
    return f"query Numbered{n} {{ pgProviders {{ provider }} }}"


async def test_the_cap_evicts_the_oldest_automatic_entries_never_trusted_ones(
    database_url: str,
) -> None:
    settings = make_settings(database_url, persisted_queries_max_entries=2)
    async with serving(settings) as http:
        # given a trusted document, older than every automatic entry
        await trust(database_url, PROVIDERS)
        # when four automatic entries are registered with a cap of two
        for n in range(4):
            answer = await post(http, query=numbered(n), extensions=persisted(sha(numbered(n))))
            assert providers_of(answer)

    # then a process with an empty cache finds the two newest and the trusted one only
    async with serving(settings) as fresh:
        found = {
            n: error_codes(await post(fresh, extensions=persisted(sha(numbered(n)))))
            for n in range(4)
        }
        trusted = await post(fresh, extensions=persisted(sha(PROVIDERS)))
    assert found == {
        0: ["PERSISTED_QUERY_NOT_FOUND"],
        1: ["PERSISTED_QUERY_NOT_FOUND"],
        2: [],
        3: [],
    }
    assert providers_of(trusted)


async def test_persisted_queries_only_runs_trusted_documents_alone(database_url: str) -> None:
    # given a trusted document, and an automatic one registered before the switch
    async with serving(make_settings(database_url)) as automatic:
        await post(automatic, query=MODULES, extensions=persisted(sha(MODULES)))
        await trust(database_url, PROVIDERS)

    async with serving(make_settings(database_url, persisted_queries_only=True)) as http:
        # when clients send other texts, unknown hashes or the automatic entry's hash
        arbitrary = await post(http, query="{ pgProviders { provider } }")
        unknown = await post(http, extensions=persisted(sha("{ __typename }")))
        not_trusted = await post(http, extensions=persisted(sha(MODULES)))
        registering = await post(
            http, query="{ __typename }", extensions=persisted(sha("{ __typename }"))
        )
        # then each is refused with the reason
        for refused in (arbitrary, unknown, not_trusted, registering):
            assert refused.status_code == 400
            assert error_codes(refused) == ["PERSISTED_QUERY_NOT_ALLOWED"]
            assert "PERSISTED_QUERIES_ONLY" in refused.json()["errors"][0]["message"]
        # and nothing was registered
        again = await post(http, extensions=persisted(sha("{ __typename }")))
        assert error_codes(again) == ["PERSISTED_QUERY_NOT_ALLOWED"]

        # when they send the trusted document's hash, or its very text
        by_hash = await post(http, extensions=persisted(sha(PROVIDERS)))
        by_text = await post(http, query=PROVIDERS)
        # then it runs
        assert providers_of(by_hash) == providers_of(by_text)


def run_cli(args: list[str], database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": str(tmp_path),
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
    }
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )


async def test_operator_registers_trusted_documents(database_url: str, tmp_path: Path) -> None:
    providers = tmp_path / "providers.graphql"
    providers.write_text(PROVIDERS, encoding="utf-8")
    modules = tmp_path / "modules.graphql"
    modules.write_text(MODULES, encoding="utf-8")
    invalid = tmp_path / "invalid.graphql"
    invalid.write_text("query Bad { pgProviders { noSuchField } }", encoding="utf-8")
    broken = tmp_path / "broken.graphql"
    broken.write_text("query Broken { pgProviders { ", encoding="utf-8")

    # when the operator adds files of which some do not validate or parse
    refused = run_cli(
        ["persisted-queries", "add", str(providers), str(invalid), str(broken)],
        database_url,
        tmp_path,
    )
    # then none is registered, and each problem is named with its file
    assert refused.returncode == 1
    assert f"{invalid}: Cannot query field 'noSuchField'" in refused.stderr
    assert f"{broken}: Syntax Error" in refused.stderr
    listed = run_cli(["persisted-queries", "list"], database_url, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""

    # when they add valid files, twice
    args = ["persisted-queries", "add", str(providers), str(modules)]
    added = run_cli(args, database_url, tmp_path)
    again = run_cli(args, database_url, tmp_path)
    # then each prints the hashes, and the list names the documents' operations
    expected = f"{sha(PROVIDERS)}  {providers}\n{sha(MODULES)}  {modules}\n"
    assert (added.returncode, added.stdout) == (0, expected), added.stderr
    assert (again.returncode, again.stdout) == (0, expected), again.stderr
    listed = run_cli(["persisted-queries", "list"], database_url, tmp_path)
    assert sorted(listed.stdout.splitlines()) == sorted(
        [f"{sha(PROVIDERS)}  Providers", f"{sha(MODULES)}  Modules"]
    )

    # and a server with PERSISTED_QUERIES_ONLY runs them by hash
    async with serving(make_settings(database_url, persisted_queries_only=True)) as http:
        assert providers_of(await post(http, extensions=persisted(sha(PROVIDERS))))
        assert providers_of(await post(http, extensions=persisted(sha(MODULES))))


# --- GET (needs `allow_queries_via_get`, issue 15 item 1) -------------------------------------


def get_params(document_hash: str, query: str | None = None) -> dict[str, str]:
    params = {"extensions": json.dumps(persisted(document_hash))}
    if query is not None:
        params["query"] = query
    return params


async def test_get_with_a_hash_and_no_text_runs_the_stored_document(database_url: str) -> None:
    async with serving(make_settings(database_url)) as http:
        # given a hash unknown yet: a GET with it alone is told so, uncacheably
        unknown = await http.get(
            "/graphql", params=get_params(sha(PROVIDERS)), headers={"accept": APOLLO_ACCEPT}
        )
        assert unknown.status_code == 200
        assert error_codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert unknown.headers["cache-control"] == "no-store"
        # when the client registers it over POST, then asks by GET with the hash alone
        await post(http, query=PROVIDERS, extensions=persisted(sha(PROVIDERS)))
        by_hash = await http.get(
            "/graphql", params=get_params(sha(PROVIDERS)), headers={"accept": APOLLO_ACCEPT}
        )
        # then the document runs: a short URL a CDN can cache for anonymous public reads
        assert providers_of(by_hash)


async def test_get_with_a_hash_is_not_taken_for_graphiql(database_url: str) -> None:
    # A browser's fetch() and curl accept */*, which strawberry reads as asking for GraphiQL
    # when the URL has no `query`.
    async with serving(make_settings(database_url)) as http:
        await post(http, query=PROVIDERS, extensions=persisted(sha(PROVIDERS)))
        by_hash = await http.get(
            "/graphql", params=get_params(sha(PROVIDERS)), headers={"accept": "*/*"}
        )
        assert providers_of(by_hash)


# --- what is registered, and the store shared by processes -------------------------------------


async def test_only_valid_documents_within_the_size_cap_are_registered(
    database_url: str,
) -> None:
    # An anonymous caller must not fill the shared store with texts that never run, nor large
    # ones: 10,000 entries of 1 MB each, every request a write.
    invalid = '{ nope(x: "' + "A" * 1_000 + '") }'
    # valid, but over PERSISTED_QUERIES_MAX_DOCUMENT_BYTES (32 KiB) by its comment
    oversized = "# " + "padding " * 5_000 + "\n" + PROVIDERS
    settings = make_settings(database_url)
    async with serving(settings) as http:
        # when anonymous callers send them with their hashes
        refused = await post(http, query=invalid, extensions=persisted(sha(invalid)))
        large = await post(http, query=oversized, extensions=persisted(sha(oversized)))
        # then the invalid one gets its validation error and the large one runs
        assert error_codes(refused) == ["GRAPHQL_VALIDATION_FAILED"]
        assert providers_of(large)
        # and neither was stored: its hash alone is unknown, here and in any process
        for document in (invalid, oversized):
            again = await post(http, extensions=persisted(sha(document)))
            assert error_codes(again) == ["PERSISTED_QUERY_NOT_FOUND"]
    async with serving(settings) as fresh:
        for document in (invalid, oversized):
            again = await post(fresh, extensions=persisted(sha(document)))
            assert error_codes(again) == ["PERSISTED_QUERY_NOT_FOUND"]
        # and the large one still works as Apollo goes on: hash, NotFound, text with hash
        assert providers_of(
            await post(fresh, query=oversized, extensions=persisted(sha(oversized)))
        )


async def test_a_document_evicted_by_another_process_is_registered_again(
    database_url: str,
) -> None:
    settings = make_settings(database_url, persisted_queries_max_entries=1)
    async with serving(settings) as first, serving(settings) as second:
        # given a document registered (and cached) by the first process
        assert providers_of(
            await post(first, query=PROVIDERS, extensions=persisted(sha(PROVIDERS)))
        )
        # and evicted from the store by the second one's registration (cap 1)
        assert providers_of(await post(second, query=MODULES, extensions=persisted(sha(MODULES))))
        evicted = await post(second, extensions=persisted(sha(PROVIDERS)))
        assert error_codes(evicted) == ["PERSISTED_QUERY_NOT_FOUND"]

        # when a client, told NotFound by the second, sends the text to the first
        assert providers_of(
            await post(first, query=PROVIDERS, extensions=persisted(sha(PROVIDERS)))
        )

        # then the second one, and any process, finds it by hash again
        assert providers_of(await post(second, extensions=persisted(sha(PROVIDERS))))


async def test_concurrent_registrations_from_two_processes_keep_the_cap(
    database_url: str,
) -> None:
    cap = 20
    documents = [numbered(n) for n in range(200)]
    settings = make_settings(database_url, persisted_queries_max_entries=cap)
    async with serving(settings) as first, serving(settings) as second:
        # when 200 documents are registered at once through two processes
        answers = await asyncio.gather(
            *(
                post(first if n % 2 else second, query=d, extensions=persisted(sha(d)))
                for n, d in enumerate(documents)
            )
        )
        assert all(providers_of(answer) for answer in answers)
    # then a process with an empty cache finds exactly `cap` of them
    async with serving(settings) as fresh:
        found = [
            not error_codes(await post(fresh, extensions=persisted(sha(d)))) for d in documents
        ]
    assert sum(found) == cap


def test_operator_files_are_hashed_byte_for_byte(database_url: str, tmp_path: Path) -> None:
    # given a document saved with Windows line endings
    crlf = tmp_path / "crlf.graphql"
    crlf.write_bytes(PROVIDERS.replace(" {", "\r\n{").encode())

    # when the operator adds it
    added = run_cli(["persisted-queries", "add", str(crlf)], database_url, tmp_path)

    # then the hash printed and registered is that of the file's exact bytes, which clients send
    exact = hashlib.sha256(crlf.read_bytes()).hexdigest()
    assert (added.returncode, added.stdout) == (0, f"{exact}  {crlf}\n"), added.stderr
    listed = run_cli(["persisted-queries", "list"], database_url, tmp_path)
    assert listed.stdout == f"{exact}  Providers\n"

    # when they add a file that is not UTF-8, then it is refused with the reason
    latin = tmp_path / "latin.graphql"
    latin.write_bytes("# café\n".encode("latin-1") + PROVIDERS.encode())
    refused = run_cli(["persisted-queries", "add", str(latin)], database_url, tmp_path)
    assert refused.returncode == 1
    assert f"{latin}: not UTF-8" in refused.stderr
