"""Who is calling, and the one permission matrix that decides every operation."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gql_api.errors import Forbidden, Unauthenticated
from gql_api.i18n import _


class Role(StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MANAGER = "MANAGER"
    DEVELOPER = "DEVELOPER"
    READ_ONLY = "READ_ONLY"
    STORE_MANAGER = "STORE_MANAGER"
    STORE_READ_ONLY = "STORE_READ_ONLY"


STORE_SCOPED_ROLES = frozenset({Role.STORE_MANAGER, Role.STORE_READ_ONLY})


class PrincipalKind(StrEnum):
    USER = "user"
    API_SECRET = "api_secret"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller, always bound to one merchant.

    merchant_pk is the merchant's integer key (merchants.id). The tables still call the column
    holding it merchant_id (and so do the models); renaming the columns is a migration of its own.
    """

    kind: PrincipalKind
    merchant_pk: int
    user_id: int | None = None
    role: Role | None = None
    # The only store this caller may see (STORE_* roles, sub-store API secrets); None = all.
    store_pk: int | None = None
    session_id: int | None = None
    api_secret_id: int | None = None
    # How audit events name the caller: the user's email, or the API secret's name and hint.
    label: str = ""


class Operation(StrEnum):
    READ = "read"  # merchant, stores, channels, webhook settings, secret metadata
    MEMBER_READ = "member_read"  # members and their user accounts
    STORE_MANAGE = "store_manage"  # sub-store create / update / delete
    MEMBER_MANAGE = "member_manage"  # invite, change role, remove (within GRANTABLE)
    AUDIT_READ = "audit_read"
    OWNERSHIP_TRANSFER = "ownership_transfer"
    CHANNEL_MANAGE = "channel_manage"
    API_SECRET_MANAGE = "api_secret_manage"  # issue and delete V2 API secrets
    WEBHOOK_MANAGE = "webhook_manage"  # webhook settings, secrets and test calls
    OWN_ACCOUNT = "own_account"  # one's own sessions and password: people, not API secrets


class Access(StrEnum):
    NONE = "none"
    OWN_STORE = "own_store"  # only the caller's own store (STORE_* roles, API secrets)
    ALL = "all"


API_SECRET = "API_SECRET"
_A, _S, _N = Access.ALL, Access.OWN_STORE, Access.NONE

# Columns: OWNER, ADMIN, MANAGER, DEVELOPER, READ_ONLY, STORE_MANAGER, STORE_READ_ONLY, API secret
_COLUMNS: tuple[str, ...] = (*(role.value for role in Role), API_SECRET)
_ROWS: dict[Operation, tuple[Access, ...]] = {
    Operation.READ: (_A, _A, _A, _A, _A, _S, _S, _S),
    Operation.MEMBER_READ: (_A, _A, _A, _A, _A, _S, _S, _N),
    Operation.STORE_MANAGE: (_A, _A, _N, _N, _N, _N, _N, _N),
    Operation.MEMBER_MANAGE: (_A, _A, _A, _N, _N, _S, _N, _N),
    Operation.AUDIT_READ: (_A, _A, _N, _N, _N, _N, _N, _N),
    Operation.OWNERSHIP_TRANSFER: (_A, _N, _N, _N, _N, _N, _N, _N),
    Operation.CHANNEL_MANAGE: (_A, _A, _N, _A, _N, _S, _N, _S),
    Operation.API_SECRET_MANAGE: (_A, _A, _N, _N, _N, _N, _N, _N),
    Operation.WEBHOOK_MANAGE: (_A, _A, _N, _A, _N, _S, _N, _S),
    Operation.OWN_ACCOUNT: (_A, _A, _A, _A, _A, _A, _A, _N),
}
MATRIX: dict[Operation, dict[str, Access]] = {
    operation: dict(zip(_COLUMNS, cells, strict=True)) for operation, cells in _ROWS.items()
}


def covers(granter: Access, granted: Access) -> bool:
    """Whether a caller with `granter` access can do all that `granted` allows, on the same
    store scope (an OWN_STORE grant is bound to the granter's own store by the services)."""
    order = {Access.NONE: 0, Access.OWN_STORE: 1, Access.ALL: 2}
    return order[granter] >= order[granted]


def role_covers(granter: Role, granted: Role) -> bool:
    """Whether `granter` may do everything `granted` may, cell by cell of the matrix."""
    return all(
        covers(MATRIX[operation][granter.value], MATRIX[operation][granted.value])
        for operation in Operation
    )


# Which roles may make peers of their own role: a product decision (the console lets an
# admin add admins and a sub-store manager add sub-store managers, not a manager add managers),
# never a question of rights, which the matrix alone decides.
PEER_GRANTING = frozenset({Role.ADMIN, Role.STORE_MANAGER})


def _grantable(granter: Role) -> frozenset[Role]:
    """Derived from the matrix: a role may be granted, changed to or acted on only by a caller
    whose own access covers every cell of that role's row. Only callers who may manage members
    grant at all, and nobody grants OWNER: it moves only by an explicit ownership transfer."""
    if MATRIX[Operation.MEMBER_MANAGE][granter.value] is Access.NONE:
        return frozenset()
    return frozenset(
        role
        for role in Role
        if role is not Role.OWNER
        and role_covers(granter, role)
        and (role is not granter or granter in PEER_GRANTING)
    )


# The roles each role may grant, and so the members it may act on.
GRANTABLE: dict[Role, frozenset[Role]] = {role: _grantable(role) for role in Role}


def grantable_roles(principal: Principal) -> frozenset[Role]:
    if principal.kind is not PrincipalKind.USER or principal.role is None:
        return frozenset()
    return GRANTABLE[principal.role]


def access(principal: Principal, operation: Operation) -> Access:
    column = API_SECRET if principal.kind is PrincipalKind.API_SECRET else str(principal.role)
    level = MATRIX[operation][column]
    # A representative-store API secret reaches every store of its merchant.
    if level is Access.OWN_STORE and principal.store_pk is None:
        return Access.ALL
    return level


def require_principal(principal: Principal | None) -> Principal:
    """The caller; UNAUTHENTICATED (the one message for it) if the request named none."""
    if principal is None:
        raise Unauthenticated(
            _("Authentication required: send Authorization: Bearer <token> or PortOne <secret>.")
        )
    return principal


def require(principal: Principal | None, operation: Operation) -> Principal:
    """The caller, if it may perform `operation` somewhere; FORBIDDEN or UNAUTHENTICATED if not."""
    principal = require_principal(principal)
    if access(principal, operation) is Access.NONE:
        raise Forbidden(_("Your role does not allow this operation."))
    return principal


def confined_store_pk(principal: Principal, operation: Operation) -> int | None:
    """The one store `principal` is confined to for `operation` (OWN_STORE access), or None
    when it is not confined to one (ALL, or NONE, which `require` refuses)."""
    if access(principal, operation) is Access.OWN_STORE:
        return principal.store_pk
    return None


def may_act_on_store(principal: Principal, operation: Operation, store_pk: int) -> bool:
    level = access(principal, operation)
    if level is Access.ALL:
        return True
    return level is Access.OWN_STORE and principal.store_pk == store_pk


def roles_sentence(operation: Operation) -> str:
    """Who may perform `operation`, in words, read from MATRIX (and GRANTABLE for member
    management): the sentence the schema gives each mutation (gql_api.schema_descriptions), so
    what the schema tells developers cannot drift from what the services enforce."""
    row = MATRIX[operation]
    anywhere = [role.value for role in Role if row[role.value] is Access.ALL]
    own_store = [
        f"{role.value} (own sub-store only)" for role in Role if row[role.value] is Access.OWN_STORE
    ]
    roles = ", ".join([*anywhere, *own_store]) or "none"
    secrets = {
        Access.ALL: "API secrets: yes.",
        Access.OWN_STORE: "API secrets: yes (a sub-store's secret on its own sub-store only).",
        Access.NONE: "API secrets: no.",
    }[row[API_SECRET]]
    sentence = f"Roles: {roles}. {secrets}"
    if operation is Operation.MEMBER_MANAGE:
        grants = "; ".join(
            f"{role.value}: {', '.join(r.value for r in Role if r in GRANTABLE[role])}"
            for role in Role
            if GRANTABLE[role]
        )
        sentence += f" Each role grants, and acts on members of, only these roles: {grants}."
    return sentence
