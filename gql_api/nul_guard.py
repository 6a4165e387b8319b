"""NUL characters are refused at the door: PostgreSQL text cannot hold them."""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError, StringValueNode, ValidationRule

NUL = "\x00"
MESSAGE = "Strings must not contain NUL (\\u0000) characters."


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


def decode_json_without_nul(data: str | bytes) -> object:
    decoded = json.loads(data)
    if contains_nul(decoded):
        raise HTTPException(400, MESSAGE)
    return decoded


class NoNulInStrings(ValidationRule):
    """Refuses string literals with NUL characters in the document itself."""

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        if NUL in node.value:
            self.report_error(GraphQLError(MESSAGE, node))
