"""NUL characters are refused at the door: PostgreSQL text cannot hold them.

The JSON body is checked by gql_api.request_json; string literals of the document here.
"""

from __future__ import annotations

from graphql import GraphQLError, StringValueNode, ValidationRule

from gql_api.i18n import _

NUL = "\x00"
MESSAGE = _("Strings must not contain NUL (\\u0000) characters.")


class NoNulInStrings(ValidationRule):
    """Refuses string literals with NUL characters in the document itself."""

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        if NUL in node.value:
            self.report_error(GraphQLError(MESSAGE.render(), node))
