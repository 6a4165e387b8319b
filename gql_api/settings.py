"""Configuration from the environment (and an optional `.env`).

Every rule a value must follow is checked here, when Settings is built, so that `check-config`,
`serve`, `migrate` and `worker` refuse the same configuration in the same words
(gql_api.config_check turns the refusal into one line per problem, naming the variable).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

WorkerMode = Literal["embedded", "off"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# OWASP Password Storage Cheat Sheet minimum for argon2id.
OWASP_MIN_MEMORY_KIB = 19456
OWASP_MIN_TIME_COST = 2
METRICS_TOKEN_MIN_CHARS = 32


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


ENCRYPTION_KEY_BYTES = 32
GENERATE_KEY_HINT = "create one with `integration-api generate-key`"
DATABASE_URL_HINT = "use sqlite:///path/to/file.db or postgresql://user:password@host:5432/database"

# Ranges a webhook must not reach from production unless the operator says so explicitly
# (WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION): the service's own host and network.
_NON_PUBLIC_RANGES: tuple[
    tuple[str, tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]], ...
] = (
    ("loopback", tuple(map(ipaddress.ip_network, ("127.0.0.0/8", "::1/128")))),
    ("link-local", tuple(map(ipaddress.ip_network, ("169.254.0.0/16", "fe80::/10")))),
    (
        "private",
        tuple(
            map(
                ipaddress.ip_network,
                ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7"),
            )
        ),
    ),
)


def decode_encryption_key(value: str) -> bytes:
    """One ENCRYPTION_KEYS entry as the AES-256 key it stands for: 32 bytes in URL-safe
    base64 (padding optional). The one definition of the format, used by the settings (a bad
    key is refused before anything starts) and by gql_api.security.encryption."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        raise ValueError("is not base64") from None
    if len(raw) != ENCRYPTION_KEY_BYTES:
        raise ValueError(f"decodes to {len(raw)} bytes, not {ENCRYPTION_KEY_BYTES}")
    return raw


def non_public_kind(network: str) -> str | None:
    """ "loopback", "link-local" or "private" when `network` (a CIDR range) reaches into such
    a range; None when it holds only other addresses."""
    parsed = ipaddress.ip_network(network, strict=False)
    for kind, ranges in _NON_PUBLIC_RANGES:
        if any(parsed.version == known.version and parsed.overlaps(known) for known in ranges):
            return kind
    return None


class Settings(BaseSettings):
    # An empty variable (`METRICS_PORT=` in a compose file or template) means "not set".
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    database_url: str = Field(
        default="sqlite:///var/integration.db",
        description="sqlite:///path or postgresql://user:pass@host/db; the async driver is chosen",
    )
    app_env: AppEnv = AppEnv.DEVELOPMENT
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("var")
    encryption_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated Fernet keys, newest first",
    )
    log_level: LogLevel = Field(
        default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL (any case)"
    )
    default_locale: Literal["ko", "en"] = Field(
        default="ko",
        description="language of messages (userErrors, errors) for a request whose "
        "Accept-Language names neither Korean nor English",
    )
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated proxy addresses (or CIDR ranges, or *) whose "
        "X-Forwarded-For names the client; empty: the connection's peer is the client",
    )

    web_concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API worker processes `serve` starts (its --workers overrides it); one per "
        "core is the usual choice",
    )
    shutdown_timeout_seconds: int = Field(
        default=30,
        gt=0,
        le=600,
        description="on SIGTERM, how long `serve` lets requests in flight finish before it "
        "closes their connections",
    )
    keepalive_timeout_seconds: int = Field(
        default=75,
        gt=0,
        le=3600,
        description="how long an idle HTTP connection is kept open; longer than the load "
        "balancer's idle timeout, so that the balancer, not this server, closes it",
    )
    clock_skew_tolerance_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="how far this host's clock may be from the database's before /readyz "
        "answers 503 (expiries are decided by the host's clock, see the README)",
    )

    db_pool_size: int = Field(
        default=10, ge=1, le=1000, description="database connections each process keeps open"
    )
    db_max_overflow: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="connections a process may open beyond DB_POOL_SIZE under load (closed "
        "again when returned); a process holds at most DB_POOL_SIZE + DB_MAX_OVERFLOW",
    )
    db_pool_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="how long a request waits for a free connection before it fails with a "
        "masked INTERNAL error marked retryable (HTTP 503 when nothing could be answered)",
    )
    db_pool_recycle_seconds: int = Field(
        default=1800,
        ge=-1,
        description="connections older than this are replaced when next taken from the pool "
        "(-1: never); below the idle limit of any proxy or pooler in between",
    )
    db_statement_cache: bool = Field(
        default=True,
        description="asyncpg's prepared-statement cache; false behind PgBouncer in transaction "
        "mode, where a connection's prepared statements do not follow it",
    )

    session_ttl_hours: int = Field(default=12, ge=1, le=24 * 30)
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="failed log-ins for one email from one client address within the window "
        "before that pair gets RATE_LIMITED",
    )
    login_max_failures_per_address: int = Field(
        default=50,
        ge=1,
        description="failed log-ins from one client address (any emails) within the window "
        "before that address gets RATE_LIMITED",
    )
    login_email_slowdown_after: int = Field(
        default=20,
        ge=1,
        description="failed log-ins for one email (all addresses) within the window after which "
        "its password checks are spaced out (see LOGIN_EMAIL_MAX_DELAY_SECONDS)",
    )
    login_email_max_delay_seconds: float = Field(
        default=3.0,
        ge=0,
        le=30,
        description="the longest interval between password checks for one email past "
        "LOGIN_EMAIL_SLOWDOWN_AFTER (it starts at 0.25 s and doubles with each further failure)",
    )
    login_email_max_queue_seconds: float = Field(
        default=30.0,
        ge=0,
        le=300,
        description="how far ahead an attempt past LOGIN_EMAIL_SLOWDOWN_AFTER may be given its "
        "turn; further out it gets RATE_LIMITED (an address that has logged in to the email "
        "within 30 days takes no turn)",
    )
    login_failure_window_minutes: int = Field(default=15, ge=1)

    # RFC 9106's second recommendation (t=3, 64 MiB), one lane: well above OWASP's minimum,
    # and one hash occupies one core, leaving the other to the event loop.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)
    argon2_max_concurrency: int = Field(default=1, ge=1)

    graphiql_enabled: bool | None = Field(
        default=None, description="default: on, except when APP_ENV=production"
    )
    introspection_enabled: bool | None = Field(
        default=None, description="default: on, except when APP_ENV=production"
    )
    max_query_depth: int = Field(default=15, ge=2)
    max_aliases: int = Field(default=30, ge=0)
    max_tokens: int = Field(default=3000, ge=10)
    max_query_objects: int = Field(
        default=20_000, ge=100, description="product of page sizes along a query's paths"
    )
    # gql_api.fairness: per process, how a heavy operation shares the event loop's CPU.
    heavy_query_cost: int = Field(
        default=1000,
        ge=1,
        description="an operation that could return more objects than this (counted as for "
        "MAX_QUERY_OBJECTS) is heavy: a dashboard of stores and their channels (2600), not a "
        "page of anything (at most 100) nor 20 stores with 20 channels each (420); at or above "
        "MAX_QUERY_OBJECTS, none is",
    )
    heavy_query_concurrency: int = Field(
        default=2, ge=1, description="heavy operations executing at once per process"
    )
    max_request_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="larger bodies get 413; fields have their own, smaller limits (userErrors)",
    )
    persisted_queries_only: bool = Field(
        default=False,
        description="trusted documents: run only documents registered with `integration-api "
        "persisted-queries add` (by hash, or by a text whose hash is registered); automatic "
        "persisted queries register nothing",
    )
    persisted_queries_max_entries: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="automatic persisted queries kept in the database; beyond it the least "
        "recently used go, a few at a time (trusted documents do not count and never go)",
    )
    persisted_queries_max_document_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="largest document (UTF-8 bytes) registered automatically; a larger one "
        "sent with its hash runs but is not stored, so its clients send the text every time",
    )

    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="serve the metrics on their own listener, METRICS_HOST:METRICS_PORT; the "
        "API's port then answers 404 on /metrics",
    )
    # Loopback unless said otherwise: a metrics port without a token must not face the world.
    metrics_host: str = Field(default="127.0.0.1", description="where METRICS_PORT listens")
    metrics_token: SecretStr | None = Field(
        default=None,
        description="when set, metrics require `Authorization: Bearer <token>`",
    )

    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated CIDR ranges webhooks may reach although not public",
    )
    webhook_allow_private_in_production: bool = Field(
        default=False,
        description="with APP_ENV=production, WEBHOOK_ALLOWED_NETWORKS may open loopback, "
        "link-local or private ranges only when this is true (webhooks then reach this "
        "service's own network)",
    )
    # PortOne V2: 30 s to connect and 30 s to read, for events and test calls alike.
    webhook_connect_timeout_seconds: float = Field(default=30.0, gt=0, le=60)
    webhook_read_timeout_seconds: float = Field(default=30.0, gt=0, le=60)
    webhook_response_max_bytes: int = Field(default=65536, ge=1024, le=1_048_576)
    webhook_delivery_retention_days: int = Field(
        default=30, ge=1, description="events, attempts and test calls older than this are pruned"
    )
    webhook_worker: WorkerMode = Field(
        default="embedded",
        description="embedded: `serve` also delivers webhook events (one worker in the process); "
        "off: only `integration-api worker` processes deliver",
    )
    webhook_worker_concurrency: int = Field(
        default=16, ge=1, le=1000, description="deliveries in flight at once, per worker process"
    )
    webhook_worker_per_host_concurrency: int = Field(
        default=4,
        ge=1,
        le=1000,
        description="deliveries in flight at once to one receiver host, per worker process",
    )
    webhook_worker_poll_seconds: float = Field(
        default=0.25,
        gt=0,
        le=60,
        description="how often an idle worker looks for due events (one small indexed read)",
    )
    webhook_retry_schedule_minutes: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [1.0, 4.0, 16.0, 64.0, 256.0],
        description="comma-separated delays before each retry, with full jitter (each retry "
        "waits a random time between 0 and its delay); the first attempt is immediate",
    )
    platform_event_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="comma-separated bearer tokens of the payment core for POST /internal/events "
        "(plain, or sha256:<hex> of the token); empty: the endpoint answers 404",
    )

    @field_validator(
        "encryption_keys",
        "webhook_allowed_networks",
        "forwarded_allow_ips",
        "webhook_retry_schedule_minutes",
        "platform_event_tokens",
        mode="before",
    )
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        # The engine (db.engine.async_url) picks the async driver for these two backends.
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):  # their messages repeat the URL or the password
            raise ValueError(
                "not a database URL (a port that is not a number? a password holding @, :, / "
                f"or #, which must be percent-encoded?); {DATABASE_URL_HINT}"
            ) from None
        if "@" in (url.host or ""):  # `user:p@ss@host`: the password's tail taken for the host
            raise ValueError(
                "the user or password holds @; percent-encode it (@ as %40, : as %3A, "
                "/ as %2F, # as %23)"
            )
        backend = url.get_backend_name()
        if backend == "sqlite":
            if url.database in (None, "", ":memory:"):
                raise ValueError(
                    "names no SQLite file (an in-memory database is not shared between "
                    f"connections); {DATABASE_URL_HINT}"
                )
        elif backend not in {"postgresql", "postgres"}:
            raise ValueError(f"{backend} is not supported; {DATABASE_URL_HINT}")
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _decodable_keys(cls, value: list[str]) -> list[str]:
        for number, key in enumerate(value, start=1):
            try:
                decode_encryption_key(key)
            except ValueError as wrong:
                raise ValueError(
                    f"key {number} of {len(value)} {wrong} (a key is {ENCRYPTION_KEY_BYTES} "
                    f"random bytes in URL-safe base64); {GENERATE_KEY_HINT}"
                ) from None
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_in_any_case(cls, value: object) -> object:
        if isinstance(value, str):
            level = value.strip().upper()
            if level not in get_args(LogLevel):
                raise ValueError("not a log level; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
            return level
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < METRICS_TOKEN_MIN_CHARS:
            raise ValueError(
                f"a metrics token is at least {METRICS_TOKEN_MIN_CHARS} characters; use a "
                "longer random token (e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"{network!r} is not a CIDR range; write ranges such as 10.0.0.0/8 or "
                    "fd00::/8, separated by commas"
                ) from None
        return value

    @field_validator("webhook_retry_schedule_minutes")
    @classmethod
    def _valid_schedule(cls, value: list[float]) -> list[float]:
        if len(value) > 20 or any(not 0 <= minutes <= 7 * 24 * 60 for minutes in value):
            raise ValueError(
                "at most 20 retries, each 0 to 10080 minutes (a week) after the last; "
                "write minutes separated by commas, e.g. 1,4,16,64,256"
            )
        return value

    @field_validator("platform_event_tokens")
    @classmethod
    def _strong_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for number, token in enumerate(value, start=1):
            text = token.get_secret_value()
            if text.startswith("sha256:"):
                digest = text.removeprefix("sha256:")
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                    raise ValueError(
                        f"token {number} of {len(value)}: a sha256: token is 64 hexadecimal "
                        "digits; write sha256:<hex of the token's SHA-256>"
                    )
            elif len(text) < 32:
                raise ValueError(
                    f"token {number} of {len(value)}: platform event tokens are at least 32 "
                    "characters; use a longer random token (e.g. `openssl rand -hex 32`)"
                )
        return value

    @model_validator(mode="after")
    def _metrics_port_of_its_own(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError(
                "METRICS_PORT must differ from PORT: choose another port for the metrics"
            )
        return self

    @model_validator(mode="after")
    def _strict_in_production(self) -> Settings:
        """Every production rule at once, one line each (each line names its variable)."""
        if self.app_env is not AppEnv.PRODUCTION:
            return self
        problems: list[str] = []
        if not self.encryption_keys:
            problems.append(
                f"ENCRYPTION_KEYS is required when APP_ENV=production; {GENERATE_KEY_HINT}"
            )
        if self.metrics_port is None and self.metrics_token is None:
            problems.append(
                "METRICS_PORT or METRICS_TOKEN is required when APP_ENV=production (metrics are "
                "not for the public); set METRICS_PORT (a listener of their own) or "
                "METRICS_TOKEN (at least 32 characters)"
            )
        if self.argon2_memory_kib < OWASP_MIN_MEMORY_KIB:
            problems.append(
                f"ARGON2_MEMORY_KIB={self.argon2_memory_kib} is below the OWASP minimum in "
                f"production; set at least {OWASP_MIN_MEMORY_KIB} (or leave it unset)"
            )
        if self.argon2_time_cost < OWASP_MIN_TIME_COST:
            problems.append(
                f"ARGON2_TIME_COST={self.argon2_time_cost} is below the OWASP minimum in "
                f"production; set at least {OWASP_MIN_TIME_COST} (or leave it unset)"
            )
        if not self.webhook_allow_private_in_production:
            for network, kind in self.non_public_webhook_networks():
                problems.append(
                    f"WEBHOOK_ALLOWED_NETWORKS opens {network} ({kind}) to webhooks in "
                    "production; remove it, or set WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION=true "
                    "if webhooks must reach this network"
                )
        if problems:
            # One ValueError per model validator: gql_api.config_check shows each line alone.
            raise ValueError("\n".join(problems))
        return self

    def non_public_webhook_networks(self) -> list[tuple[str, str]]:
        """The WEBHOOK_ALLOWED_NETWORKS ranges that reach loopback, link-local or private
        addresses, with which (refused in production unless allowed, warned of when allowed)."""
        found = [(network, non_public_kind(network)) for network in self.webhook_allowed_networks]
        return [(network, kind) for network, kind in found if kind is not None]

    @property
    def graphiql_on(self) -> bool:
        if self.graphiql_enabled is not None:
            return self.graphiql_enabled
        return self.app_env is not AppEnv.PRODUCTION

    @property
    def introspection_on(self) -> bool:
        if self.introspection_enabled is not None:
            return self.introspection_enabled
        return self.app_env is not AppEnv.PRODUCTION


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
