"""Persisted queries: automatic (Apollo's and urql's protocol) and trusted documents.

Placeholder: requests pass through unchanged until the store lands.
"""

from __future__ import annotations

from strawberry.http import GraphQLRequestData

from gql_api.context import AppState


async def resolve(state: AppState, request_data: GraphQLRequestData) -> GraphQLRequestData:
    """The request with its document, found by the hash in `extensions.persistedQuery`."""
    return request_data
