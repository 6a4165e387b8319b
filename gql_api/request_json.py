"""The request body's JSON, refused at the door when it could hurt what comes after.

Refused with 400 BAD_REQUEST: nesting deeper than `MAX_JSON_DEPTH` (graphql-core, strawberry and
logging recurse over values; Python's stack ends near 1,000 frames), strings that are not
Unicode scalar values (a lone surrogate cannot be encoded as UTF-8: not by the database, the
response or the log) and NUL characters (PostgreSQL text cannot hold them).
"""

from __future__ import annotations

import re

import orjson
from cross_web import HTTPException

from gql_api.nul_guard import MESSAGE as NUL_MESSAGE

MAX_JSON_DEPTH = 64  # the deepest input of the schema is 5 levels below the body
DEPTH_MESSAGE = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."
UNICODE_MESSAGE = (
    "The JSON body is not valid Unicode: strings must not hold lone surrogates "
    "(\\ud800-\\udfff escapes without their pair) or bytes that are not UTF-8."
)
SYNTAX_MESSAGE = "Unable to parse request body as JSON"
_CONTAINERS = (dict, list)
# A \u0000 escape that is not itself escaped (an odd number of backslashes before the u).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def decode_request_json(data: str | bytes) -> object:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        # orjson refuses lone surrogates and invalid UTF-8, and stops at 1,024 levels itself.
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        reason = str(error)
        if "surrogate" in reason or "UTF-8" in reason:
            raise HTTPException(400, UNICODE_MESSAGE) from None
        if "depth limit" in reason or "recursion" in reason.lower():
            raise HTTPException(400, DEPTH_MESSAGE) from None
        raise HTTPException(400, SYNTAX_MESSAGE) from None
    # JSON text cannot hold a raw NUL: a decoded NUL comes from an escape, found at C speed.
    if b"\\u0000" in raw and _NUL_ESCAPE.search(raw):
        raise HTTPException(400, NUL_MESSAGE)
    if _too_deep(decoded):
        raise HTTPException(400, DEPTH_MESSAGE)
    return decoded


def _too_deep(value: object) -> bool:
    """Whether arrays and objects nest deeper than MAX_JSON_DEPTH: level by level, no recursion,
    one C-level pass over each level's children (tens of ms for a 1 MiB body)."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    for _ in range(MAX_JSON_DEPTH):
        children: list[object] = []
        for item in level:
            children.extend(item.values() if isinstance(item, dict) else item)
        level = [child for child in children if isinstance(child, _CONTAINERS)]
        if not level:
            return False
    return True
