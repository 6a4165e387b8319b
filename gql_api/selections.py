"""What the client selected under the field being resolved, read from the document itself.

strawberry's `Info.selected_fields` converts the field's whole subtree into its own objects
(about 60 µs for a webhook setting's, paid by every store of a dashboard); a resolver that
only needs to know whether one field is asked walks graphql-core's nodes instead, as
strawberry-django's optimizer does (through `Info._raw_info`, strawberry's wrapped
GraphQLResolveInfo; there is no public accessor for the field's nodes).
"""

from __future__ import annotations

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionNode

from gql_api.context import Info


def selects(info: Info, name: str) -> bool:
    """Whether the field being resolved selects `name` (directly, or through fragments and
    inline fragments) on its type. `@skip`/`@include` are not evaluated: a field they leave
    out still counts as selected, so this answers "may be asked", for work done ahead (a
    prefetch), never for what a client is shown."""
    raw = info._raw_info  # private: see the module docstring
    pending: list[SelectionNode] = [
        selection
        for node in raw.field_nodes
        if node.selection_set is not None
        for selection in node.selection_set.selections
    ]
    seen: set[str] = set()
    while pending:
        node = pending.pop()
        if isinstance(node, FieldNode):
            if node.name.value == name:
                return True
        elif isinstance(node, InlineFragmentNode):
            pending.extend(node.selection_set.selections)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            seen.add(node.name.value)
            fragment = raw.fragments.get(node.name.value)
            if fragment is not None:
                pending.extend(fragment.selection_set.selections)
    return False
