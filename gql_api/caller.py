"""Who is calling: the Principal, and the caller's merchant read together with the credential.

Authentication reads the merchant in the same statement as the session or API secret, so
`viewer { merchant }` and `merchant` need no second query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gql_api.permissions import Principal


@dataclass(frozen=True, slots=True)
class CallerMerchant:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal
    merchant: CallerMerchant
