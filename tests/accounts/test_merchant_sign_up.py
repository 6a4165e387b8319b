"""merchantSignUp: a merchant, its representative store (대표상점), the OWNER and a session."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from db.engine import create_engine
from tests.support import PASSWORD, Api

SIGN_UP = """
mutation SignUp($input: MerchantSignUpInput!) {
  merchantSignUp(input: $input) {
    merchant {
      id
      name
      representativeStore { id storeId name isRepresentative }
    }
    session { token expiresAt user { id email name } }
    userErrors { field code message }
  }
}
"""

SESSION_CREATE = """
mutation LogIn($input: SessionCreateInput!) {
  sessionCreate(input: $input) {
    session { token }
    userErrors { field code }
  }
}
"""

VIEWER = """
{
  viewer {
    role
    user { id email name }
    merchant {
      id
      name
      stores { edges { node { storeId name isRepresentative } } }
    }
  }
}
"""

STORE_ID = re.compile(
    r"^store-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
TABLES = ("merchants", "stores", "users", "sessions")


def sign_up_input(**overrides: str) -> dict[str, Any]:
    values = {
        "merchantName": "Acme Payments",
        "email": "owner@acme.example",
        "password": PASSWORD,
        "name": "Kim Owner",
    }
    values.update(overrides)
    return {"input": values}


async def row_counts(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return {
                table: (await conn.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one()
                for table in TABLES
            }
    finally:
        await engine.dispose()


async def log_in(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    result = await api.gql(SESSION_CREATE, {"input": {"email": email, "password": password}})
    payload: dict[str, Any] = result.data["sessionCreate"]
    return payload


async def test_sign_up_creates_merchant_representative_store_owner_and_session(api: Api) -> None:
    # given
    variables = sign_up_input()

    # when
    result = await api.gql(SIGN_UP, variables)

    # then
    payload = result.data["merchantSignUp"]
    assert payload["userErrors"] == []
    merchant = payload["merchant"]
    assert merchant["name"] == "Acme Payments"
    store = merchant["representativeStore"]
    assert STORE_ID.match(store["storeId"]), store["storeId"]
    assert store["isRepresentative"] is True
    assert store["name"]
    session = payload["session"]
    assert session["token"]
    assert datetime.fromisoformat(session["expiresAt"]) > datetime.now(UTC)
    assert session["user"]["email"] == "owner@acme.example"
    assert session["user"]["name"] == "Kim Owner"


async def test_the_sign_up_session_token_works_as_the_owner(api: Api) -> None:
    # given
    payload = (await api.gql(SIGN_UP, sign_up_input())).data["merchantSignUp"]
    token = payload["session"]["token"]

    # when
    result = await api.gql(VIEWER, token=token)

    # then
    viewer = result.data["viewer"]
    assert viewer["role"] == "OWNER"
    assert viewer["user"] == payload["session"]["user"]
    assert viewer["merchant"]["id"] == payload["merchant"]["id"]
    assert viewer["merchant"]["name"] == "Acme Payments"
    stores = [edge["node"] for edge in viewer["merchant"]["stores"]["edges"]]
    representative = payload["merchant"]["representativeStore"]
    assert stores == [
        {
            "storeId": representative["storeId"],
            "name": representative["name"],
            "isRepresentative": True,
        }
    ]


async def test_the_owner_can_log_in_with_the_sign_up_password(api: Api) -> None:
    # given
    await api.gql(SIGN_UP, sign_up_input())

    # when
    payload = await log_in(api, "owner@acme.example")

    # then
    assert payload["userErrors"] == []
    assert payload["session"]["token"]


async def test_each_sign_up_gets_its_own_store_id(api: Api) -> None:
    # given
    first = await api.sign_up()

    # when
    second = await api.sign_up()

    # then
    assert first.representative_store_id != second.representative_store_id
    assert first.merchant_id != second.merchant_id


async def test_names_of_exactly_100_characters_are_accepted(api: Api) -> None:
    # given
    long_name = "가" * 100

    # when
    result = await api.gql(SIGN_UP, sign_up_input(merchantName=long_name, name=long_name))

    # then
    payload = result.data["merchantSignUp"]
    assert payload["userErrors"] == []
    assert payload["merchant"]["name"] == long_name
    assert payload["session"]["user"]["name"] == long_name


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("merchantName", "", "REQUIRED"),
        ("merchantName", "   ", "REQUIRED"),
        ("merchantName", "m" * 101, "INVALID_INPUT"),
        ("name", "", "REQUIRED"),
        ("name", "   ", "REQUIRED"),
        ("name", "n" * 101, "INVALID_INPUT"),
        ("email", "not-an-email", "INVALID_INPUT"),
        ("email", "owner@", "INVALID_INPUT"),
        ("email", "owner acme@example.com", "INVALID_INPUT"),
        ("password", "123456789", "WEAK_PASSWORD"),
        ("password", "", "WEAK_PASSWORD"),
    ],
    ids=lambda v: v if len(str(v)) < 20 else f"{len(v)}-chars",
)
async def test_bad_input_is_a_user_error_and_changes_nothing(
    api: Api, database_url: str, field: str, value: str, code: str
) -> None:
    # given
    before = await row_counts(database_url)

    # when
    result = await api.gql(SIGN_UP, sign_up_input(**{field: value}))

    # then
    payload = result.data["merchantSignUp"]
    assert payload["merchant"] is None
    assert payload["session"] is None
    assert len(payload["userErrors"]) == 1
    error = payload["userErrors"][0]
    assert error["code"] == code
    assert error["field"] == ["input", field]
    assert error["message"]
    assert await row_counts(database_url) == before
    assert (await log_in(api, "owner@acme.example"))["session"] is None


async def test_every_bad_field_is_reported_at_once(api: Api, database_url: str) -> None:
    # given
    variables = sign_up_input(merchantName="", password="short")

    # when
    result = await api.gql(SIGN_UP, variables)

    # then
    payload = result.data["merchantSignUp"]
    assert payload["merchant"] is None
    errors = {tuple(e["field"]): e["code"] for e in payload["userErrors"]}
    assert errors == {
        ("input", "merchantName"): "REQUIRED",
        ("input", "password"): "WEAK_PASSWORD",
    }
    assert await row_counts(database_url) == dict.fromkeys(TABLES, 0)


async def test_an_email_already_signed_up_is_taken_whatever_its_case(
    api: Api, database_url: str
) -> None:
    # given
    first = (await api.gql(SIGN_UP, sign_up_input(email="dup@acme.example"))).data
    assert first["merchantSignUp"]["userErrors"] == []
    before = await row_counts(database_url)

    # when
    result = await api.gql(
        SIGN_UP,
        sign_up_input(email="DUP@Acme.Example", merchantName="Copycat", password="another pass 1"),
    )

    # then
    payload = result.data["merchantSignUp"]
    assert payload["merchant"] is None
    assert payload["session"] is None
    assert len(payload["userErrors"]) == 1
    assert payload["userErrors"][0]["code"] == "EMAIL_TAKEN"
    assert payload["userErrors"][0]["field"] == ["input", "email"]
    assert await row_counts(database_url) == before
    assert (await log_in(api, "dup@acme.example"))["session"] is not None
    assert (await log_in(api, "dup@acme.example", "another pass 1"))["session"] is None


async def test_an_email_is_stored_normalised_to_lower_case(api: Api) -> None:
    # given
    variables = sign_up_input(email="Mixed.Case@Acme.Example")

    # when
    payload = (await api.gql(SIGN_UP, variables)).data["merchantSignUp"]

    # then
    assert payload["userErrors"] == []
    assert payload["session"]["user"]["email"] == "mixed.case@acme.example"
    assert (await log_in(api, "mixed.case@acme.example"))["session"] is not None


async def test_concurrent_sign_ups_of_different_merchants_all_succeed(
    api: Api, database_url: str
) -> None:
    # given
    inputs = [sign_up_input(email=f"owner{i}@shop{i}.example") for i in range(4)]

    # when
    results = await asyncio.gather(*(api.gql(SIGN_UP, variables) for variables in inputs))

    # then
    for result in results:
        assert result.error_codes == []
        assert result.data["merchantSignUp"]["userErrors"] == []
    counts = await row_counts(database_url)
    assert counts["merchants"] == counts["stores"] == counts["users"] == 4


async def test_concurrent_sign_ups_with_one_email_create_one_account(
    api: Api, database_url: str
) -> None:
    # given
    inputs = [sign_up_input(merchantName=f"Racer {i}", email="race@acme.example") for i in range(4)]

    # when
    results = await asyncio.gather(*(api.gql(SIGN_UP, variables) for variables in inputs))

    # then
    for result in results:
        assert result.error_codes == []
    codes = sorted(
        tuple(e["code"] for e in result.data["merchantSignUp"]["userErrors"]) for result in results
    )
    assert codes == [(), ("EMAIL_TAKEN",), ("EMAIL_TAKEN",), ("EMAIL_TAKEN",)]
    counts = await row_counts(database_url)
    assert counts["merchants"] == counts["stores"] == counts["users"] == 1
