"""Input checks shared by the services; each adds a problem instead of raising."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from gql_api.errors import Problems, UserErrorCode

EMAIL_MAX_LENGTH = 254
PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(char) in {"Cc", "Cf", "Cs"} for char in value)


def name(
    problems: Problems, value: str, path: Sequence[str], *, label: str, max_length: int = 100
) -> str:
    """A display name: trimmed, 1..max_length characters, no control characters."""
    cleaned = value.strip()
    if not cleaned:
        problems.add(UserErrorCode.REQUIRED, path, f"{label} must not be empty.")
    elif len(cleaned) > max_length:
        problems.add(
            UserErrorCode.INVALID_INPUT, path, f"{label} must be at most {max_length} characters."
        )
    elif has_control_characters(cleaned):
        problems.add(UserErrorCode.INVALID_INPUT, path, f"{label} contains control characters.")
    return cleaned


def email(problems: Problems, value: str, path: Sequence[str]) -> str:
    cleaned = value.strip().lower()
    if not cleaned:
        problems.add(UserErrorCode.REQUIRED, path, "Email must not be empty.")
    elif len(cleaned) > EMAIL_MAX_LENGTH or not _EMAIL.match(cleaned):
        problems.add(UserErrorCode.INVALID_INPUT, path, "Email is not a valid address.")
    return cleaned


def new_password(problems: Problems, value: str, path: Sequence[str]) -> str:
    if len(value) < PASSWORD_MIN_LENGTH:
        problems.add(
            UserErrorCode.WEAK_PASSWORD,
            path,
            f"Password must be at least {PASSWORD_MIN_LENGTH} characters.",
        )
    elif len(value) > PASSWORD_MAX_LENGTH:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            path,
            f"Password must be at most {PASSWORD_MAX_LENGTH} characters.",
        )
    elif len(set(value)) < 4:
        problems.add(UserErrorCode.WEAK_PASSWORD, path, "Password is too repetitive.")
    return value
