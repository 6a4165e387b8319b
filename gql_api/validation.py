"""Input checks shared by the services; each adds a problem instead of raising."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from gql_api.errors import Problems, UserErrorCode
from gql_api.i18n import Message, _

EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in {"Cc", "Cf", "Cs"} for char in value)


def name(
    problems: Problems, value: str, path: Sequence[str], *, label: Message, max_length: int = 100
) -> str:
    """A display name: trimmed, 1..max_length characters, no control characters. `label` names
    the field in the messages (a Message: it is shown in the request's language too)."""
    cleaned = value.strip()
    if not cleaned:
        problems.add(UserErrorCode.REQUIRED, path, _("{label} must not be empty.", label=label))
    elif len(cleaned) > max_length:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            path,
            _(
                "{label} must be at most {max_length} characters.",
                label=label,
                max_length=max_length,
            ),
        )
    elif has_control_characters(cleaned):
        problems.add(
            UserErrorCode.INVALID_INPUT,
            path,
            _("{label} contains control characters.", label=label),
        )
    return cleaned


def email(problems: Problems, value: str, path: Sequence[str]) -> str:
    cleaned = value.strip().lower()
    if not cleaned:
        problems.add(UserErrorCode.REQUIRED, path, _("Email must not be empty."))
    elif len(cleaned) > EMAIL_MAX_LENGTH or not _EMAIL.match(cleaned):
        problems.add(UserErrorCode.INVALID_INPUT, path, _("Email is not a valid address."))
    return cleaned


def new_password(problems: Problems, value: str, path: Sequence[str]) -> str:
    if len(value) < PASSWORD_MIN_LENGTH:
        problems.add(
            UserErrorCode.WEAK_PASSWORD,
            path,
            _("Password must be at least {min_length} characters.", min_length=PASSWORD_MIN_LENGTH),
        )
    elif len(value) > PASSWORD_MAX_LENGTH:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            path,
            _("Password must be at most {max_length} characters.", max_length=PASSWORD_MAX_LENGTH),
        )
    elif len(set(value)) < 4:
        problems.add(UserErrorCode.WEAK_PASSWORD, path, _("Password is too repetitive."))
    return value
