"""Checks of a channel against the PG catalog; pure functions that only collect problems."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from gql_api.errors import DomainError, Problems, UserErrorCode
from gql_api.i18n import Message, _
from gql_api.pg_catalog.catalog import (
    Catalog,
    ChannelPurpose,
    PaymentModule,
    PgProvider,
    ProviderInfo,
)
from gql_api.validation import has_control_characters

CREDENTIAL_MAX_LENGTH = 16_384  # a PEM private key or certificate fits comfortably
MAX_CREDENTIALS = 10  # items per input; the catalog's modules have at most 5 fields
MID_MAX_LENGTH = 100
_CREDENTIALS = ("input", "credentials")
_ALLOWED_WHITESPACE = {"\n", "\r", "\t"}


class IntegrationMode(StrEnum):
    LIVE = "LIVE"
    TEST = "TEST"


class TaxType(StrEnum):
    UNSET = "UNSET"
    TAXABLE = "TAXABLE"
    TAX_FREE = "TAX_FREE"


class ChannelType(StrEnum):
    LIVE = "LIVE"
    MERCHANT_TEST = "MERCHANT_TEST"
    SHARED_TEST = "SHARED_TEST"


def channel_type(mode: str, shared_test: bool) -> ChannelType:
    if mode == IntegrationMode.LIVE:
        return ChannelType.LIVE
    return ChannelType.SHARED_TEST if shared_test else ChannelType.MERCHANT_TEST


@dataclass(frozen=True)
class CredentialValue:
    key: str
    value: str


def resolve_module(
    problems: Problems, catalog: Catalog, provider: PgProvider, module_code: str
) -> tuple[ProviderInfo, PaymentModule] | None:
    info = catalog.provider(provider)
    if info is None:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            ("input", "pgProvider"),
            _("{provider} is not offered in the PG catalog.", provider=provider.value),
        )
        return None
    module = info.module(module_code)
    if module is None:
        problems.add(
            UserErrorCode.PG_MODULE_MISMATCH,
            ("input", "moduleCode"),
            _(
                "{module_code} is not a payment module of {provider}.",
                module_code=repr(module_code),
                provider=info.localized_display_name,
            ),
        )
        return None
    return info, module


def check_purpose(problems: Problems, module: PaymentModule, purpose: ChannelPurpose) -> None:
    if purpose not in module.purposes:
        problems.add(
            UserErrorCode.PURPOSE_NOT_SUPPORTED,
            ("input", "purpose"),
            _(
                "The module “{module}” does not support {purpose}.",
                module=module.localized_name,
                purpose=purpose.value,
            ),
        )


def classify_mid(
    problems: Problems,
    catalog: Catalog,
    module: PaymentModule,
    mode: IntegrationMode,
    pg_merchant_id: str,
) -> bool:
    """Classify a PG MID: True if it is this module's shared public test MID, used in TEST.
    Records SHARED_TEST_MID_NOT_ALLOWED in `problems` for a shared test MID in LIVE mode or one
    of another module (and then returns False)."""
    path = ("input", "pgMerchantId")
    shared_anywhere = any(
        m.shared_test_mid(pg_merchant_id) for p in catalog.providers for m in p.modules
    )
    if module.shared_test_mid(pg_merchant_id) is not None:
        if mode is IntegrationMode.LIVE:
            problems.add(
                UserErrorCode.SHARED_TEST_MID_NOT_ALLOWED,
                path,
                _("A shared public test MID cannot be used in LIVE mode; use your own MID."),
            )
            return False
        return True
    if shared_anywhere:
        problems.add(
            UserErrorCode.SHARED_TEST_MID_NOT_ALLOWED,
            path,
            _("This shared test MID belongs to another payment module."),
        )
    return False


def check_pg_merchant_id(
    problems: Problems, module: PaymentModule, pg_merchant_id: str, *, shared: bool
) -> str:
    """The PG MID trimmed; REQUIRED or INVALID_INPUT recorded at input.pgMerchantId."""
    path = ("input", "pgMerchantId")
    label = module.localized_merchant_id_label
    value = pg_merchant_id.strip()
    if not value:
        problems.add(UserErrorCode.REQUIRED, path, _("{label} is required.", label=label))
    elif len(value) > MID_MAX_LENGTH or has_control_characters(value) or " " in value:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            path,
            _(
                "{label} must be at most {max_length} characters, without spaces or control "
                "characters.",
                label=label,
                max_length=MID_MAX_LENGTH,
            ),
        )
    elif (
        not shared
        and module.merchant_id_pattern
        and not re.fullmatch(module.merchant_id_pattern, value)
    ):
        problems.add(
            UserErrorCode.INVALID_INPUT,
            path,
            _("{label} does not have the expected format.", label=label),
        )
    return value


def check_credential_input(
    problems: Problems, module: PaymentModule, values: Sequence[CredentialValue]
) -> tuple[dict[str, str], set[str]]:
    """Known keys, once each, sane values.

    Returns ({key: value} ("" means: clear it), the keys given with a refused value), so that
    a refused value is not reported again as missing.
    """
    result: dict[str, str] = {}
    refused: set[str] = set()
    for item in values:
        path = (*_CREDENTIALS, item.key)
        field = module.field(item.key)
        if field is None:
            problems.add(
                UserErrorCode.CREDENTIAL_UNKNOWN,
                path,
                _(
                    "“{module}” has no credential {key}.",
                    module=module.localized_name,
                    key=repr(item.key),
                ),
            )
            continue
        label = field.localized_label
        if item.key in result or item.key in refused:
            problems.add(
                UserErrorCode.INVALID_INPUT, path, _("{label} is given twice.", label=label)
            )
            continue
        value = item.value.strip()
        message: Message | None = None
        if len(value) > CREDENTIAL_MAX_LENGTH:
            message = _(
                "{label} must be at most {max_length} characters.",
                label=label,
                max_length=CREDENTIAL_MAX_LENGTH,
            )
        elif any(has_control_characters(c) and c not in _ALLOWED_WHITESPACE for c in value):
            message = _("{label} contains control characters.", label=label)
        elif value and field.pattern and not re.fullmatch(field.pattern, value):
            message = _("{label} does not have the expected format.", label=label)
        if message is not None:
            problems.add(UserErrorCode.INVALID_INPUT, path, message)
            refused.add(item.key)
            continue
        result[item.key] = value
    return result, refused


def check_credential_count(values: Sequence[CredentialValue]) -> None:
    """Refuses more credentials than any module has, before any of them is looked at."""
    if len(values) > MAX_CREDENTIALS:
        raise DomainError.single(
            UserErrorCode.INVALID_INPUT,
            _CREDENTIALS,
            _("At most {limit} credentials can be sent at once.", limit=MAX_CREDENTIALS),
        )


def mid_refused(problems: Problems) -> bool:
    """A refused shared test MID makes "credentials missing" beside the point."""
    return any(e.code is UserErrorCode.SHARED_TEST_MID_NOT_ALLOWED for e in problems.errors)


def check_required(
    problems: Problems, module: PaymentModule, present: Mapping[str, object], *, shared: bool
) -> None:
    """Own MIDs need every required credential; shared test MIDs use the platform's own."""
    if shared:
        for key in present:
            problems.add(
                UserErrorCode.INVALID_INPUT,
                (*_CREDENTIALS, key),
                _("A shared public test MID uses the platform's credentials; send none."),
            )
        return
    for field in module.credential_fields:
        if field.required and field.key not in present:
            problems.add(
                UserErrorCode.CREDENTIAL_MISSING,
                (*_CREDENTIALS, field.key),
                _(
                    "{label} is required for “{module}”.",
                    label=field.localized_label,
                    module=module.localized_name,
                ),
            )
