"""apiSecretLogin / accessTokenRefresh: an API secret exchanged for a 30-minute access token
and a single-use 1-day refresh token."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from db.models import ApiToken
from db.types import utcnow
from tests.api_secrets.helpers import (
    DELETE,
    LOGIN,
    REFRESH,
    Issued,
    assert_forbidden,
    assert_refused,
    codes_and_fields,
    connect,
    delete,
    flip_one_character,
    issue,
    near_miss,
    set_secret_columns,
)
from tests.support import Api, create_store

VIEWER = "{ viewer { apiSecret { name } user { id } role merchant { name } } }"

LOOK_AROUND = """
query LookAround($storeId: String!) {
  merchant { stores { nodes { storeId } } }
  store(storeId: $storeId) { storeId }
}
"""


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def log_in(api: Api, secret: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.gql(LOGIN, {"apiSecret": secret})).data["apiSecretLogin"]
    assert payload["userErrors"] == [], payload
    return payload


async def refresh(api: Api, refresh_token: str) -> dict[str, Any]:
    result = await api.gql(REFRESH, {"refreshToken": refresh_token})
    payload: dict[str, Any] = result.data["accessTokenRefresh"]
    return payload


def assert_no_tokens(payload: dict[str, Any]) -> None:
    assert payload["accessToken"] is None
    assert payload["refreshToken"] is None
    assert payload["accessTokenExpiresAt"] is None


async def issued_secret(api: Api, name: str = "Partner") -> tuple[str, Issued]:
    owner = await api.sign_up()
    return owner.token, await issue(api, owner.token, owner.representative_store_id, name=name)


async def token_row(database_url: str, token: str) -> dict[str, Any]:
    async with connect(database_url) as conn:
        table = ApiToken.__table__  # type: ignore[attr-defined]
        row = (
            (await conn.execute(select(table).where(table.c.token_hash == sha256_hex(token))))
            .mappings()
            .one()
        )
    return dict(row)


async def expire_token(database_url: str, token: str) -> None:
    async with connect(database_url) as conn:
        await conn.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == sha256_hex(token))  # type: ignore[arg-type]
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


# --- log in --------------------------------------------------------------------------------


async def test_a_secret_is_exchanged_for_a_30_minute_access_and_a_1_day_refresh_token(
    api: Api, database_url: str
) -> None:
    # given
    _, issued = await issued_secret(api)
    before = utcnow()

    # when
    payload = await log_in(api, issued.secret)

    # then
    after = utcnow()
    access, refresh_token = payload["accessToken"], payload["refreshToken"]
    assert isinstance(access, str)
    assert isinstance(refresh_token, str)
    assert len({access, refresh_token, issued.secret}) == 3
    expires_at = datetime.fromisoformat(payload["accessTokenExpiresAt"])
    second = timedelta(seconds=1)
    assert before + timedelta(minutes=30) - second <= expires_at <= after + timedelta(minutes=30)
    # and: the refresh token lasts a day
    stored = await token_row(database_url, refresh_token)
    assert stored["kind"] == "refresh"
    refresh_expiry = stored["expires_at"]
    assert before + timedelta(days=1) - second <= refresh_expiry <= after + timedelta(days=1)


async def test_the_access_token_acts_as_the_secret(api: Api) -> None:
    # given
    _, issued = await issued_secret(api, name="Settlement bot")
    payload = await log_in(api, issued.secret)

    # when
    result = await api.gql(VIEWER, token=payload["accessToken"])

    # then
    assert result.status == 200
    viewer = result.data["viewer"]
    assert viewer["apiSecret"] == {"name": "Settlement bot"}
    assert viewer["user"] is None
    assert viewer["role"] is None
    assert viewer["merchant"]["name"]


async def test_a_sub_store_access_token_reaches_only_that_sub_store(api: Api) -> None:
    # given
    owner = await api.sign_up()
    gangnam, _ = await create_store(api, owner.token, "Gangnam")
    issued = await issue(api, owner.token, gangnam)
    access = (await log_in(api, issued.secret))["accessToken"]

    # when
    result = await api.gql(LOOK_AROUND, {"storeId": owner.representative_store_id}, token=access)

    # then
    assert result.data["merchant"]["stores"]["nodes"] == [{"storeId": gangnam}]
    assert result.data["store"] is None


async def test_an_access_token_may_not_manage_secrets(api: Api) -> None:
    # given
    _, issued = await issued_secret(api)
    access = (await log_in(api, issued.secret))["accessToken"]

    # when
    result = await api.gql(DELETE, {"id": issued.id}, token=access)

    # then
    assert_forbidden(result)
    assert (await api.gql(VIEWER, token=access)).status == 200


@pytest.mark.parametrize("kind", ["near miss", "flipped character", "garbage", "empty"])
async def test_a_wrong_secret_gets_invalid_credentials(api: Api, kind: str) -> None:
    # given
    _, issued = await issued_secret(api)
    attempt = {
        "near miss": near_miss(issued.secret),
        "flipped character": flip_one_character(issued.secret),
        "garbage": "portone_sk_nope",
        "empty": "",
    }[kind]

    # when
    result = await api.gql(LOGIN, {"apiSecret": attempt})

    # then
    payload = result.data["apiSecretLogin"]
    assert codes_and_fields(payload) == [("INVALID_CREDENTIALS", ["input", "apiSecret"])]
    assert_no_tokens(payload)
    assert issued.secret not in repr(result.body)
    if attempt:
        assert attempt not in repr(result.body)


async def test_a_deleted_or_expired_secret_gets_invalid_credentials(
    api: Api, database_url: str
) -> None:
    # given
    owner_token, deleted = await issued_secret(api)
    assert (await delete(api, owner_token, deleted.id))["userErrors"] == []
    _, expired = await issued_secret(api)
    await set_secret_columns(database_url, expired.pk, expires_at=utcnow() - timedelta(days=1))

    for secret in (deleted.secret, expired.secret):
        # when
        result = await api.gql(LOGIN, {"apiSecret": secret})

        # then
        payload = result.data["apiSecretLogin"]
        assert codes_and_fields(payload) == [("INVALID_CREDENTIALS", ["input", "apiSecret"])]
        assert_no_tokens(payload)
        assert secret not in repr(result.body)


# --- refresh -------------------------------------------------------------------------------


async def test_refreshing_rotates_the_pair_and_spends_the_refresh_token(api: Api) -> None:
    # given
    _, issued = await issued_secret(api)
    first = await log_in(api, issued.secret)

    # when
    rotated = await refresh(api, first["refreshToken"])

    # then
    assert rotated["userErrors"] == []
    assert rotated["accessToken"] not in (first["accessToken"], None)
    assert rotated["refreshToken"] not in (first["refreshToken"], None)
    assert (await api.gql(VIEWER, token=rotated["accessToken"])).status == 200
    # and: the old refresh token is spent
    again = await refresh(api, first["refreshToken"])
    assert codes_and_fields(again) == [("TOKEN_INVALID", ["input", "refreshToken"])]
    assert_no_tokens(again)
    # and: the new one works once
    assert (await refresh(api, rotated["refreshToken"]))["userErrors"] == []


async def test_a_second_log_in_kills_the_earlier_refresh_token(api: Api) -> None:
    # given
    _, issued = await issued_secret(api)
    first = await log_in(api, issued.secret)

    # when
    second = await log_in(api, issued.secret)

    # then
    stale = await refresh(api, first["refreshToken"])
    assert codes_and_fields(stale) == [("TOKEN_INVALID", ["input", "refreshToken"])]
    assert_no_tokens(stale)
    assert (await refresh(api, second["refreshToken"]))["userErrors"] == []


async def test_deleting_the_secret_revokes_its_tokens(api: Api) -> None:
    # given
    owner_token, issued = await issued_secret(api)
    pair = await log_in(api, issued.secret)
    assert (await api.gql(VIEWER, token=pair["accessToken"])).status == 200

    # when
    assert (await delete(api, owner_token, issued.id))["userErrors"] == []

    # then
    by_access = await api.gql(VIEWER, token=pair["accessToken"])
    assert_refused(by_access, "REVOKED", issued.secret, pair["accessToken"])
    by_refresh = await refresh(api, pair["refreshToken"])
    assert codes_and_fields(by_refresh) == [("TOKEN_INVALID", ["input", "refreshToken"])]
    assert_no_tokens(by_refresh)


async def test_an_expired_access_token_is_refused_as_expired(api: Api, database_url: str) -> None:
    # given
    _, issued = await issued_secret(api)
    pair = await log_in(api, issued.secret)
    await expire_token(database_url, pair["accessToken"])

    # when
    result = await api.gql(VIEWER, token=pair["accessToken"])

    # then
    assert_refused(result, "EXPIRED", issued.secret, pair["accessToken"])


async def test_an_expired_refresh_token_is_refused(api: Api, database_url: str) -> None:
    # given
    _, issued = await issued_secret(api)
    pair = await log_in(api, issued.secret)
    await expire_token(database_url, pair["refreshToken"])

    # when
    payload = await refresh(api, pair["refreshToken"])

    # then
    assert codes_and_fields(payload) == [("TOKEN_EXPIRED", ["input", "refreshToken"])]
    assert_no_tokens(payload)


async def test_an_access_token_or_garbage_is_no_refresh_token(api: Api) -> None:
    # given
    _, issued = await issued_secret(api)
    pair = await log_in(api, issued.secret)

    for attempt in (pair["accessToken"], issued.secret, "por_made-up", ""):
        # when
        payload = await refresh(api, attempt)

        # then
        assert codes_and_fields(payload) == [("TOKEN_INVALID", ["input", "refreshToken"])]
        assert_no_tokens(payload)


async def test_an_expired_secret_takes_its_access_token_with_it(
    api: Api, database_url: str
) -> None:
    # given
    _, issued = await issued_secret(api)
    pair = await log_in(api, issued.secret)
    await set_secret_columns(database_url, issued.pk, expires_at=utcnow() - timedelta(seconds=1))

    # when
    by_access = await api.gql(VIEWER, token=pair["accessToken"])
    by_refresh = await refresh(api, pair["refreshToken"])

    # then
    assert_refused(by_access, "EXPIRED", issued.secret, pair["accessToken"])
    assert codes_and_fields(by_refresh) == [("TOKEN_INVALID", ["input", "refreshToken"])]
    assert_no_tokens(by_refresh)
