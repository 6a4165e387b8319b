"""Test helpers: a GraphQL client over the real ASGI app, and common operations."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection

from db.engine import create_engine

_counter = itertools.count(1)

SIGN_UP = """
mutation SignUp($input: MerchantSignUpInput!) {
  merchantSignUp(input: $input) {
    merchant { id name representativeStore { id storeId name isRepresentative } }
    session { token expiresAt user { id email name } }
    userErrors { field code message }
  }
}
"""

PASSWORD = "correct horse battery"


@dataclass
class GraphQLResponse:
    status: int
    body: dict[str, Any]
    headers: httpx.Headers

    @property
    def data(self) -> dict[str, Any]:
        assert self.body.get("errors") is None, self.body
        data = self.body["data"]
        assert isinstance(data, dict)
        return data

    @property
    def error_codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.body.get("errors") or []]


class Api:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        authorization: str | None = None,
    ) -> GraphQLResponse:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if authorization is not None:
            headers["Authorization"] = authorization
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        return GraphQLResponse(response.status_code, response.json(), response.headers)

    async def sign_up(
        self, *, merchant_name: str | None = None, email: str | None = None
    ) -> SignedUp:
        n = next(_counter)
        result = await self.gql(
            SIGN_UP,
            {
                "input": {
                    "merchantName": merchant_name or f"Merchant {n}",
                    "email": email or f"owner{n}@example.com",
                    "password": PASSWORD,
                    "name": f"Owner {n}",
                }
            },
        )
        payload = result.data["merchantSignUp"]
        assert payload["userErrors"] == [], payload
        return SignedUp(
            token=payload["session"]["token"],
            email=payload["session"]["user"]["email"],
            merchant_id=payload["merchant"]["id"],
            representative_store_id=payload["merchant"]["representativeStore"]["storeId"],
        )


@dataclass
class SignedUp:
    token: str
    email: str
    merchant_id: str
    representative_store_id: str


INVITE = """
mutation Invite($input: MemberInviteInput!) {
  memberInvite(input: $input) {
    invitation { id email role expiresAt store { storeId } }
    invitationToken
    userErrors { field code message }
  }
}
"""

ACCEPT = """
mutation Accept($input: InvitationAcceptInput!) {
  invitationAccept(input: $input) {
    member { id role user { id email } store { storeId } }
    session { token }
    userErrors { field code message }
  }
}
"""

STORE_CREATE = """
mutation StoreCreate($name: String!) {
  storeCreate(input: { name: $name }) {
    store { id storeId name }
    userErrors { field code message }
  }
}
"""


@dataclass
class Joined:
    token: str
    member_id: str
    user_id: str
    email: str


async def create_store(api: Api, token: str, name: str) -> tuple[str, str]:
    """(storeId, node id) of a new sub-store."""
    result = await api.gql(STORE_CREATE, {"name": name}, token=token)
    payload = result.data["storeCreate"]
    assert payload["userErrors"] == [], payload
    return payload["store"]["storeId"], payload["store"]["id"]


async def invite_and_join(
    api: Api, inviter_token: str, role: str, store_id: str | None = None
) -> Joined:
    """Invite a new person with `role` and accept as them."""
    n = next(_counter)
    email = f"member{n}@example.com"
    invite = {"email": email, "role": role}
    if store_id is not None:
        invite["storeId"] = store_id
    result = await api.gql(INVITE, {"input": invite}, token=inviter_token)
    payload = result.data["memberInvite"]
    assert payload["userErrors"] == [], payload
    accepted = await api.gql(
        ACCEPT,
        {
            "input": {
                "token": payload["invitationToken"],
                "name": f"Member {n}",
                "password": PASSWORD,
            }
        },
    )
    joined = accepted.data["invitationAccept"]
    assert joined["userErrors"] == [], joined
    return Joined(
        token=joined["session"]["token"],
        member_id=joined["member"]["id"],
        user_id=joined["member"]["user"]["id"],
        email=email,
    )


@asynccontextmanager
async def connect(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection to the test's database in a transaction committed at the end (for
    arranging or reading rows around the HTTP calls)."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            yield conn
    finally:
        await engine.dispose()
