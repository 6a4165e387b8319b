"""Pins what gql_api.request_json reads of orjson's refusals: only their words say why.

If an orjson upgrade words them otherwise, these fail, instead of a body with a lone
surrogate or nesting past orjson's limit quietly getting a 400 about JSON syntax.
"""

from __future__ import annotations

import orjson
import pytest

from gql_api.request_json import orjson_refusal_reason


def _refusal(body: bytes) -> orjson.JSONDecodeError:
    with pytest.raises(orjson.JSONDecodeError) as caught:
        orjson.loads(body)
    return caught.value


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'"\\ud800"', "surrogate"),  # a high surrogate alone
        (b'"\\udc00"', "surrogate"),  # a low surrogate alone
        (b'"\\ud800\\u0041"', "surrogate"),  # a high surrogate, then no low one
        (b"[" * 1025 + b"]" * 1025, "depth"),  # orjson's own limit is 1,024 levels
        (b'{"query": ', "other"),
        (b"NaN", "other"),
        (b'"\\u00"', "other"),
    ],
)
def test_orjson_says_why_it_refused_a_body(body: bytes, reason: str) -> None:
    assert orjson_refusal_reason(_refusal(body)) == reason


def test_orjson_still_stops_at_1024_levels() -> None:
    orjson.loads(b"[" * 1024 + b"]" * 1024)
    _refusal(b"[" * 1025 + b"]" * 1025)
