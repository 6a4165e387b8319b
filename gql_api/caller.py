"""The authenticated caller's merchant, read together with the credential.

Authentication reads the merchant in the same statement as the session or API secret, so
`viewer { merchant }` and `merchant` need no second query. It is kept in the request's
session.info (not in the identity map, which holds rows only weakly and which ending a
transaction would expire) as a plain immutable snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

_KEY = "caller_merchant"


@dataclass(frozen=True, slots=True)
class CallerMerchant:
    id: int
    name: str
    created_at: datetime


def remember_caller_merchant(db: AsyncSession, merchant: CallerMerchant) -> None:
    db.info[_KEY] = merchant


def caller_merchant(db: AsyncSession, merchant_id: int) -> CallerMerchant | None:
    found = db.info.get(_KEY)
    if isinstance(found, CallerMerchant) and found.id == merchant_id:
        return found
    return None
