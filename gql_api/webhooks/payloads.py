"""Sample test events in each payload version's own shape (domain-reference 4.2)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlencode


class ModuleVersionValue(StrEnum):
    V1 = "V1"
    V2 = "V2"


class WebhookContentType(StrEnum):
    JSON = "JSON"
    FORM_URLENCODED = "FORM_URLENCODED"

    @property
    def media_type(self) -> str:
        if self is WebhookContentType.JSON:
            return "application/json"
        return "application/x-www-form-urlencoded"


class WebhookPayloadVersion(StrEnum):
    V2024_01_01 = "V2024_01_01"
    V2024_04_25 = "V2024_04_25"


def _fields(
    module_version: ModuleVersionValue, payload_version: WebhookPayloadVersion | None, store_id: str
) -> dict[str, object]:
    payment_id = f"test-payment-{uuid.uuid4()}"
    if module_version is ModuleVersionValue.V1:
        return {
            "imp_uid": f"imp_{uuid.uuid4().int % 10**12:012d}",
            "merchant_uid": payment_id,
            "status": "paid",
        }
    if payload_version is WebhookPayloadVersion.V2024_01_01:
        return {"payment_id": payment_id, "tx_id": str(uuid.uuid4()), "status": "Paid"}
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "type": "Transaction.Paid",
        "timestamp": timestamp,
        "data": {"storeId": store_id, "paymentId": payment_id, "transactionId": str(uuid.uuid4())},
    }


def sample_event_body(
    *,
    module_version: ModuleVersionValue,
    payload_version: WebhookPayloadVersion | None,
    content_type: WebhookContentType,
    store_id: str,
) -> str:
    fields = _fields(module_version, payload_version, store_id)
    if content_type is WebhookContentType.JSON:
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return urlencode({k: str(v) for k, v in fields.items()})
