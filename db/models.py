"""Every table of the service, in one place.

Enumerated values are stored as short strings (not database enums) so that adding a value is
not a migration on PostgreSQL. Secrets are never stored in clear: tokens as SHA-256, passwords
as argon2id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, text
from sqlmodel import Field, SQLModel

from db.types import UTCDateTime, utcnow

# Named constraints, so later migrations can alter them (SQLite batch mode needs names).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _created_at() -> datetime:
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)  # type: ignore[no-any-return]


class Merchant(SQLModel, table=True):
    """고객사: the customer account that owns stores and members."""

    __tablename__ = "merchants"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    created_at: datetime = _created_at()


class Store(SQLModel, table=True):
    """대표 상점 (representative) or 하위 상점 (sub-store); the hierarchy is flat."""

    __tablename__ = "stores"
    __table_args__ = (
        Index(
            "uq_stores_merchant_name_live",
            "merchant_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "uq_stores_one_representative",
            "merchant_id",
            unique=True,
            sqlite_where=text("is_representative"),
            postgresql_where=text("is_representative"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    store_id: str = Field(max_length=64, unique=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    name: str = Field(max_length=100)
    is_representative: bool = Field(default=False)
    created_at: datetime = _created_at()
    updated_at: datetime = _created_at()
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class User(SQLModel, table=True):
    """A console account and its membership: one merchant, one role.

    Removing a member keeps the row (audit and API secrets name their creator) but frees the
    email for a new account.
    """

    __tablename__ = "users"
    __table_args__ = (
        Index(
            "uq_users_email_active",
            "email",
            unique=True,
            sqlite_where=text("removed_at IS NULL"),
            postgresql_where=text("removed_at IS NULL"),
        ),
        Index(
            "uq_users_one_owner",
            "merchant_id",
            unique=True,
            sqlite_where=text("role = 'OWNER' AND removed_at IS NULL"),
            postgresql_where=text("role = 'OWNER' AND removed_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    email: str = Field(max_length=254)
    name: str = Field(max_length=100)
    password_hash: str = Field(sa_column=Column(String(256), nullable=False))
    role: str = Field(max_length=32)
    # Set only for the store-scoped roles (STORE_MANAGER, STORE_READ_ONLY).
    store_pk: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("stores.id"), nullable=True)
    )
    created_at: datetime = _created_at()
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Invitation(SQLModel, table=True):
    """An invitation to join a merchant; the token is stored only as SHA-256, single use (a
    resend replaces the hash, so the old token dies). Its status is derived from the dates."""

    __tablename__ = "invitations"
    __table_args__ = (
        Index("ix_invitations_merchant_email", "merchant_id", "email"),
        Index("ix_invitations_merchant_id_id", "merchant_id", "id"),  # newest-first pages
    )

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False))
    email: str = Field(max_length=254)
    role: str = Field(max_length=32)
    store_pk: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("stores.id"), nullable=True)
    )
    token_hash: str = Field(max_length=64, unique=True)
    invited_by: int = Field(sa_column=Column(Integer, ForeignKey("users.id"), nullable=False))
    created_at: datetime = _created_at()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AuditEvent(SQLModel, table=True):
    """Who changed what, written in the same transaction as the change; never a secret."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_merchant_id_id", "merchant_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False))
    actor: str = Field(max_length=300)
    action: str = Field(max_length=64)
    store_id: str | None = Field(default=None, max_length=64)
    target_id: str | None = Field(default=None, max_length=200)
    summary: str = Field(max_length=2000)
    request_id: str | None = Field(default=None, max_length=64)
    occurred_at: datetime = _created_at()


class AuthSession(SQLModel, table=True):
    """A console log-in; the token itself is never stored, only its SHA-256."""

    __tablename__ = "sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("users.id"), nullable=False, index=True)
    )
    created_at: datetime = _created_at()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Written when the session is opened and then at most once a minute by authentication
    # (gql_api.accounts.sessions), together with the address it was last used from.
    last_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    client_address: str | None = Field(default=None, max_length=64)  # gql_api.client_address
    user_agent: str | None = Field(default=None, max_length=256)  # as sent, cut to 256


class LoginFailure(SQLModel, table=True):
    """One failed log-in, counted per email and per client address across processes."""

    __tablename__ = "login_failures"
    __table_args__ = (
        Index("ix_login_failures_email_at", "email", "attempted_at"),
        Index("ix_login_failures_client_at", "client_address", "attempted_at"),
        Index("ix_login_failures_email_not_before", "email", "not_before"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    client_address: str = Field(default="unknown", max_length=64)  # its throttling key
    attempted_at: datetime = _created_at()
    # Past the per-email ceiling: the turn this attempt was given, before which its password
    # is not checked (the next attempt's turn comes an interval later).
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)


class LoginKnownAddress(SQLModel, table=True):
    """An (email, client address) that has logged in: it never waits for its turn behind
    someone else's guessing."""

    __tablename__ = "login_known_addresses"
    __table_args__ = (
        Index("uq_login_known_addresses_email_client", "email", "client_key", unique=True),
        Index("ix_login_known_addresses_last_success_at", "last_success_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    client_key: str = Field(max_length=64)  # gql_api.client_address.throttling_key
    last_success_at: datetime = _created_at()


class Channel(SQLModel, table=True):
    """A PG channel (채널) of a store. Secret credentials are stored only encrypted."""

    __tablename__ = "channels"
    __table_args__ = (
        Index(
            "uq_channels_store_mode_name_live",
            "store_pk",
            "mode",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_channels_store_pk_id", "store_pk", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_key: str = Field(max_length=64, unique=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    store_pk: int = Field(sa_column=Column(Integer, ForeignKey("stores.id"), nullable=False))
    name: str = Field(max_length=100)
    mode: str = Field(max_length=8)
    pg_provider: str = Field(max_length=32)
    module_code: str = Field(max_length=64)
    purpose: str = Field(max_length=32)
    pg_merchant_id: str = Field(max_length=100)
    shared_test: bool = Field(default=False)
    tax_type: str = Field(max_length=16)
    # {key: {"value": clear}} for plain fields, {key: {"cipher": ..., "masked": ...}} for secrets
    credentials: dict[str, dict[str, str]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    version: int = Field(default=1)
    created_at: datetime = _created_at()
    updated_at: datetime = _created_at()
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ChannelGroup(SQLModel, table=True):
    """A channel group (스마트 라우팅) of one store and mode. Deleting one removes its rows
    for good (it cannot be undone), so its name is unique among all rows of the store."""

    __tablename__ = "channel_groups"
    __table_args__ = (
        Index("uq_channel_groups_store_name", "store_pk", "name", unique=True),
        Index("ix_channel_groups_store_pk_id", "store_pk", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_group_id: str = Field(max_length=64, unique=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    store_pk: int = Field(sa_column=Column(Integer, ForeignKey("stores.id"), nullable=False))
    name: str = Field(max_length=100)
    mode: str = Field(max_length=8)
    created_at: datetime = _created_at()
    updated_at: datetime = _created_at()


class ChannelGroupSession(SQLModel, table=True):
    """One set of entries of a group from `begin_at` on: the current session is the latest
    that has begun, a scheduled one has not begun yet (decided on read, no background job)."""

    __tablename__ = "channel_group_sessions"
    __table_args__ = (Index("ix_channel_group_sessions_group_begin", "group_pk", "begin_at"),)

    id: int | None = Field(default=None, primary_key=True)
    group_pk: int = Field(
        sa_column=Column(Integer, ForeignKey("channel_groups.id"), nullable=False)
    )
    begin_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created_at: datetime = _created_at()


class ChannelGroupEntry(SQLModel, table=True):
    """A channel of a session with its weight (a whole percentage); a disabled entry is
    skipped whatever its weight. Rows (not JSON) so that a channel's deletion can find them."""

    __tablename__ = "channel_group_entries"
    __table_args__ = (
        Index("uq_channel_group_entries_session_position", "session_pk", "position", unique=True),
        Index("ix_channel_group_entries_channel_pk", "channel_pk"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_pk: int = Field(
        sa_column=Column(Integer, ForeignKey("channel_group_sessions.id"), nullable=False)
    )
    position: int
    channel_pk: int = Field(sa_column=Column(Integer, ForeignKey("channels.id"), nullable=False))
    weight: int
    enabled: bool


class ApiSecret(SQLModel, table=True):
    """A V2 API secret: only its key id, an argon2id hash and a short hint are stored."""

    __tablename__ = "api_secrets"
    # A page of a store's secrets (many stores' at once: gql_api.api_secrets.pages) seeks here.
    __table_args__ = (Index("ix_api_secrets_store_pk_id", "store_pk", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(max_length=32, unique=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    store_pk: int = Field(sa_column=Column(Integer, ForeignKey("stores.id"), nullable=False))
    name: str = Field(max_length=100)
    secret_hash: str = Field(sa_column=Column(String(256), nullable=False))
    hint: str = Field(max_length=64)
    # gql_api.security.api_keys.verify_tag: a look-alike is refused without argon2. None for a
    # secret issued before it existed, until its first successful verify.
    verify_tag: str | None = Field(default=None, max_length=8)
    created_by: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("users.id"), nullable=True)
    )
    created_at: datetime = _created_at()
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # gql_api.api_secrets.network_rules: [{"cidr": "203.0.113.0/24", "memo": ...}], validated
    # and normalized; empty: any address. On the row, so authentication reads it in the same
    # statement as the secret (one read per request).
    network_rules: list[dict[str, str | None]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # The last NETWORK_NOT_ALLOWED audit event (at most one a minute per secret).
    network_refusal_audited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """Access (30 min) and refresh (1 day) tokens exchanged for an API secret; SHA-256 only."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    api_secret_id: int = Field(
        sa_column=Column(Integer, ForeignKey("api_secrets.id"), nullable=False, index=True)
    )
    kind: str = Field(max_length=8)  # access | refresh
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _created_at()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiSecretFailure(SQLModel, table=True):
    """A use of an existing key id that failed, or whose argon2 verify is still running, per
    client address: counted across processes for throttling (a success deletes its row)."""

    __tablename__ = "api_secret_failures"
    __table_args__ = (
        Index("ix_api_secret_failures_key_at", "key_id", "attempted_at"),
        Index("ix_api_secret_failures_key_client_at", "key_id", "client_address", "attempted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key_id: str = Field(max_length=32)
    client_address: str = Field(default="unknown", max_length=64)
    # False: refused by its verification tag, without argon2 (it never counts against the
    # key's budget of argon2 verifications).
    ran_argon2: bool = True
    attempted_at: datetime = _created_at()


class WebhookSetting(SQLModel, table=True):
    """결제알림 setting of one store, module version (V1/V2) and mode (LIVE/TEST)."""

    __tablename__ = "webhook_settings"
    __table_args__ = (
        Index(
            "uq_webhook_settings_store_version_mode",
            "store_pk",
            "module_version",
            "mode",
            unique=True,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    store_pk: int = Field(sa_column=Column(Integer, ForeignKey("stores.id"), nullable=False))
    module_version: str = Field(max_length=4)
    mode: str = Field(max_length=8)
    url: str | None = Field(default=None, sa_column=Column(String(2048), nullable=True))
    content_type: str = Field(max_length=32)
    payload_version: str | None = Field(default=None, max_length=16)
    uses_representative_setting: bool = Field(default=True)
    updated_at: datetime = _created_at()


class WebhookSecret(SQLModel, table=True):
    """A V2 signing secret of one store and mode, encrypted; at most 2 active at a time."""

    __tablename__ = "webhook_secrets"
    __table_args__ = (Index("ix_webhook_secrets_store_mode", "store_pk", "mode"),)

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    store_pk: int = Field(sa_column=Column(Integer, ForeignKey("stores.id"), nullable=False))
    mode: str = Field(max_length=8)
    cipher: str = Field(sa_column=Column(String(512), nullable=False))
    hint: str = Field(max_length=32)
    created_at: datetime = _created_at()
    expired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One webhook sent (or refused), recorded whatever happened."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_setting", "store_pk", "module_version", "mode", "id"),
        Index("ix_webhook_deliveries_event", "event_pk", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    store_pk: int = Field(sa_column=Column(Integer, ForeignKey("stores.id"), nullable=False))
    module_version: str = Field(max_length=4)
    mode: str = Field(max_length=8)
    trigger: str = Field(max_length=8)
    url: str = Field(sa_column=Column(String(2048), nullable=False))
    request_headers: list[list[str]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    request_body: str = Field(sa_column=Column(String, nullable=False))
    status_code: int | None = Field(default=None)
    response_body: str | None = Field(default=None, sa_column=Column(String, nullable=True))
    error: str | None = Field(default=None, max_length=1000)
    duration_ms: int = Field(default=0)
    succeeded: bool = Field(default=False)
    attempted_at: datetime = _created_at()
    # Set for attempts at delivering an event (trigger EVENT or MANUAL), null for test calls.
    event_pk: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("webhook_events.id"), nullable=True)
    )
    # EVENT: 1 for the first attempt, up to 1 + the retries; MANUAL: the resend's number.
    attempt_number: int | None = Field(default=None)


class WebhookEvent(SQLModel, table=True):
    """A payment event published for a store, and the state of its delivery (the outbox row).

    An event goes to exactly one place, the setting in force for its store, module version and
    mode, so the event row is its own outgoing message: written in the transaction that accepts
    the event, claimed by workers through `next_attempt_at` and a lease (`locked_until`,
    `lease_token`), never sent from the request that published it.
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        Index("uq_webhook_events_store_event", "store_pk", "event_id", unique=True),
        Index("ix_webhook_events_due", "next_attempt_at"),
        Index("ix_webhook_events_store_listing", "store_pk", "id"),
        Index("ix_webhook_events_published_at", "published_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    merchant_id: int = Field(
        sa_column=Column(Integer, ForeignKey("merchants.id"), nullable=False, index=True)
    )
    store_pk: int = Field(sa_column=Column(Integer, ForeignKey("stores.id"), nullable=False))
    event_id: str = Field(max_length=200)  # the publisher's id: idempotency key in the store
    module_version: str = Field(max_length=4)
    mode: str = Field(max_length=8)
    type: str = Field(max_length=64)
    data: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    message_id: str = Field(max_length=40)  # webhook-id: the same on every attempt
    status: str = Field(max_length=16)
    status_reason: str | None = Field(default=None, max_length=1000)
    published_at: datetime = _created_at()  # the body's timestamp, the same on every attempt
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # EVENT: the schedule's next attempt; MANUAL: a queued resend (webhookEventsResendFailed).
    next_trigger: str = Field(default="EVENT", max_length=8)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_token: str | None = Field(default=None, max_length=32)
    attempt_count: int = Field(default=0)
    manual_resend_count: int = Field(default=0)
    succeeded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PersistedQuery(SQLModel, table=True):
    """A GraphQL document known by the SHA-256 of its text (gql_api.persisted_queries): the
    store of automatic persisted queries, shared by every process, and the trusted documents.

    A hash names one text forever, so `document` never changes; only `trusted` (set by the
    operator's `persisted-queries add`: such rows are never evicted, and alone run under
    PERSISTED_QUERIES_ONLY) and `last_used_at` (automatic rows beyond
    PERSISTED_QUERIES_MAX_ENTRIES go least recently used first, ties by id) do.
    """

    __tablename__ = "persisted_queries"
    __table_args__ = (Index("ix_persisted_queries_eviction", "trusted", "last_used_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True)  # lowercase hexadecimal
    document: str = Field(sa_column=Column(String, nullable=False))
    trusted: bool = Field(default=False)
    registered_at: datetime = _created_at()
    last_used_at: datetime = _created_at()
