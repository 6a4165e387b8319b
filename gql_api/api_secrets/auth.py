"""Authenticating partner integrations: `PortOne <secret>` and the tokens exchanged for it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy import Label, Update, bindparam, or_, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.driver_query import DriverQuery
from db.engine import independent_write
from db.models import ApiSecret, ApiToken, Merchant, Store
from db.types import utcnow
from gql_api.api_secrets import network_rules, throttling
from gql_api.api_secrets.network_rules import NetworkNotAllowed
from gql_api.api_secrets.verified import VerifiedSecrets
from gql_api.caller import Caller, CallerMerchant
from gql_api.errors import DomainError, RateLimited, Unauthenticated, UserErrorCode
from gql_api.i18n import Message, _
from gql_api.permissions import Principal, PrincipalKind
from gql_api.security import api_keys
from gql_api.security.passwords import PasswordHashing
from gql_api.security.tokens import (
    ACCESS_TOKEN_PREFIX,
    REFRESH_TOKEN_PREFIX,
    new_token,
    token_hash,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from gql_api.metrics import Metrics

F = TypeVar("F", bound="DataclassInstance")

ACCESS_TOKEN_TTL = timedelta(minutes=30)
REFRESH_TOKEN_TTL = timedelta(days=1)
LAST_USED_GRANULARITY = timedelta(minutes=1)
MAX_TOKEN_LENGTH = 512
SECRET_INVALID = _("The API secret is not valid.")
REFRESH_TOKEN_INVALID = _("The refresh token is not valid (or already used).")


class CredentialRefused(Unauthenticated):
    """UNAUTHENTICATED for an API secret or a token exchanged for it, keeping its text as a
    Message: apiSecretLogin and accessTokenRefresh, which take the credential in their input,
    show the same reason as a userError, rendered there in the request's language."""

    def __init__(self, message: Message, *, reason: str) -> None:
        super().__init__(message, reason=reason)
        self.refusal = message


@dataclass(frozen=True, slots=True)
class _SecretFacts:
    """What authentication needs of an API secret row (the ORM row works as well)."""

    id: int | None
    key_id: str
    merchant_id: int
    name: str
    hint: str
    secret_hash: str
    verify_tag: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    deleted_at: datetime | None
    network_rules: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _StoreFacts:
    id: int | None
    is_representative: bool
    deleted_at: datetime | None


def _principal(secret: ApiSecret | _SecretFacts, store: Store | _StoreFacts) -> Principal:
    return Principal(
        kind=PrincipalKind.API_SECRET,
        merchant_pk=secret.merchant_id,
        # A representative-store secret reaches every store of the merchant.
        store_pk=None if store.is_representative else store.id,
        api_secret_id=secret.id,
        label=f"API secret “{secret.name}” ({secret.hint})",
    )


def _check_usable(
    secret: ApiSecret | _SecretFacts, store: Store | _StoreFacts, now: datetime
) -> None:
    if secret.deleted_at is not None:
        raise CredentialRefused(_("The API secret has been deleted."), reason="REVOKED")
    if store.deleted_at is not None:
        raise CredentialRefused(_("The API secret's store has been deleted."), reason="REVOKED")
    if secret.expires_at is not None and secret.expires_at <= now:
        raise CredentialRefused(_("The API secret has expired."), reason="EXPIRED")


class _Labelled(Generic[F]):
    """`record`'s fields read from the columns of `table` with the same names, labelled
    `<prefix><field>` in the statement and read back from the row by those labels."""

    def __init__(self, record: type[F], table: type[Any], prefix: str) -> None:
        self._record = record
        self._labels = tuple((field.name, prefix + field.name) for field in fields(record))
        self.columns: tuple[Label[Any], ...] = tuple(
            col(getattr(table, name)).label(label) for name, label in self._labels
        )

    def read(self, row: Any) -> F:
        return self._record(**{name: getattr(row, label) for name, label in self._labels})


# What authentication reads of an API secret, its store and merchant (see _facts).
_SECRET = _Labelled(_SecretFacts, ApiSecret, "secret_")
_STORE = _Labelled(_StoreFacts, Store, "store_")
_MERCHANT = _Labelled(CallerMerchant, Merchant, "merchant_")
_SECRET_COLUMNS = (*_SECRET.columns, *_STORE.columns, *_MERCHANT.columns)
# One statement, read on every `PortOne <secret>` request, so run without the ORM (see
# db.driver_query): the key's row, its store and its merchant (viewer.merchant needs no second
# query). Throttling is read only when argon2 would run (gql_api.api_secrets.throttling).
_CALLER = DriverQuery(
    core_select(*_SECRET_COLUMNS)
    .select_from(ApiSecret)
    .join(Store, col(Store.id) == col(ApiSecret.store_pk))
    .join(Merchant, col(Merchant.id) == col(ApiSecret.merchant_id))
    .where(col(ApiSecret.key_id) == bindparam("key_id"))
)


@dataclass
class SecretVerifier:
    """Verifies `PortOne <secret>` API secrets (one per process): what it needs (the engine,
    argon2, the cache of verified secrets, metrics) and the checks themselves."""

    engine: AsyncEngine
    hashing: PasswordHashing
    verified: VerifiedSecrets
    # api_secret_verifications_total (None: not counted, e.g. in the CLI).
    metrics: Metrics | None = None

    async def caller(self, *, plaintext: str, client_address: str) -> Caller:
        """The caller behind `PortOne <secret>`; UNAUTHENTICATED says why, never echoing it.

        Guesses never cause the genuine secret to be refused, and never start more than
        MAX_VERIFICATIONS argon2 runs per key and window (gql_api.api_secrets.throttling).
        The secret's network rules are checked on every use, before the cache of verified
        secrets and before argon2: a use from outside them is refused however it came, and
        guesses from outside never spend the key's budget of verifications.
        """
        parsed = api_keys.parse(plaintext)
        if parsed is None:
            raise CredentialRefused(
                _("The API secret is malformed (wrong format or checksum)."), reason="MALFORMED"
            )
        # This host's clock, for the expiry and lastUsedAt (db.clock: hours and days, within
        # CLOCK_SKEW_TOLERANCE_SECONDS). Throttling windows are the database's (throttling).
        now = utcnow()
        # On a connection of its own, back in the pool before argon2 (if needed) or the query
        # runs.
        found = await _CALLER.first(self.engine, key_id=parsed.key_id)
        if found is None:
            raise CredentialRefused(SECRET_INVALID, reason="INVALID")
        secret, store, merchant = _facts(found)
        assert secret.id is not None
        await self.check_network(secret, client_address, credential="API secret")
        _check_usable(secret, store, now)
        fingerprint = api_keys.fingerprint(parsed.plaintext)
        if not self._known(fingerprint, secret):
            async with self.verified.one_verify_at_a_time(fingerprint):
                if not self._known(fingerprint, secret):
                    await self._verify(secret, parsed.plaintext, client_address, now)
                    self.verified.remember(
                        fingerprint, secret_id=secret.id, secret_hash=secret.secret_hash
                    )
                    return Caller(_principal(secret, store), merchant)
        if secret.last_used_at is None or secret.last_used_at <= now - LAST_USED_GRANULARITY:
            await _touch(self.engine, secret.id, now)
        return Caller(_principal(secret, store), merchant)

    async def secret_id_for_login(self, *, plaintext: str, client_address: str) -> int:
        """The id of the secret to exchange for tokens; its failures are counted like any use.

        Runs before the mutation's write transaction: counting a failure and updating
        lastUsedAt use their own short transactions, which must not wait behind ours on SQLite.
        """
        try:
            caller = await self.caller(plaintext=plaintext, client_address=client_address)
        except NetworkNotAllowed:
            raise  # refused as every use from outside the rules is, not as a wrong secret
        except CredentialRefused as error:
            raise DomainError.single(
                UserErrorCode.INVALID_CREDENTIALS, ("input", "apiSecret"), error.refusal
            ) from None
        assert caller.principal.api_secret_id is not None
        return caller.principal.api_secret_id

    async def check_network(
        self, secret: ApiSecret | _SecretFacts, client_address: str, *, credential: str
    ) -> None:
        """NETWORK_NOT_ALLOWED (counted and audited) when the secret's rules do not allow
        `client_address`. Runs outside any unit of work (the audit commits on its own)."""
        if network_rules.allows(secret.network_rules, client_address):
            return
        refused = NetworkNotAllowed(secret, client_address)
        await self.record_refusal(refused, credential=credential)
        raise refused

    async def record_refusal(self, refused: NetworkNotAllowed, *, credential: str) -> None:
        """Count and audit a use refused by the secret's network rules (network_rules)."""
        if self.metrics is not None:
            self.metrics.api_secret_refusals.labels(
                reason=network_rules.NETWORK_NOT_ALLOWED,
                credential=credential.lower().replace(" ", "_"),
            ).inc()
        await network_rules.record_refusal(self.engine, refused, credential=credential)

    def _count(self, result: str) -> None:
        if self.metrics is not None:
            self.metrics.api_secret_verifications.labels(result=result).inc()

    def _known(self, fingerprint: str, secret: _SecretFacts) -> bool:
        assert secret.id is not None
        return self.verified.knows(fingerprint, secret_id=secret.id, secret_hash=secret.secret_hash)

    async def _verify(
        self, secret: _SecretFacts, plaintext: str, client_address: str, now: datetime
    ) -> None:
        """argon2, within the throttling rules; returns only for the right secret."""
        tag = api_keys.verify_tag(plaintext)
        engine = self.engine
        try:
            if secret.verify_tag is not None and not secrets.compare_digest(tag, secret.verify_tag):
                await throttling.refuse_by_tag(engine, secret, client_address=client_address)
                self._count("refused_tag")
                raise CredentialRefused(SECRET_INVALID, reason="INVALID")
            attempt = await throttling.claim_verification(
                engine,
                secret,
                client_address=client_address,
                tag_matched=secret.verify_tag is not None,
            )
        except RateLimited:
            self._count("refused_throttled")
            raise
        if not await self.hashing.verify(secret.secret_hash, plaintext):
            self._count("failed")
            await throttling.record_failed_verification(
                engine, secret, client_address=client_address
            )
            raise CredentialRefused(SECRET_INVALID, reason="INVALID")
        self._count("ok")
        assert secret.id is not None
        # On its own: authentication runs before, and outside, any mutation's unit of work.
        async with independent_write(engine) as conn:
            await conn.execute(throttling.forget_attempt(attempt))
            if secret.verify_tag is None:  # issued before tags: add it now
                await conn.execute(
                    update(ApiSecret)
                    .where(col(ApiSecret.id) == secret.id, col(ApiSecret.verify_tag).is_(None))
                    .values(verify_tag=tag)
                )
            await conn.execute(_touch_statement(secret.id, now))


_TOKEN_CALLER = DriverQuery(
    core_select(
        *_SECRET_COLUMNS,
        col(ApiToken.revoked_at).label("token_revoked_at"),
        col(ApiToken.expires_at).label("token_expires_at"),
    )
    .select_from(ApiToken)
    .join(ApiSecret, col(ApiSecret.id) == col(ApiToken.api_secret_id))
    .join(Store, col(Store.id) == col(ApiSecret.store_pk))
    .join(Merchant, col(Merchant.id) == col(ApiSecret.merchant_id))
    .where(col(ApiToken.token_hash) == bindparam("token_hash"), col(ApiToken.kind) == "access")
)


async def caller_for_access_token(
    *, verifier: SecretVerifier, token: str, client_address: str
) -> Caller:
    """The caller behind `Bearer <access token>`: the secret it was exchanged for, whose
    deletion, expiry and network rules (read with the token, on every use) apply at once."""
    if not token.startswith(ACCESS_TOKEN_PREFIX) or len(token) > MAX_TOKEN_LENGTH:
        raise CredentialRefused(_("The bearer token is malformed."), reason="MALFORMED")
    found = await _TOKEN_CALLER.first(verifier.engine, token_hash=token_hash(token))
    if found is None:
        raise CredentialRefused(_("The access token is not valid."), reason="INVALID")
    secret, store, merchant = _facts(found)
    await verifier.check_network(secret, client_address, credential="access token")
    now = utcnow()
    if found.token_revoked_at is not None:
        raise CredentialRefused(_("The access token has been revoked."), reason="REVOKED")
    if found.token_expires_at <= now:
        raise CredentialRefused(_("The access token has expired; refresh it."), reason="EXPIRED")
    _check_usable(secret, store, now)
    return Caller(_principal(secret, store), merchant)


def _facts(row: Any) -> tuple[_SecretFacts, _StoreFacts, CallerMerchant]:
    """The secret, its store and merchant from a row of _SECRET_COLUMNS (by their labels)."""
    return _SECRET.read(row), _STORE.read(row), _MERCHANT.read(row)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_token_expires_at: datetime


async def refresh(*, db: AsyncSession, refresh_token: str, client_address: str) -> TokenPair:
    """Rotate: the refresh token is spent and a new pair is returned.

    From outside the secret's network rules: NetworkNotAllowed, with nothing spent (the caller
    counts and audits it once this unit of work is rolled back: SecretVerifier.record_refusal).
    """
    path = ("input", "refreshToken")
    found = None
    if refresh_token.startswith(REFRESH_TOKEN_PREFIX) and len(refresh_token) <= MAX_TOKEN_LENGTH:
        found = (
            await db.exec(
                select(ApiToken, ApiSecret, Store)
                .join(ApiSecret, col(ApiSecret.id) == col(ApiToken.api_secret_id))
                .join(Store, col(Store.id) == col(ApiSecret.store_pk))
                .where(
                    col(ApiToken.token_hash) == token_hash(refresh_token),
                    col(ApiToken.kind) == "refresh",
                )
            )
        ).first()
    if found is None or found[0].revoked_at is not None:
        raise DomainError.single(UserErrorCode.TOKEN_INVALID, path, REFRESH_TOKEN_INVALID)
    issued, secret, store = found
    if not network_rules.allows(secret.network_rules, client_address):
        raise NetworkNotAllowed(secret, client_address)
    now = utcnow()
    if issued.expires_at <= now:
        raise DomainError.single(UserErrorCode.TOKEN_EXPIRED, path, _("The refresh token expired."))
    try:
        _check_usable(secret, store, now)
    except CredentialRefused as error:
        raise DomainError.single(UserErrorCode.TOKEN_INVALID, path, error.refusal) from None
    assert secret.id is not None and issued.id is not None
    # Claim the refresh token: of two concurrent refreshes, exactly one wins.
    claimed = await db.exec(
        update(ApiToken)
        .where(col(ApiToken.id) == issued.id, col(ApiToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    if claimed.rowcount != 1:
        raise DomainError.single(UserErrorCode.TOKEN_INVALID, path, REFRESH_TOKEN_INVALID)
    return await issue_pair(db, secret.id)


async def issue_pair(db: AsyncSession, secret_id: int) -> TokenPair:
    """A new access and refresh token; earlier refresh tokens of the secret stop working."""
    now = utcnow()
    await db.exec(
        update(ApiToken)
        .where(
            col(ApiToken.api_secret_id) == secret_id,
            col(ApiToken.kind) == "refresh",
            col(ApiToken.revoked_at).is_(None),
        )
        .values(revoked_at=now)
    )
    access, refresh_token = new_token(ACCESS_TOKEN_PREFIX), new_token(REFRESH_TOKEN_PREFIX)
    access_expires = now + ACCESS_TOKEN_TTL
    db.add_all(
        [
            ApiToken(
                api_secret_id=secret_id,
                kind="access",
                token_hash=token_hash(access),
                expires_at=access_expires,
            ),
            ApiToken(
                api_secret_id=secret_id,
                kind="refresh",
                token_hash=token_hash(refresh_token),
                expires_at=now + REFRESH_TOKEN_TTL,
            ),
        ]
    )
    await db.flush()
    return TokenPair(access, refresh_token, access_expires)


async def _touch(engine: AsyncEngine, secret_id: int, now: datetime) -> None:
    # On its own: authentication runs before, and outside, any mutation's unit of work.
    async with independent_write(engine, short=True) as conn:  # one row by its key
        await conn.execute(_touch_statement(secret_id, now))


def _touch_statement(secret_id: int, now: datetime) -> Update:
    """lastUsedAt, written at most once a minute per secret."""
    return (
        update(ApiSecret)
        .where(
            col(ApiSecret.id) == secret_id,
            or_(
                col(ApiSecret.last_used_at).is_(None),
                col(ApiSecret.last_used_at) <= now - LAST_USED_GRANULARITY,
            ),
        )
        .values(last_used_at=now)
    )
