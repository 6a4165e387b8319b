"""Configuration checked before any command does its work, in the operator's words.

The rules themselves live in gql_api.settings; this module turns a refusal into one line per
problem that names the environment variable, says what is wrong and what to do, shows what
`check-config` prints (every effective value, secrets masked), and checks that the database
answers and is migrated. Every line here is for an operator at a terminal: English, no
traceback, never a password (the commands exit with code 2 after printing them).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from enum import Enum
from urllib.parse import parse_qsl, urlencode

from pydantic import SecretStr, ValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import SettingsError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from db.migrate import SchemaState, schema_state
from gql_api.settings import AppEnv, Settings, get_settings

# Fields whose values are never printed: shown masked (DATABASE_URL), counted or starred.
SECRET_FIELDS = frozenset(
    {"database_url", "encryption_keys", "metrics_token", "platform_event_tokens"}
)
CONNECT_TIMEOUT_SECONDS = 10.0
MIGRATE_HINT = "run `integration-api migrate`"

# What to do, for the refusals pydantic words itself ("Input should be a valid integer").
_HINTS = {
    "int_parsing": "write a whole number",
    "int_from_float": "write a whole number",
    "float_parsing": "write a number",
    "bool_parsing": "write true or false",
}

# The settings each command acts on, by variable or prefix (every setting is validated by
# every command that reads settings). tests/test_config_check.py checks each matches a field.
ALL_SETTINGS = ("",)
_DATABASE = ("DATABASE_URL", "DB_")
_STATE = (*_DATABASE, "APP_ENV", "DATA_DIR", "ENCRYPTION_KEYS")
COMMAND_SETTINGS: dict[str, tuple[str, ...]] = {
    "serve": ALL_SETTINGS,
    "check-config": ALL_SETTINGS,
    "worker": (*_STATE, "LOG_LEVEL", "METRICS_", "WEBHOOK_"),
    "migrate": ("DATABASE_URL",),
    "create-merchant": (*_STATE, "ARGON2_", "SESSION_TTL_HOURS"),
    "event publish": (*_STATE, "WEBHOOK_"),
    "persisted-queries add": (*_DATABASE, "PERSISTED_QUERIES_", "MAX_"),
    "persisted-queries list": _DATABASE,
    "export-schema": (),
    "generate-key": (),
}


class ConfigurationError(Exception):
    """The configuration or the database it names cannot be used; `lines` say why, one
    problem each, for the operator (the command prints them and exits with code 2)."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = tuple(lines)


def variable(field: str) -> str:
    """The environment variable of a Settings field (pydantic-settings, no prefix)."""
    return field.upper()


def settings_read_by(command: str) -> list[str]:
    """The variables `command` acts on, in the order Settings declares them."""
    prefixes = COMMAND_SETTINGS[command]
    return [
        variable(name)
        for name in Settings.model_fields
        if any(variable(name).startswith(prefix) for prefix in prefixes)
    ]


def load_settings() -> Settings:
    """The settings of this process (gql_api.settings.get_settings), or ConfigurationError."""
    try:
        return get_settings()
    except ValidationError as error:
        raise ConfigurationError(problem_lines(error)) from None
    except SettingsError as error:  # e.g. an unreadable .env: its message names no value
        raise ConfigurationError([f"configuration cannot be read: {error}"]) from None
    except UnicodeError:
        raise ConfigurationError(
            [
                "configuration cannot be read: .env or a variable is not UTF-8 text; "
                "write it in UTF-8"
            ]
        ) from None


def problem_lines(error: ValidationError) -> list[str]:
    """One line per problem: `NAME: what is wrong; what to do`, no secret shown."""
    lines: list[str] = []
    for detail in error.errors(include_url=False):
        location = detail["loc"]
        if not location:  # a rule across settings: its message names the variables itself
            lines.extend(_message(detail).splitlines())
            continue
        field = str(location[0])
        name = variable(field)
        if len(location) > 1 and isinstance(location[1], int):
            name += f" entry {location[1] + 1}"
        shown = _shown_input(field, detail["input"])
        subject = f"{name}={shown}" if shown is not None else name
        lines.append(f"{subject}: {_message(detail)}")
    return lines


def _message(detail: ErrorDetails) -> str:
    if detail["type"] == "value_error":  # ours (gql_api.settings): written to be shown
        return str(detail["ctx"]["error"]) if "ctx" in detail else detail["msg"]
    text = detail["msg"]
    text = text[:1].lower() + text[1:]
    hint = _HINTS.get(detail["type"])
    return f"{text}; {hint}" if hint else text


def _shown_input(field: str, value: object) -> str | None:
    if field == "database_url" and isinstance(value, str):
        return masked_database_url(value)
    if field in SECRET_FIELDS or isinstance(value, SecretStr):
        return None
    if isinstance(value, list):
        return repr(",".join(str(item) for item in value))
    return repr(value) if isinstance(value, str) else repr(str(value))


def masked_database_url(url: str) -> str | None:
    """The URL with its password as *** (and a `password` query parameter's value); None when
    it does not parse (then it is not shown: where the password would be cannot be told).

    Read as a person reads it, not as SQLAlchemy does: everything up to the last `@` of the
    authority is user and password, so a password that holds `@` or `/` by mistake is masked
    whole (SQLAlchemy would take its tail for the host)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return None
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    if "@" not in authority and not authority.startswith("["):
        _host, colon, port = authority.rpartition(":")
        if colon and not port.isdigit():  # `user:password/db`, the host forgotten: not shown
            return None
    try:
        userinfo, at, location = rest.rpartition("@")
        if at and ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            rest = f"{user}:***@{location}"
        path, question, query = rest.partition("?")
        if question:
            pairs = [
                (name, "***" if "password" in name.lower() else value)
                for name, value in parse_qsl(query, keep_blank_values=True)
            ]
            rest = f"{path}?{urlencode(pairs, safe='*')}"
        shown = f"{scheme}://{rest}"
        shown.encode("utf-8")  # printable as it is
    except (ValueError, UnicodeError):
        return None
    return shown


def effective_values(settings: Settings) -> list[tuple[str, str]]:
    """Every setting as `check-config` prints it: the value in effect (GRAPHIQL_ENABLED and
    INTROSPECTION_ENABLED as the environment decides them), secrets masked or counted."""
    return [(variable(name), _shown(settings, name)) for name in Settings.model_fields]


def _shown(settings: Settings, field: str) -> str:
    if field == "graphiql_enabled":
        return _text(settings.graphiql_on)
    if field == "introspection_enabled":
        return _text(settings.introspection_on)
    if field == "database_url":
        return masked_database_url(settings.database_url) or "***"
    if field == "encryption_keys":
        return f"{len(settings.encryption_keys)} key(s)"
    if field == "platform_event_tokens":
        return f"{len(settings.platform_event_tokens)} token(s)"
    if field == "metrics_token":
        return "***" if settings.metrics_token is not None else ""
    return _text(getattr(settings, field))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    return str(value)


def warnings(settings: Settings) -> list[str]:
    """What is allowed but deserves a second look (printed by `check-config`)."""
    found: list[str] = []
    if settings.app_env is AppEnv.PRODUCTION and settings.webhook_allow_private_in_production:
        for network, kind in settings.non_public_webhook_networks():
            found.append(
                f"warning: WEBHOOK_ALLOWED_NETWORKS opens {network} ({kind}) to webhooks "
                "in production (WEBHOOK_ALLOW_PRIVATE_IN_PRODUCTION=true)"
            )
    return found


def check_database(settings: Settings, *, migrated: bool) -> SchemaState:
    """Connect to DATABASE_URL once (at most CONNECT_TIMEOUT_SECONDS) and, when `migrated`,
    require the schema at this code's newest migration; ConfigurationError otherwise.
    Cheap enough for `serve` to run before uvicorn starts."""
    where = _where(settings.database_url)
    try:
        state = asyncio.run(
            asyncio.wait_for(schema_state(settings.database_url), CONNECT_TIMEOUT_SECONDS)
        )
    except TimeoutError:
        raise ConfigurationError(
            [
                f"DATABASE_URL: {where} did not answer within {CONNECT_TIMEOUT_SECONDS:g} s; "
                "check the host and port, and that no firewall drops the connection"
            ]
        ) from None
    except Exception as error:  # every driver's own errors: worded below, never re-raised raw
        raise ConfigurationError([_connection_problem(error, where)]) from None
    if migrated and not state.at_head:
        raise ConfigurationError([_schema_problem(state, where)])
    return state


def _where(database_url: str) -> str:
    """The database named for a person: never the password (Settings refuses a URL whose host
    would hold part of it, gql_api.settings)."""
    try:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            return f"SQLite database {url.database}"
        if url.host is None:
            return f"PostgreSQL (local socket, database {url.database})"
        return f"PostgreSQL at {url.host}:{url.port or 5432}"
    except (ArgumentError, ValueError):
        return "the database"


def _connection_problem(error: BaseException, where: str) -> str:
    cause = _root_cause(error)
    if isinstance(cause, socket.gaierror):
        return f"DATABASE_URL: cannot connect to {where}: host name not found; check the host"
    if isinstance(cause, ConnectionRefusedError):
        return (
            f"DATABASE_URL: cannot connect to {where}: connection refused; check that the "
            "server is running and that the host and port are right"
        )
    if isinstance(cause, OSError):
        reason = cause.strerror or type(cause).__name__
        return (
            f"DATABASE_URL: cannot connect to {where}: {reason}; check that the server is "
            "running and that the host and port are right"
        )
    if not _server_refusal(cause):  # e.g. an option the driver does not take
        return (
            f"DATABASE_URL: cannot connect to {where}: {type(cause).__name__}; check the "
            "URL's options (after ?) and that it is a sqlite:/// or postgresql:// URL"
        )
    # The server's own refusal (authentication, unknown database, not a SQLite file): its
    # text names the user or the database, never the password.
    reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if where.startswith("SQLite"):
        return (
            f"DATABASE_URL: cannot open {where}: {reason}; check that the file is one this "
            "service created (`integration-api migrate`) and that it may be read and written"
        )
    return (
        f"DATABASE_URL: {where} refused the connection: {reason}; check the user, password "
        "and database name"
    )


def _server_refusal(error: BaseException) -> bool:
    """Whether the database itself refused (PostgreSQL's answer, SQLite's verdict on a file),
    rather than the driver refusing what it was given."""
    import sqlite3

    # asyncpg's PostgresError and its subclasses (no type stubs to import them by)
    server = any(
        cls.__name__ == "PostgresError" and cls.__module__.startswith("asyncpg")
        for cls in type(error).__mro__
    )
    return server or isinstance(error, sqlite3.DatabaseError)


def _root_cause(error: BaseException) -> BaseException:
    """The driver's error under SQLAlchemy's wrapping (DBAPIError.orig, `raise ... from`)."""
    current = error
    seen = {id(current)}
    while True:
        inner = getattr(current, "orig", None) or current.__cause__
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return current
        seen.add(id(inner))
        current = inner


def _schema_problem(state: SchemaState, where: str) -> str:
    needed = ", ".join(state.heads)
    if not state.current:
        return f"DATABASE_URL: {where} is not migrated (no tables yet); {MIGRATE_HINT}"
    current = ", ".join(state.current)
    if state.ahead:
        return (
            f"DATABASE_URL: {where} is at migration {current}, newer than this release knows "
            f"({needed}); run the release that migrated it"
        )
    return (
        f"DATABASE_URL: {where} is at migration {current}, this release needs {needed}; "
        f"{MIGRATE_HINT}"
    )
