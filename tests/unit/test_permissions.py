"""The permission matrix's helpers on hand-built callers: no database, no app.

Expectations are written out from the product's rules (the issue's matrix, who may grant what),
not computed from MATRIX, so a changed cell fails here as well as in the HTTP matrix test.
"""

from __future__ import annotations

import pytest

from gql_api.errors import ApiErrorCode, Forbidden, Unauthenticated
from gql_api.permissions import (
    GRANTABLE,
    Access,
    Operation,
    Principal,
    PrincipalKind,
    Role,
    access,
    covers,
    grantable_roles,
    may_act_on_store,
    require,
    role_covers,
)

MERCHANT = 7
OWN_STORE = 11  # the sub-store a STORE_* member or a sub-store API secret is bound to
OTHER_STORE = 12


def user(role: Role) -> Principal:
    store = OWN_STORE if role in {Role.STORE_MANAGER, Role.STORE_READ_ONLY} else None
    return Principal(
        kind=PrincipalKind.USER,
        merchant_pk=MERCHANT,
        user_id=3,
        role=role,
        store_pk=store,
        session_id=5,
        label=f"{role.value.lower()}@example.com",
    )


def api_secret(store_pk: int | None) -> Principal:
    """store_pk=None: a representative-store secret; otherwise bound to that sub-store."""
    return Principal(
        kind=PrincipalKind.API_SECRET,
        merchant_pk=MERCHANT,
        store_pk=store_pk,
        api_secret_id=9,
        label="Partner (…abcd)",
    )


SUB_STORE_SECRET = api_secret(OWN_STORE)
REPRESENTATIVE_SECRET = api_secret(None)

A, S, N = Access.ALL, Access.OWN_STORE, Access.NONE
# OWNER, ADMIN, MANAGER, DEVELOPER, READ_ONLY, STORE_MANAGER, STORE_READ_ONLY, sub-store secret
EXPECTED: dict[Operation, tuple[Access, ...]] = {
    Operation.READ: (A, A, A, A, A, S, S, S),
    Operation.MEMBER_READ: (A, A, A, A, A, S, S, N),
    Operation.STORE_MANAGE: (A, A, N, N, N, N, N, N),
    Operation.MEMBER_MANAGE: (A, A, A, N, N, S, N, N),
    Operation.AUDIT_READ: (A, A, N, N, N, N, N, N),
    Operation.OWNERSHIP_TRANSFER: (A, N, N, N, N, N, N, N),
    Operation.CHANNEL_MANAGE: (A, A, N, A, N, S, N, S),
    Operation.API_SECRET_MANAGE: (A, A, N, N, N, N, N, N),
    Operation.WEBHOOK_MANAGE: (A, A, N, A, N, S, N, S),
    Operation.OWN_ACCOUNT: (A, A, A, A, A, A, A, N),
}
CALLERS: list[Principal] = [*(user(role) for role in Role), SUB_STORE_SECRET]


def _cases() -> list[tuple[Operation, int, Access]]:
    return [
        (operation, column, cell)
        for operation, row in EXPECTED.items()
        for column, cell in enumerate(row)
    ]


def test_expected_covers_every_operation() -> None:
    assert set(EXPECTED) == set(Operation)


@pytest.mark.parametrize(("operation", "column", "cell"), _cases())
def test_access_of_each_caller(operation: Operation, column: int, cell: Access) -> None:
    assert access(CALLERS[column], operation) is cell


@pytest.mark.parametrize("operation", list(Operation))
def test_a_representative_store_secret_reaches_every_store_where_a_sub_store_secret_reaches_one(
    operation: Operation,
) -> None:
    sub_store_level = access(SUB_STORE_SECRET, operation)
    expected = Access.ALL if sub_store_level is Access.OWN_STORE else sub_store_level
    assert access(REPRESENTATIVE_SECRET, operation) is expected


def test_an_api_secret_never_uses_a_role_column() -> None:
    # an API secret that somehow carried a role is still judged by the API_SECRET column
    with_role = Principal(
        kind=PrincipalKind.API_SECRET, merchant_pk=MERCHANT, role=Role.OWNER, store_pk=OWN_STORE
    )
    assert access(with_role, Operation.STORE_MANAGE) is Access.NONE
    assert access(with_role, Operation.CHANNEL_MANAGE) is Access.OWN_STORE


# require


def test_require_without_a_caller_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated) as raised:
        require(None, Operation.READ)
    assert raised.value.extensions["code"] == ApiErrorCode.UNAUTHENTICATED.value


@pytest.mark.parametrize(("operation", "column", "cell"), _cases())
def test_require_refuses_exactly_the_none_cells(
    operation: Operation, column: int, cell: Access
) -> None:
    caller = CALLERS[column]
    if cell is Access.NONE:
        with pytest.raises(Forbidden) as raised:
            require(caller, operation)
        assert raised.value.extensions["code"] == ApiErrorCode.FORBIDDEN.value
    else:
        assert require(caller, operation) is caller


# may_act_on_store


@pytest.mark.parametrize(("operation", "column", "cell"), _cases())
def test_may_act_on_store(operation: Operation, column: int, cell: Access) -> None:
    caller = CALLERS[column]
    on_own = may_act_on_store(caller, operation, OWN_STORE)
    on_other = may_act_on_store(caller, operation, OTHER_STORE)
    assert (on_own, on_other) == {A: (True, True), S: (True, False), N: (False, False)}[cell]


def test_representative_store_secret_may_act_on_any_store() -> None:
    for store in (OWN_STORE, OTHER_STORE, 999):
        assert may_act_on_store(REPRESENTATIVE_SECRET, Operation.CHANNEL_MANAGE, store)
        assert not may_act_on_store(REPRESENTATIVE_SECRET, Operation.MEMBER_MANAGE, store)


def test_store_manager_acts_only_on_its_own_store() -> None:
    manager = user(Role.STORE_MANAGER)
    assert may_act_on_store(manager, Operation.WEBHOOK_MANAGE, OWN_STORE)
    assert not may_act_on_store(manager, Operation.WEBHOOK_MANAGE, OTHER_STORE)
    assert not may_act_on_store(manager, Operation.STORE_MANAGE, OWN_STORE)


# covers and role_covers


@pytest.mark.parametrize(
    ("granter", "granted", "expected"),
    [
        (A, A, True),
        (A, S, True),
        (A, N, True),
        (S, A, False),
        (S, S, True),
        (S, N, True),
        (N, A, False),
        (N, S, False),
        (N, N, True),
    ],
)
def test_covers(granter: Access, granted: Access, expected: bool) -> None:
    assert covers(granter, granted) is expected


def test_every_role_covers_itself_and_only_owner_covers_owner() -> None:
    for role in Role:
        assert role_covers(role, role)
        assert role_covers(Role.OWNER, role)
        assert role_covers(role, Role.OWNER) is (role is Role.OWNER)


@pytest.mark.parametrize(
    ("granter", "granted", "expected"),
    [
        (Role.ADMIN, Role.MANAGER, True),
        (Role.ADMIN, Role.DEVELOPER, True),
        (Role.MANAGER, Role.READ_ONLY, True),
        (Role.MANAGER, Role.STORE_READ_ONLY, True),
        # a MANAGER may not edit channels, a DEVELOPER and a STORE_MANAGER may
        (Role.MANAGER, Role.DEVELOPER, False),
        (Role.MANAGER, Role.STORE_MANAGER, False),
        # a DEVELOPER may not manage members, a MANAGER may
        (Role.DEVELOPER, Role.MANAGER, False),
        (Role.READ_ONLY, Role.STORE_READ_ONLY, True),
        (Role.STORE_READ_ONLY, Role.READ_ONLY, False),
        (Role.STORE_MANAGER, Role.STORE_READ_ONLY, True),
        (Role.STORE_MANAGER, Role.READ_ONLY, False),
    ],
)
def test_role_covers(granter: Role, granted: Role, expected: bool) -> None:
    assert role_covers(granter, granted) is expected


# GRANTABLE and grantable_roles


EXPECTED_GRANTABLE: dict[Role, set[Role]] = {
    Role.OWNER: {
        Role.ADMIN,
        Role.MANAGER,
        Role.DEVELOPER,
        Role.READ_ONLY,
        Role.STORE_MANAGER,
        Role.STORE_READ_ONLY,
    },
    Role.ADMIN: {
        Role.ADMIN,
        Role.MANAGER,
        Role.DEVELOPER,
        Role.READ_ONLY,
        Role.STORE_MANAGER,
        Role.STORE_READ_ONLY,
    },
    Role.MANAGER: {Role.READ_ONLY, Role.STORE_READ_ONLY},
    Role.DEVELOPER: set(),
    Role.READ_ONLY: set(),
    Role.STORE_MANAGER: {Role.STORE_MANAGER, Role.STORE_READ_ONLY},
    Role.STORE_READ_ONLY: set(),
}


def test_grantable_table() -> None:
    assert {role: set(roles) for role, roles in GRANTABLE.items()} == EXPECTED_GRANTABLE


def test_nobody_grants_owner() -> None:
    assert all(Role.OWNER not in roles for roles in GRANTABLE.values())


@pytest.mark.parametrize("role", list(Role))
def test_grantable_roles_of_a_user(role: Role) -> None:
    assert set(grantable_roles(user(role))) == EXPECTED_GRANTABLE[role]


@pytest.mark.parametrize("secret", [SUB_STORE_SECRET, REPRESENTATIVE_SECRET])
def test_an_api_secret_grants_nothing(secret: Principal) -> None:
    assert grantable_roles(secret) == frozenset()


def test_a_user_without_a_role_grants_nothing() -> None:
    assert grantable_roles(Principal(kind=PrincipalKind.USER, merchant_pk=MERCHANT)) == frozenset()
