"""Descriptions the schema gains once built: who may call each mutation, from the matrix.

Each mutation's description ends with the sentence naming the roles that may call it, made
from gql_api.permissions.MATRIX (roles_sentence) and the mapping below, never written by hand:
changing the matrix changes the schema's words with it. tests/test_schema_descriptions.py checks
that every mutation is mapped and that the mapping is the operation the permission matrix test
(tests/members/test_permission_matrix.py) finds each mutation to follow.
"""

from __future__ import annotations

from enum import StrEnum

from graphql import GraphQLInputObjectType, GraphQLNonNull, GraphQLSchema

from gql_api.permissions import Operation, roles_sentence


class Caller(StrEnum):
    """Mutations outside the matrix: who may call them instead."""

    ANYONE = "anyone"  # no credentials: signing up, logging in, accepting an invitation
    AUTHENTICATED = "authenticated"  # any credentials: logging out


CALLER_SENTENCES = {
    Caller.ANYONE: "Roles: anyone; no authentication needed.",
    Caller.AUTHENTICATED: "Roles: any authenticated caller (every role; API secrets too).",
}

# The operation each mutation's service checks first (require / may_act_on_store).
MUTATION_CALLERS: dict[str, Operation | Caller] = {
    "merchantSignUp": Caller.ANYONE,
    "sessionCreate": Caller.ANYONE,
    "sessionRevoke": Caller.AUTHENTICATED,
    "sessionRevokeAll": Operation.OWN_ACCOUNT,
    "passwordChange": Operation.OWN_ACCOUNT,
    "memberSessionsRevoke": Operation.MEMBER_MANAGE,
    "storeCreate": Operation.STORE_MANAGE,
    "storeUpdate": Operation.STORE_MANAGE,
    "storeDelete": Operation.STORE_MANAGE,
    "memberInvite": Operation.MEMBER_MANAGE,
    "invitationAccept": Caller.ANYONE,
    "invitationRevoke": Operation.MEMBER_MANAGE,
    "invitationResend": Operation.MEMBER_MANAGE,
    "memberRoleUpdate": Operation.MEMBER_MANAGE,
    "memberRemove": Operation.MEMBER_MANAGE,
    "merchantOwnershipTransfer": Operation.OWNERSHIP_TRANSFER,
    "channelCreate": Operation.CHANNEL_MANAGE,
    "channelUpdate": Operation.CHANNEL_MANAGE,
    "channelDelete": Operation.CHANNEL_MANAGE,
    "apiSecretIssue": Operation.API_SECRET_MANAGE,
    "apiSecretDelete": Operation.API_SECRET_MANAGE,
    "apiSecretNetworkRulesUpdate": Operation.API_SECRET_MANAGE,
    "apiSecretLogin": Caller.ANYONE,  # the API secret in the input is the credential
    "accessTokenRefresh": Caller.ANYONE,  # the refresh token in the input is the credential
    "webhookSettingUpdate": Operation.WEBHOOK_MANAGE,
    "webhookSecretIssue": Operation.WEBHOOK_MANAGE,
    "webhookSecretExpire": Operation.WEBHOOK_MANAGE,
    "webhookTest": Operation.WEBHOOK_MANAGE,
    "webhookEventResend": Operation.WEBHOOK_MANAGE,
    "webhookEventsResendFailed": Operation.WEBHOOK_MANAGE,
    "channelGroupCreate": Operation.CHANNEL_MANAGE,
    "channelGroupUpdate": Operation.CHANNEL_MANAGE,
    "channelGroupScheduledSessionDelete": Operation.CHANNEL_MANAGE,
    "channelGroupDelete": Operation.CHANNEL_MANAGE,
}

QUERY_DESCRIPTION = (
    "Reads. Every field but `pgProviders` and `viewer` needs credentials: "
    "`Authorization: Bearer <token>` (a console session or an API-secret access token) or "
    "`PortOne <secret>`."
)
MUTATION_DESCRIPTION = (
    "Writes. Problems with the input come back in the payload's `userErrors`, and then nothing "
    "was changed; each description ends with the roles that may call it."
)


def callers_sentence(caller: Operation | Caller) -> str:
    if isinstance(caller, Caller):
        return CALLER_SENTENCES[caller]
    return roles_sentence(caller)


def describe(schema: GraphQLSchema) -> None:
    """Give the built schema what only the whole schema knows: the Query and Mutation types'
    descriptions, each mutation's roles sentence, and each mutation's `input` argument the
    description of its input type (what GraphiQL shows beside the argument)."""
    if schema.query_type is not None:
        schema.query_type.description = QUERY_DESCRIPTION
    mutation = schema.mutation_type
    if mutation is None:
        return
    mutation.description = MUTATION_DESCRIPTION
    for name, field in mutation.fields.items():
        caller = MUTATION_CALLERS.get(name)
        if caller is not None:
            sentence = callers_sentence(caller)
            described = field.description or ""
            if not described.endswith(sentence):
                field.description = f"{described} {sentence}".strip()
        argument = field.args.get("input")
        if argument is not None and not argument.description:
            input_type = argument.type
            if isinstance(input_type, GraphQLNonNull):
                input_type = input_type.of_type
            if isinstance(input_type, GraphQLInputObjectType):
                argument.description = input_type.description
