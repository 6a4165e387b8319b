"""GraphQL over HTTP as clients expect it (the GraphQL-over-HTTP specification): which media
type an answer has, which status code goes with it, and how GET answers may be cached.

- `application/graphql-response+json` when the client's Accept prefers (or only allows) it: a
  request error (the document cannot be parsed or validated, variables do not fit, too
  complex, a persisted query refused) is then 400, with no `data` key. PersistedQueryNotFound
  is 200 either way: it is the persisted-query protocol's normal first step.
- `application/json` otherwise (no Accept, `*/*`, `application/json`): every well-formed
  GraphQL response is 200, request errors included, so that clients reading the body (Apollo
  with `errorPolicy: 'all'`, urql) see the errors; a request error has no `data` key there too.
- Either way: 401 for bad credentials (with `WWW-Authenticate` naming both schemes), 413 for a
  body too large, 429 when throttled, 405 (`Allow: POST`) for a mutation over GET, 406 when the
  client accepts neither media type; a request that failed whole on the database is 503 (500
  when a COMMIT may have been applied), as from any server in trouble.
"""

from __future__ import annotations

from collections.abc import Mapping

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
# Both schemes the API takes (gql_api.auth); a client told 401 learns how to authenticate.
WWW_AUTHENTICATE = 'Bearer realm="integration-api", PortOne realm="integration-api"'
# Anonymous GET answers (the PG catalog) are the same for everyone: a CDN may keep them.
PUBLIC_MAX_AGE_SECONDS = 300
PRIVATE = "private, no-store"
VARY = "Accept, Authorization"


MAX_RANGES = 32  # a header listing more is read no further


def weighted_ranges(header: str) -> list[tuple[str, float]]:
    """The ranges of a content-negotiation header (Accept, Accept-Language), lower-cased,
    with their weights (RFC 9110 12.4.2: q from 0 to 1, 1 when absent; a malformed weight is
    ignored, as browsers do). Parameters other than q are dropped; empty ranges too."""
    ranges: list[tuple[str, float]] = []
    for part in header.split(",")[:MAX_RANGES]:
        value, _, params = part.strip().partition(";")
        value = value.strip().lower()
        weight = 1.0
        for param in params.split(";"):
            name, _, given = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = max(0.0, min(1.0, float(given)))
                except ValueError:
                    weight = 1.0
        if value:
            ranges.append((value, weight))
    return ranges


def negotiate(accept: str | None) -> str | None:
    """The media type of the answer for the Accept header (several headers joined by commas):
    graphql-response+json when the client ranks it higher than application/json, or names it
    and ranks both the same; application/json when it accepts that (directly, as
    `application/*` or `*/*`, or by sending no Accept at all) and nothing better; else None
    (406). Parameters other than q (charset) are ignored: the answer is UTF-8 either way."""
    if accept is None or not accept.strip():
        return JSON
    ranks: dict[str, float] = {}
    for media, quality in weighted_ranges(accept):
        ranks[media] = max(ranks.get(media, 0.0), quality)
    # The most specific range names a type's weight (RFC 9110): `application/json;q=0, */*`
    # refuses JSON and accepts the rest.
    wildcard = ranks.get("application/*", ranks.get("*/*", 0.0))
    graphql = ranks.get(GRAPHQL_RESPONSE_JSON, wildcard)
    json = ranks.get(JSON, wildcard)
    named = GRAPHQL_RESPONSE_JSON in ranks  # a wildcard alone keeps legacy clients on JSON
    if graphql > json or (named and graphql == json > 0):
        return GRAPHQL_RESPONSE_JSON
    if json > 0:
        return JSON
    return None


def content_type(media: str) -> str:
    return f"{media}; charset=utf-8"


def get_cache_headers(*, authenticated: bool, errors: bool) -> Mapping[str, str]:
    """Headers of a GET answer: an authenticated caller's answers are theirs alone and never
    stored; an anonymous answer without errors is public for a few minutes."""
    if authenticated or errors:
        return {"Cache-Control": PRIVATE if authenticated else "no-store", "Vary": VARY}
    return {"Cache-Control": f"public, max-age={PUBLIC_MAX_AGE_SECONDS}", "Vary": VARY}
