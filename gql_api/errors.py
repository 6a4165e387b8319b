"""Error vocabulary shared by the services and the GraphQL layer.

`DomainError` carries expected, user-fixable failures (they become `userErrors`); `ApiError`
subclasses become top-level GraphQL errors with `extensions.code`. Anything else is unexpected
and is masked as INTERNAL (`masked_extensions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from db.engine import database_unavailable
from gql_api.i18n import Message, _


class UserErrorCode(StrEnum):
    INVALID_INPUT = "INVALID_INPUT"
    REQUIRED = "REQUIRED"
    NOT_FOUND = "NOT_FOUND"
    NAME_TAKEN = "NAME_TAKEN"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOKEN_INVALID = "TOKEN_INVALID"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    REPRESENTATIVE_STORE_UNDELETABLE = "REPRESENTATIVE_STORE_UNDELETABLE"
    OWNER_REQUIRED = "OWNER_REQUIRED"
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"
    MEMBER_LIMIT_EXCEEDED = "MEMBER_LIMIT_EXCEEDED"
    ALREADY_MEMBER = "ALREADY_MEMBER"
    PG_MODULE_MISMATCH = "PG_MODULE_MISMATCH"
    PURPOSE_NOT_SUPPORTED = "PURPOSE_NOT_SUPPORTED"
    CREDENTIAL_MISSING = "CREDENTIAL_MISSING"
    CREDENTIAL_UNKNOWN = "CREDENTIAL_UNKNOWN"
    SHARED_TEST_MID_NOT_ALLOWED = "SHARED_TEST_MID_NOT_ALLOWED"
    CHANNEL_NAME_DUPLICATE = "CHANNEL_NAME_DUPLICATE"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    WEBHOOK_URL_NOT_SET = "WEBHOOK_URL_NOT_SET"
    WEBHOOK_URL_FORBIDDEN = "WEBHOOK_URL_FORBIDDEN"
    WEBHOOK_SECRET_LIMIT = "WEBHOOK_SECRET_LIMIT"
    WEBHOOK_SECRET_NOT_SET = "WEBHOOK_SECRET_NOT_SET"
    CONTENT_TYPE_NOT_SUPPORTED = "CONTENT_TYPE_NOT_SUPPORTED"
    ALREADY_EXPIRED = "ALREADY_EXPIRED"
    WEBHOOK_REPRESENTATIVE_SETTING = "WEBHOOK_REPRESENTATIVE_SETTING"
    WEBHOOK_TEST_RATE_LIMITED = "WEBHOOK_TEST_RATE_LIMITED"
    MAX_WEBHOOK_RETRY_COUNT_REACHED = "MAX_WEBHOOK_RETRY_COUNT_REACHED"
    WEBHOOK_RESEND_RATE_LIMITED = "WEBHOOK_RESEND_RATE_LIMITED"
    NETWORK_RULE_INVALID = "NETWORK_RULE_INVALID"
    INVITATION_NOT_PENDING = "INVITATION_NOT_PENDING"
    CHANNEL_GROUP_NAME_DUPLICATE = "CHANNEL_GROUP_NAME_DUPLICATE"
    CHANNEL_GROUP_WEIGHTS_INVALID = "CHANNEL_GROUP_WEIGHTS_INVALID"
    CHANNEL_GROUP_MODE_MISMATCH = "CHANNEL_GROUP_MODE_MISMATCH"
    CHANNEL_IN_GROUP = "CHANNEL_IN_GROUP"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    SCHEDULE_INVALID = "SCHEDULE_INVALID"


@dataclass(frozen=True)
class FieldError:
    code: UserErrorCode
    field: tuple[str, ...] | None
    message: Message  # rendered in the request's language when shown (gql_api.i18n)


class DomainError(Exception):
    """One or more user-fixable problems; the mutation changes nothing."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(error.message.render("en") for error in errors))
        self.errors = list(errors)

    @classmethod
    def single(
        cls, code: UserErrorCode, field: Sequence[str] | None, message: Message
    ) -> DomainError:
        return cls([FieldError(code, tuple(field) if field else None, message)])


@dataclass
class Problems:
    """Collects validation problems so a client sees all of them at once."""

    errors: list[FieldError] = field(default_factory=list)

    def add(self, code: UserErrorCode, path: Sequence[str] | None, message: Message) -> None:
        self.errors.append(FieldError(code, tuple(path) if path else None, message))

    def raise_if_any(self) -> None:
        if self.errors:
            raise DomainError(self.errors)


class ApiErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    RATE_LIMITED = "RATE_LIMITED"
    BAD_REQUEST = "BAD_REQUEST"
    INTERNAL = "INTERNAL"


class ApiError(Exception):
    """A failure shown as a top-level GraphQL error; its message is safe to show. It is raised
    while answering a request, so its text is rendered at once, in the request's language."""

    code: ApiErrorCode = ApiErrorCode.INTERNAL

    def __init__(self, message: Message, **extra: str | int) -> None:
        self.message = message.render()
        super().__init__(self.message)
        self.extensions: dict[str, str | int] = {"code": self.code.value, **extra}


class Unauthenticated(ApiError):
    code = ApiErrorCode.UNAUTHENTICATED


class Forbidden(ApiError):
    code = ApiErrorCode.FORBIDDEN


class RateLimited(ApiError):
    code = ApiErrorCode.RATE_LIMITED


class BadRequest(ApiError):
    code = ApiErrorCode.BAD_REQUEST


INTERNAL_MESSAGE = _("Internal server error.")
RETRY_AFTER_SECONDS = 1  # a restarted server accepts connections again within moments


def masked_extensions(
    error: BaseException | None, request_id: str, *, commit_begun: bool
) -> dict[str, str | bool]:
    """What a client learns of an unexpected error: INTERNAL, the request id to quote, and,
    when the database was unavailable for the moment (a restart, a lost connection, no pooled
    connection free in time: db.engine.database_unavailable), whether sending the same request
    again is safe.

    `retryable: true` only while nothing of the request can have been committed
    (`commit_begun` False: no unit of work of it sent COMMIT, gql_api.context.Context.
    commit_begins), as for every query. Once a COMMIT was sent its outcome is unknown (a lost
    reply does not undo it), and a second merchantSignUp or storeCreate would be applied
    twice: `retryable: false`, the client must look before trying again.

    Never the error's own text: it may name hosts or SQL."""
    extensions: dict[str, str | bool] = {"code": ApiErrorCode.INTERNAL.value}
    if error is not None and database_unavailable(error):
        extensions["retryable"] = not commit_begun
    extensions["requestId"] = request_id
    return extensions


GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
