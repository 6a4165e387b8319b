"""An API secret's network allowlist: which client addresses may use it and the tokens
exchanged for it (beyond PortOne V2, which has no IP whitelist; modelled on V1's table
`규칙 번호 | CIDR | 규칙 메모`).

- No rules: any address (every secret issued before rules existed, and the default).
- Rules are CIDR blocks, IPv4 or IPv6, stored normalized (`2001:DB8::/32` becomes
  `2001:db8::/32`). A bare address is refused with the hint to add /32 or /128, and a block
  with host bits set (`10.0.0.1/8`) is refused rather than widened: whoever typed it meant
  either the one address or the block, and silently allowing 16 million addresses for the
  first would be the wrong guess to make quietly. Repeats are refused, naming the rule repeated.
- An IPv4-mapped IPv6 client (`::ffff:203.0.113.9`, a dual-stack socket's view of an IPv4
  peer) is matched as its IPv4 address; IPv4-mapped blocks are refused with the IPv4 form to
  write instead, so each network has one spelling.
- The client address is gql_api.client_address's (the peer, or what a trusted proxy
  forwarded); one that is not an IP address (`unknown`) matches no rule.
- A refused use is counted (api_secret_refusals_total) and audited, at most one audit event
  per secret and REFUSAL_AUDIT_INTERVAL, decided by a conditional update of the secret's row
  so that every process agrees.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import insert, or_, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import col

from db.engine import independent_write
from db.models import ApiSecret, AuditEvent
from db.types import utcnow
from gql_api.errors import Problems, Unauthenticated, UserErrorCode
from gql_api.i18n import Message, _
from gql_api.ids import global_id
from gql_api.logs import current_request_id
from gql_api.validation import has_control_characters

logger = logging.getLogger("gql_api.api_secrets")

MAX_RULES = 50
MAX_MEMO_LENGTH = 100
MAX_CIDR_LENGTH = 64  # an IPv6 block is at most 43 characters; longer is not a block
REFUSAL_AUDIT_INTERVAL = timedelta(minutes=1)
NETWORK_NOT_ALLOWED = "NETWORK_NOT_ALLOWED"
AUDIT_ACTION = "api_secret.network_refused"
EXAMPLE = _("e.g. 203.0.113.0/24 or 2001:db8::/32")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
StoredRules = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class NetworkRule:
    cidr: str
    memo: str | None


def validated(problems: Problems, rules: Sequence[NetworkRule]) -> list[dict[str, str | None]]:
    """The rules to store, normalized and in the order given; every problem is added to
    `problems` with its path (`["input", "rules", "3", "cidr"]`)."""
    path = ("input", "rules")
    if len(rules) > MAX_RULES:
        problems.add(
            UserErrorCode.LIMIT_EXCEEDED,
            path,
            _(
                "An API secret has at most {max_rules} network rules; {count} were given.",
                max_rules=MAX_RULES,
                count=len(rules),
            ),
        )
    stored: list[dict[str, str | None]] = []
    seen: dict[Network, int] = {}
    for index, rule in enumerate(rules):
        network = _network(problems, rule.cidr, (*path, str(index), "cidr"))
        if network is not None:
            if network in seen:
                problems.add(
                    UserErrorCode.NETWORK_RULE_INVALID,
                    (*path, str(index), "cidr"),
                    _("{cidr} repeats rule {number}.", cidr=network, number=seen[network] + 1),
                )
            seen.setdefault(network, index)
        memo = _memo(problems, rule.memo, (*path, str(index), "memo"))
        stored.append({"cidr": str(network) if network else rule.cidr, "memo": memo})
    return stored


def _network(problems: Problems, value: str, path: Sequence[str]) -> Network | None:
    cleaned = value.strip()

    def refuse(message: Message) -> None:
        problems.add(UserErrorCode.NETWORK_RULE_INVALID, path, message)

    if not cleaned:
        refuse(_("Enter a CIDR block ({example}).", example=EXAMPLE))
        return None
    if len(cleaned) > MAX_CIDR_LENGTH or "%" in cleaned:
        refuse(_("Not an IPv4 or IPv6 CIDR block ({example}).", example=EXAMPLE))
        return None
    not_a_block = _(
        "“{value}” is not an IPv4 or IPv6 CIDR block ({example}).", value=cleaned, example=EXAMPLE
    )
    if "/" not in cleaned:
        try:
            address = ipaddress.ip_address(cleaned)
        except ValueError:
            refuse(not_a_block)
            return None
        refuse(
            _(
                "{address} is a single address; write {address}/{bits} to allow just it, "
                "or the block it belongs to.",
                address=address,
                bits=address.max_prefixlen,
            )
        )
        return None
    try:
        network = ipaddress.ip_network(cleaned, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(cleaned, strict=False)
        except ValueError:
            refuse(not_a_block)
            return None
        host = cleaned.split("/", 1)[0]
        one_address = f"{host}/{loose.max_prefixlen}"
        refuse(
            _(
                "{cidr} has host bits set: write {block} for the whole block, or "
                "{address} for the one address.",
                cidr=cleaned,
                block=loose,
                address=one_address,
            )
        )
        return None
    if isinstance(network, ipaddress.IPv6Network):
        mapped = network.network_address.ipv4_mapped
        if mapped is not None and network.prefixlen >= 96:
            as_ipv4 = f"{mapped}/{network.prefixlen - 96}"
            refuse(
                _(
                    "{cidr} is an IPv4-mapped block; write it as IPv4: {ipv4}.",
                    cidr=network,
                    ipv4=as_ipv4,
                )
            )
            return None
    return network


def _memo(problems: Problems, value: str | None, path: Sequence[str]) -> str | None:
    cleaned = (value or "").strip()
    if len(cleaned) > MAX_MEMO_LENGTH:
        problems.add(
            UserErrorCode.NETWORK_RULE_INVALID,
            path,
            _("A rule's memo is at most {max_length} characters.", max_length=MAX_MEMO_LENGTH),
        )
    elif has_control_characters(cleaned):
        problems.add(
            UserErrorCode.NETWORK_RULE_INVALID, path, _("The memo contains control characters.")
        )
    return cleaned or None


def rules_of(stored: StoredRules | None) -> list[NetworkRule]:
    return [NetworkRule(str(rule["cidr"]), rule.get("memo")) for rule in stored or ()]


@lru_cache(maxsize=4096)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """The stored blocks, parsed once per process and set of rules (authentication checks
    them on every request). A block that does not parse (only a hand-edited row could hold
    one) allows nothing: the allowlist fails closed."""
    found: list[Network] = []
    for cidr in cidrs:
        try:
            found.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    return tuple(found)


def allows(stored: StoredRules | None, client_address: str) -> bool:
    """Whether a secret with these rules may be used from `client_address` (no rules: yes)."""
    if not stored:
        return True
    try:
        address = ipaddress.ip_address(client_address)
    except ValueError:
        return False  # `unknown`: no rule can vouch for it
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    networks = _networks(tuple(str(rule.get("cidr")) for rule in stored))
    return any(address.version == network.version and address in network for network in networks)


class RefusedSecret(Protocol):
    """What an audit event of a refusal names of the secret (its row, or what authentication
    read of it)."""

    @property
    def id(self) -> int | None: ...
    @property
    def key_id(self) -> str: ...
    @property
    def merchant_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def hint(self) -> str: ...


@dataclass(frozen=True)
class _Named:
    id: int | None
    key_id: str
    merchant_id: int
    name: str
    hint: str


class NetworkNotAllowed(Unauthenticated):
    """A use of a secret, or of a token exchanged for it, from outside its network rules."""

    def __init__(self, secret: RefusedSecret, client_address: str) -> None:
        super().__init__(
            _(
                "This API secret's network rules do not allow the address {address}; "
                "an Owner or Admin can add it with apiSecretNetworkRulesUpdate.",
                address=client_address,
            ),
            reason=NETWORK_NOT_ALLOWED,
        )
        # Copied now: an ORM row is expired by the rollback that precedes the audit.
        self.secret: RefusedSecret = _Named(
            secret.id, secret.key_id, secret.merchant_id, secret.name, secret.hint
        )
        self.client_address = client_address


async def record_refusal(
    engine: AsyncEngine, refused: NetworkNotAllowed, *, credential: str
) -> None:
    """Audit the refusal, unless the secret's last such event is under REFUSAL_AUDIT_INTERVAL
    old; and log it. `credential`: what was presented (`API secret`, `access token`, …).

    Committed on its own: the request then fails. Never call it while the request's session
    holds a write transaction (db.engine.independent_write)."""
    secret = refused.secret
    assert secret.id is not None
    async with independent_write(engine) as conn:
        now = await _database_now(conn)
        # Of concurrent refusals in any process, one updates the row (the others wait for its
        # row lock, then find it recent): one event per interval.
        claimed = await conn.execute(
            update(ApiSecret)
            .where(
                col(ApiSecret.id) == secret.id,
                or_(
                    col(ApiSecret.network_refusal_audited_at).is_(None),
                    col(ApiSecret.network_refusal_audited_at) <= now - REFUSAL_AUDIT_INTERVAL,
                ),
            )
            .values(network_refusal_audited_at=now)
        )
        if claimed.rowcount == 1:
            minutes = int(REFUSAL_AUDIT_INTERVAL.total_seconds() // 60)
            await conn.execute(
                insert(AuditEvent.__table__).values(  # type: ignore[attr-defined]
                    merchant_id=secret.merchant_id,
                    actor=f"caller at {refused.client_address}",
                    action=AUDIT_ACTION,
                    target_id=global_id("ApiSecret", secret.id),
                    summary=f"Refused a use of API secret “{secret.name}” ({secret.hint}) "
                    f"by {credential} from {refused.client_address}: outside its network rules "
                    f"(further refusals within {minutes} minute are counted, not audited)",
                    request_id=current_request_id(),
                    occurred_at=now,
                )
            )
    logger.warning(
        "API secret used from outside its network rules",
        extra={
            "key_id": secret.key_id,
            "client_address": refused.client_address,
            "credential": credential,
        },
    )


async def _database_now(conn: AsyncConnection) -> datetime:
    """Now by the database's clock on PostgreSQL, so that hosts whose clocks disagree keep one
    interval (db.clock); SQLite's is this machine's."""
    if conn.dialect.name != "postgresql":
        return utcnow()
    now = (await conn.execute(text("SELECT statement_timestamp()"))).scalar_one()
    assert isinstance(now, datetime)
    return now.astimezone(UTC)
