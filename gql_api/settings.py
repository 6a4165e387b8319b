"""Configuration from the environment (and an optional `.env`)."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

WorkerMode = Literal["embedded", "off"]

# OWASP Password Storage Cheat Sheet minimum for argon2id.
OWASP_MIN_MEMORY_KIB = 19456
OWASP_MIN_TIME_COST = 2


class AppEnv(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

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
    log_level: str = "INFO"
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
        min_length=32,
        description="when set, metrics require `Authorization: Bearer <token>`",
    )

    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="comma-separated CIDR ranges webhooks may reach although not public",
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

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # raises ValueError for bad CIDR
        return value

    @field_validator("webhook_retry_schedule_minutes")
    @classmethod
    def _valid_schedule(cls, value: list[float]) -> list[float]:
        if len(value) > 20 or any(not 0 <= minutes <= 7 * 24 * 60 for minutes in value):
            raise ValueError("at most 20 retries, each 0 to 10080 minutes (a week) after the last")
        return value

    @field_validator("platform_event_tokens")
    @classmethod
    def _strong_tokens(cls, value: list[SecretStr]) -> list[SecretStr]:
        for token in value:
            text = token.get_secret_value()
            if text.startswith("sha256:"):
                digest = text.removeprefix("sha256:")
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                    raise ValueError("a sha256: token is 64 hexadecimal digits")
            elif len(text) < 32:
                raise ValueError("platform event tokens are at least 32 characters")
        return value

    @model_validator(mode="after")
    def _metrics_port_of_its_own(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("METRICS_PORT must differ from PORT")
        return self

    @model_validator(mode="after")
    def _strict_in_production(self) -> Settings:
        if self.app_env is AppEnv.PRODUCTION:
            if not self.encryption_keys:
                raise ValueError("ENCRYPTION_KEYS is required when APP_ENV=production")
            if self.metrics_port is None and self.metrics_token is None:
                raise ValueError(
                    "METRICS_PORT or METRICS_TOKEN is required when APP_ENV=production "
                    "(metrics are not for the public)"
                )
            if (
                self.argon2_memory_kib < OWASP_MIN_MEMORY_KIB
                or self.argon2_time_cost < OWASP_MIN_TIME_COST
            ):
                raise ValueError("argon2 parameters below the OWASP minimum in production")
        return self

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
