"""Metrics move with requests; logs are JSON with a request id and never carry a secret."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gql_api.app import create_app
from gql_api.logs import JsonFormatter
from gql_api.settings import Settings
from tests.support import PASSWORD, Api, create_store

VIEWER = "query Dashboard { viewer { role } }"
SECRET_ISSUE = """mutation Issue($i: ApiSecretIssueInput!) { apiSecretIssue(input: $i) {
  secret userErrors { code } } }"""
CHANNEL_CREATE = """mutation AddChannel($i: ChannelCreateInput!) { channelCreate(input: $i) {
  channel { id } userErrors { code } } }"""
WEBHOOK_SECRET = """mutation Hook($s: String!) {
  webhookSecretIssue(input: {storeId: $s, mode: TEST}) { secret userErrors { code } } }"""
LOGIN = """mutation LogIn($i: SessionCreateInput!) { sessionCreate(input: $i) {
  session { token } userErrors { code } } }"""


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            body = line[len(name) + 1 : line.index("}")]
            if ",".join(sorted(body.split(","))) == wanted:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_count_requests_by_operation_and_outcome(
    api: Api, client: httpx.AsyncClient
) -> None:
    # given
    owner = await api.sign_up()
    before = (await client.get("/metrics")).text

    # when
    for _ in range(3):
        await api.gql(VIEWER, token=owner.token)
    await api.gql("query Broken { nope }", token=owner.token)
    await api.gql(VIEWER, authorization="Bearer pos_forged")
    response = await client.get("/metrics")

    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    after = response.text
    ok = {"operation": "viewer", "outcome": "ok"}  # the root field, not the client's name
    assert (
        _sample(after, "graphql_requests_total", ok) - _sample(before, "graphql_requests_total", ok)
        == 3
    )
    assert _sample(after, "graphql_errors_total", {"code": "GRAPHQL_VALIDATION_FAILED"}) >= 1
    assert _sample(after, "graphql_errors_total", {"code": "UNAUTHENTICATED"}) >= 1
    assert "graphql_request_duration_seconds_bucket" in after
    assert "db_pool_connections_in_use" in after
    assert "webhook_test_calls_total" in after


async def test_metrics_carry_root_fields_never_operation_names_or_variables(
    api: Api, client: httpx.AsyncClient
) -> None:
    # given a variable value that must not show up anywhere
    marker = "VariableValueThatMustNotAppear"

    # when
    await api.gql(LOGIN, {"i": {"email": f"{marker}@example.com", "password": marker}})
    text = (await client.get("/metrics")).text

    # then
    assert 'operation="sessionCreate"' in text
    assert "LogIn" not in text
    assert marker not in text


async def test_every_request_logs_one_json_access_line_with_its_request_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    owner = await api.sign_up()
    caplog.clear()

    # when
    with caplog.at_level(logging.INFO, logger="gql_api.access"):
        result = await api.gql(VIEWER, token=owner.token)

    # then
    lines = [r for r in caplog.records if r.name == "gql_api.access"]
    assert len(lines) == 1
    entry = json.loads(JsonFormatter().format(lines[0]))
    assert entry["request_id"] == result.headers["x-request-id"]
    assert entry["operation"] == "Dashboard"  # the client's name, for people reading logs
    assert entry["root_field"] == "viewer"
    assert entry["principal"] == "user"
    assert entry["outcome"] == "ok"
    assert entry["status"] == 200
    assert isinstance(entry["duration_ms"], float)


async def test_a_refused_credential_is_logged_as_refused(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gql_api.access"):
        await api.gql(VIEWER, authorization="PortOne not-a-secret")
    (line,) = [r for r in caplog.records if r.name == "gql_api.access"]
    assert line.principal == "refused"  # type: ignore[attr-defined]
    assert line.status == 401  # type: ignore[attr-defined]


async def test_no_secret_reaches_the_logs_through_a_full_flow(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # given / when: every kind of secret is handed over and used once
    owner = await api.sign_up()
    login = await api.gql(LOGIN, {"i": {"email": owner.email, "password": PASSWORD}})
    session_token = login.data["sessionCreate"]["session"]["token"]
    issued = await api.gql(
        SECRET_ISSUE,
        {"i": {"storeId": owner.representative_store_id, "name": "Partner"}},
        token=owner.token,
    )
    api_secret = issued.data["apiSecretIssue"]["secret"]
    await api.gql(VIEWER, authorization=f"PortOne {api_secret}")
    await api.gql(VIEWER, authorization=f"PortOne {api_secret[:-1]}x")
    sign_key = "SignKeyValueThatIsSecret0123456789"
    api_key = "IniApiKeyValueThatIsSecret987654"
    channel = await api.gql(
        CHANNEL_CREATE,
        {
            "i": {
                "storeId": owner.representative_store_id,
                "mode": "LIVE",
                "pgProvider": "INICIS_V2",
                "moduleCode": "INICIS_V2_PAYMENT",
                "name": "INICIS live",
                "pgMerchantId": "MOI1234567",
                "credentials": [
                    {"key": "signKey", "value": sign_key},
                    {"key": "iniApiKey", "value": api_key},
                ],
            }
        },
        token=owner.token,
    )
    assert channel.data["channelCreate"]["userErrors"] == []
    store_id, _ = await create_store(api, owner.token, "Branch")
    hook = await api.gql(WEBHOOK_SECRET, {"s": store_id}, token=owner.token)
    webhook_secret = hook.data["webhookSecretIssue"]["secret"]

    # then none of them, nor the password, appears in any log record
    logged = "\n".join(f"{r.getMessage()} {JsonFormatter().format(r)}" for r in caplog.records)
    assert logged  # the flow did log something
    for secret in (
        PASSWORD,
        owner.token,
        session_token,
        api_secret,
        sign_key,
        api_key,
        webhook_secret,
        webhook_secret.removeprefix("whsec_"),
    ):
        assert secret not in logged
    assert not re.search(r"portone_sk_[A-Za-z0-9]{12}_[A-Za-z0-9]{20}", logged)


async def test_metrics_show_how_long_the_event_loop_was_held(settings: Settings) -> None:
    # given a running app (its lifespan started, as `serve` starts it)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            await asyncio.sleep(0.12)  # a few quiet samples

            # when something holds the loop for 300 ms
            time.sleep(0.3)  # noqa: ASYNC251 (holding the loop is the point)
            await asyncio.sleep(0.12)  # the sampler wakes, late
            scraped = (await http.get("/metrics")).text

    # then the histogram counts a wake-up later than 250 ms, and a quiet one on time
    samples = {
        (s.name, s.labels.get("le")): s.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "event_loop_lag_seconds"
        for s in family.samples
    }
    count = samples[("event_loop_lag_seconds_count", None)]
    assert count - samples[("event_loop_lag_seconds_bucket", "0.25")] >= 1
    assert samples[("event_loop_lag_seconds_bucket", "0.05")] >= 1
