"""The request body's JSON, refused at the door when it could hurt what comes after.

Refused with 400 BAD_REQUEST: a body that is not a JSON object (strawberry reads its fields),
nesting deeper than `MAX_JSON_DEPTH` (graphql-core, strawberry and logging recurse over values;
Python's stack ends near 1,000 frames), objects with more than `MAX_OBJECT_KEYS` members
(graphql-core describes a wrong input object in full, for each of up to 50 errors), strings
that are not Unicode scalar values (a lone surrogate cannot be encoded as UTF-8: not by the
database, the response or the log) and NUL characters (PostgreSQL text cannot hold them).
"""

from __future__ import annotations

import re
from typing import Literal

import orjson
from cross_web import HTTPException

from gql_api.i18n import Message, _
from gql_api.nul_guard import MESSAGE as NUL_MESSAGE

MAX_JSON_DEPTH = 64  # the deepest input of the schema is 5 levels below the body
MAX_OBJECT_KEYS = 1000  # the widest input object has a dozen fields; variables stay far below
# Rendered when refused, in the request's language (gql_api.i18n).
DEPTH_MESSAGE = _(
    "The JSON body is nested more than {max_depth} levels deep.", max_depth=MAX_JSON_DEPTH
)
WIDTH_MESSAGE = _(
    "A JSON object in the body has more than {max_keys} members.", max_keys=MAX_OBJECT_KEYS
)
NOT_AN_OBJECT = _("The JSON body must be an object with a `query` member.")
UNICODE_MESSAGE = _(
    "The JSON body is not valid Unicode: strings must not hold lone surrogates "
    "(\\ud800-\\udfff escapes without their pair) or bytes that are not UTF-8."
)
SYNTAX_MESSAGE = _("Unable to parse request body as JSON")
_CONTAINERS = (dict, list)
# A \u0000 escape that is not itself escaped (an odd number of backslashes before the u).
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


class NotAnObjectError(HTTPException):
    """The body is JSON, but neither an object nor a list (400; its reason speaks of GraphQL:
    an endpoint taking other JSON says what it expects instead)."""


def decode_request_json(data: str | bytes) -> object:
    """The decoded body; HTTPException 400, its reason rendered in the request's language,
    when it is refused (see the module's docstring)."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    try:
        # orjson refuses lone surrogates and invalid UTF-8, and stops at 1,024 levels itself.
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise HTTPException(400, _refusal(raw, error).render()) from None
    # JSON text cannot hold a raw NUL: a decoded NUL comes from an escape, found at C speed.
    if b"\\u0000" in raw and _NUL_ESCAPE.search(raw):
        raise HTTPException(400, NUL_MESSAGE.render())
    # A list is left to strawberry, which answers that batching is off.
    if not isinstance(decoded, _CONTAINERS):
        raise NotAnObjectError(400, NOT_AN_OBJECT.render())
    problem = _shape_problem(decoded)
    if problem is not None:
        raise HTTPException(400, problem.render())
    return decoded


def _refusal(raw: bytes, error: orjson.JSONDecodeError) -> Message:
    """What to tell a client whose body orjson refused."""
    try:
        raw.decode("utf-8")  # strict: a surrogate (from a str body) is not UTF-8 either
    except UnicodeDecodeError:
        return UNICODE_MESSAGE
    reason = orjson_refusal_reason(error)
    if reason == "surrogate":
        return UNICODE_MESSAGE
    if reason == "depth":
        return DEPTH_MESSAGE
    return SYNTAX_MESSAGE


def orjson_refusal_reason(error: orjson.JSONDecodeError) -> Literal["surrogate", "depth", "other"]:
    """Why orjson refused valid UTF-8: it says so only in words (one JSONDecodeError type, the
    position of the problem). The one place that reads them; tests/test_request_json_library.py
    pins the wording, so an orjson that words them otherwise fails a test instead of turning a
    400 about Unicode or depth into one about syntax."""
    if "surrogate" in error.msg:
        return "surrogate"
    if "depth limit" in error.msg:
        return "depth"
    return "other"


def _shape_problem(value: object) -> Message | None:
    """Arrays and objects nested deeper than MAX_JSON_DEPTH, or an object wider than
    MAX_OBJECT_KEYS: level by level, no recursion, one C-level pass over each level's children
    (tens of ms for a 1 MiB body)."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    for _depth in range(MAX_JSON_DEPTH):
        children: list[object] = []
        for item in level:
            if isinstance(item, dict):
                if len(item) > MAX_OBJECT_KEYS:
                    return WIDTH_MESSAGE
                children.extend(item.values())
            else:
                children.extend(item)
        level = [child for child in children if isinstance(child, _CONTAINERS)]
        if not level:
            return None
    return DEPTH_MESSAGE
