"""What a webhook event is: its types, the checks on what a publisher sends, and the bodies it
is sent as (domain-reference 4.2). No database here: publishing and delivery use these rules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlencode

from gql_api.channels.rules import IntegrationMode
from gql_api.errors import Problems, UserErrorCode
from gql_api.i18n import SOURCE_LOCALE, Message, _, _n
from gql_api.webhooks.payloads import (
    ModuleVersionValue,
    WebhookContentType,
    WebhookPayloadVersion,
)

EVENT_ID_MAX_LENGTH = 200
DATA_MAX_BYTES = 16 * 1024
DATA_MAX_KEYS = 50
ID_VALUE_MAX_LENGTH = 200


class EventStatus(StrEnum):
    PENDING = "PENDING"  # accepted, no attempt made yet
    RETRYING = "RETRYING"  # an attempt failed; another is scheduled
    SUCCEEDED = "SUCCEEDED"  # a receiver answered HTTP 200
    EXHAUSTED = "EXHAUSTED"  # the last scheduled attempt failed
    SKIPPED = "SKIPPED"  # nothing to send to (no URL), or the setting cannot carry this type


FAILED_STATUSES = (EventStatus.RETRYING, EventStatus.EXHAUSTED)


class Trigger(StrEnum):
    TEST = "TEST"
    EVENT = "EVENT"
    MANUAL = "MANUAL"


# V2 (2024-04-25): Transaction.* and BillingKey.*; which data fields each needs.
_CANCELLATION = frozenset(
    {"Transaction.PartialCancelled", "Transaction.Cancelled", "Transaction.CancelPending"}
)
V2_TRANSACTION_TYPES = (
    "Transaction.Ready",
    "Transaction.Paid",
    "Transaction.VirtualAccountIssued",
    "Transaction.PartialCancelled",
    "Transaction.Cancelled",
    "Transaction.Failed",
    "Transaction.PayPending",
    "Transaction.CancelPending",
    "Transaction.DisputeCreated",
    "Transaction.DisputeResolved",
    "Transaction.Confirm",
)
V2_BILLING_KEY_TYPES = (
    "BillingKey.Ready",
    "BillingKey.Issued",
    "BillingKey.Failed",
    "BillingKey.Deleted",
    "BillingKey.Updated",
)
V2_TYPES = V2_TRANSACTION_TYPES + V2_BILLING_KEY_TYPES
# The legacy 2024-01-01 body carries a status, which only these transaction types have.
LEGACY_STATUSES = frozenset(
    {
        "Ready",
        "Paid",
        "VirtualAccountIssued",
        "PartialCancelled",
        "Cancelled",
        "Failed",
        "PayPending",
        "CancelPending",
    }
)
# V1 (iamport notice): the type is the payment's status.
V1_TYPES = ("ready", "paid", "failed", "cancelled")


def types_of(version: ModuleVersionValue) -> tuple[str, ...]:
    return V2_TYPES if version is ModuleVersionValue.V2 else V1_TYPES


def _required_fields(version: ModuleVersionValue, event_type: str) -> tuple[str, ...]:
    if version is ModuleVersionValue.V1:
        return ("imp_uid", "merchant_uid")
    if event_type.startswith("BillingKey."):
        return ("billingKey",)
    fields: tuple[str, ...] = ("paymentId", "transactionId")
    if event_type in _CANCELLATION:
        fields += ("cancellationId",)
    return fields


@dataclass(frozen=True)
class EventInput:
    """An event as a publisher sends it, checked (see check_event)."""

    event_id: str
    store_id: str
    module_version: ModuleVersionValue
    mode: IntegrationMode
    type: str
    data: dict[str, Any]


def _text(problems: Problems, value: object, path: tuple[str, ...], max_length: int) -> str | None:
    if value is None:
        problems.add(UserErrorCode.REQUIRED, path, _("{label} is required.", label=path[-1]))
        return None
    if not isinstance(value, str):
        problems.add(
            UserErrorCode.INVALID_INPUT, path, _("{label} must be a string.", label=path[-1])
        )
        return None
    if not 1 <= len(value) <= max_length or not value.isprintable() or value != value.strip():
        problems.add(
            UserErrorCode.INVALID_INPUT,
            path,
            _(
                "{label} must be 1-{max_length} printable characters, without surrounding spaces.",
                label=path[-1],
                max_length=max_length,
            ),
        )
        return None
    return value


def _choice(
    problems: Problems, value: object, path: tuple[str, ...], choices: tuple[str, ...]
) -> str | None:
    if value is None:
        problems.add(UserErrorCode.REQUIRED, path, _("{label} is required.", label=path[-1]))
        return None
    if not isinstance(value, str) or value not in choices:
        shown = ", ".join(choices)
        problems.add(
            UserErrorCode.INVALID_INPUT,
            path,
            _("{label} must be one of: {choices}.", label=path[-1], choices=shown),
        )
        return None
    return value


def check_event(body: Mapping[str, Any]) -> EventInput:
    """The event `body` describes, or a DomainError naming every field that is wrong.

    `data` must carry the identifiers the event's type needs (domain-reference 4.2), as
    strings; further fields are kept and sent on (PortOne adds fields without notice, and
    receivers ignore unknown ones), within DATA_MAX_BYTES. `data.storeId`, when given, must be
    the event's store; it is filled in when absent or null.
    """
    problems = Problems()
    unknown = sorted(set(body) - {"id", "storeId", "moduleVersion", "mode", "type", "data"})
    for name in unknown[:10]:
        problems.add(UserErrorCode.INVALID_INPUT, (name[:100],), _("Unknown field."))
    event_id = _text(problems, body.get("id"), ("id",), EVENT_ID_MAX_LENGTH)
    store_id = _text(problems, body.get("storeId"), ("storeId",), 100)
    version = _choice(problems, body.get("moduleVersion"), ("moduleVersion",), ("V1", "V2"))
    mode = _choice(problems, body.get("mode"), ("mode",), ("LIVE", "TEST"))
    event_type: str | None = None
    if version is not None:
        event_type = _choice(
            problems, body.get("type"), ("type",), types_of(ModuleVersionValue(version))
        )
    elif body.get("type") is None:
        problems.add(UserErrorCode.REQUIRED, ("type",), _("{label} is required.", label="type"))
    data = body.get("data")
    if data is None:
        problems.add(UserErrorCode.REQUIRED, ("data",), _("{label} is required.", label="data"))
    elif not isinstance(data, dict):
        problems.add(UserErrorCode.INVALID_INPUT, ("data",), _("data must be a JSON object."))
    else:
        _check_data(problems, data, version, event_type, store_id)
    problems.raise_if_any()
    assert event_id and store_id and version and mode and event_type and isinstance(data, dict)
    data = dict(data)
    if ModuleVersionValue(version) is ModuleVersionValue.V2 and data.get("storeId") is None:
        data["storeId"] = store_id  # receivers read it (the SDK's data has a string storeId)
    return EventInput(
        event_id=event_id,
        store_id=store_id,
        module_version=ModuleVersionValue(version),
        mode=IntegrationMode(mode),
        type=event_type,
        data=data,
    )


def _check_data(
    problems: Problems,
    data: dict[str, Any],
    version: str | None,
    event_type: str | None,
    store_id: str | None,
) -> None:
    if len(data) > DATA_MAX_KEYS:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            ("data",),
            _n(
                "data has at most {count} field.", "data has at most {count} fields.", DATA_MAX_KEYS
            ),
        )
        return
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
    if size > DATA_MAX_BYTES:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            ("data",),
            _("data is at most {size} KiB as JSON.", size=DATA_MAX_BYTES // 1024),
        )
        return
    if version is None or event_type is None:
        return
    module_version = ModuleVersionValue(version)
    for name in _required_fields(module_version, event_type):
        _text(problems, data.get(name), ("data", name), ID_VALUE_MAX_LENGTH)
    if module_version is ModuleVersionValue.V2:
        given_store = data.get("storeId")
        if given_store is not None and given_store != store_id:
            problems.add(
                UserErrorCode.INVALID_INPUT,
                ("data", "storeId"),
                _("data.storeId must be the event's storeId (or be left out)."),
            )
        if event_type == "Transaction.Confirm":
            amount = data.get("totalAmount")
            if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
                problems.add(
                    UserErrorCode.INVALID_INPUT,
                    ("data", "totalAmount"),
                    _("Transaction.Confirm needs totalAmount, a whole number of at least 0."),
                )
    elif "cancellation_id" in data:
        _text(problems, data.get("cancellation_id"), ("data", "cancellation_id"), 200)


@dataclass(frozen=True)
class Rendered:
    body: str
    content_type: WebhookContentType


class NotDeliverable(ValueError):
    """The setting in force cannot carry this event: `message` says why, to a console user (a
    resend refused) and, in English, in the event's recorded status reason (SKIPPED)."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.render(SOURCE_LOCALE))
        self.message = message


def render(
    *,
    module_version: ModuleVersionValue,
    event_type: str,
    data: Mapping[str, Any],
    published_at: datetime,
    payload_version: WebhookPayloadVersion | None,
    content_type: WebhookContentType,
) -> Rendered:
    """The body of an event in the shape the setting asks for, at send time.

    The same event renders to the same bytes on every attempt (its timestamp is the time it
    was published), unless the setting changed in between.
    """
    fields: dict[str, Any]
    if module_version is ModuleVersionValue.V1:
        fields = {
            "imp_uid": data["imp_uid"],
            "merchant_uid": data["merchant_uid"],
            "status": event_type,
        }
        if "cancellation_id" in data:
            fields["cancellation_id"] = data["cancellation_id"]
    elif payload_version is WebhookPayloadVersion.V2024_01_01:
        status = event_type.removeprefix("Transaction.")
        if not event_type.startswith("Transaction.") or status not in LEGACY_STATUSES:
            raise NotDeliverable(
                _(
                    "{event_type} events are sent in payload version 2024-04-25 only; this "
                    "setting uses 2024-01-01.",
                    event_type=event_type,
                )
            )
        fields = {
            "payment_id": data["paymentId"],
            "tx_id": data["transactionId"],
            "status": status,
        }
    else:
        fields = {"type": event_type, "timestamp": rfc3339(published_at), "data": dict(data)}
    if content_type is WebhookContentType.JSON:
        body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    else:
        body = urlencode({key: _form_value(value) for key, value in fields.items()})
    return Rendered(body=body, content_type=content_type)


def _form_value(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
