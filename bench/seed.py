"""Seed a benchmark database through the service layer (the same rules as the API).

* the dashboard merchant: a representative store and N sub-stores (10 for the load runs, 2 and
  20 for the SQL-statement count), 20 channels per store (own-MID LIVE channels with encrypted
  credentials, own-MID TEST channels and shared-test-MID channels), all four webhook settings
  (V1/V2 x LIVE/TEST) of every store, with sub-stores alternately following the representative
  store or not, two V2 signing secrets, and a representative-store API secret;
* a second merchant whose representative store has 10,000 channels (deep pagination): the first
  one through `create_channel`, the rest bulk-inserted as copies with their own channel key,
  name, MID and freshly sealed credentials (still valid channels: they decrypt, mask and page
  like any other);
* a third merchant whose owner logs in during the argon2 burst.

Everything is signed up with the default argon2 parameters, so the server verifies real hashes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from db.engine import Tx
from db.models import Channel
from gql_api.accounts import service as accounts
from gql_api.accounts.sessions import principal_of
from gql_api.api_secrets import service as api_secrets
from gql_api.channels import service as channels
from gql_api.channels.rules import CredentialValue, IntegrationMode, TaxType
from gql_api.context import AppState
from gql_api.mutations import run_unit
from gql_api.permissions import Principal
from gql_api.pg_catalog.catalog import ChannelPurpose, PgProvider
from gql_api.stores import service as stores
from gql_api.webhooks import service as webhooks
from gql_api.webhooks.payloads import ModuleVersionValue, WebhookContentType

PASSWORD = "bench passphrase 1234"
# A public address literal: the SSRF check accepts it without DNS (the machine is offline).
WEBHOOK_HOST = "93.184.215.14"
CHANNELS_PER_STORE = 20
DEEP_CHANNELS = 10_000
T = TypeVar("T")


@dataclass(frozen=True)
class Owner:
    email: str
    token: str
    representative_store_id: str
    principal: Principal


@dataclass(frozen=True)
class DashboardMerchant:
    owner: Owner
    sub_store_ids: list[str]
    api_secret: str


async def _mutate(db: AsyncSession, action: Callable[[], Awaitable[T]]) -> T:
    """One service call in one write transaction, as the API's `mutate` runs it."""

    async def in_one_write(tx: Tx) -> T:
        async with tx.write():
            return await action()

    return await _in_steps(db, in_one_write)


async def _in_steps(db: AsyncSession, action: Callable[[Tx], Awaitable[T]]) -> T:
    """One service call that begins its write itself, as the API's `mutate_in_steps` runs it."""
    assert isinstance(db.bind, AsyncEngine)
    return await run_unit(db, db.bind, action)


async def _sign_up(state: AppState, db: AsyncSession, merchant_name: str, email: str) -> Owner:
    signed = await _in_steps(
        db,
        lambda tx: accounts.sign_up(
            tx=tx,
            hashing=state.hashing,
            settings=state.settings,
            merchant_name=merchant_name,
            email=email,
            password=PASSWORD,
            name=f"{merchant_name} owner",
        ),
    )
    return Owner(
        email=email,
        token=signed.session.token,
        representative_store_id=signed.store.store_id,
        principal=principal_of(signed.session.user, signed.session.row),
    )


def _draft(store_id: str, index: int) -> channels.ChannelDraft:
    """Channel `index` of a store: a realistic mix of modes, PGs and credentials."""
    name = f"Channel {index:05d}"
    kind = index % 4
    if kind in (0, 1):  # LIVE, own MID, one plain and one secret credential
        return channels.ChannelDraft(
            store_id=store_id,
            mode=IntegrationMode.LIVE,
            pg_provider=PgProvider.TOSSPAYMENTS,
            module_code="TOSSPAYMENTS_PAYMENT",
            name=name,
            purpose=ChannelPurpose.PAYMENT,
            pg_merchant_id=f"tosslive{index:05d}",
            credentials=[
                CredentialValue("clientKey", f"live_ck_{index:05d}abcdefghij"),
                CredentialValue("secretKey", f"live_sk_{index:05d}0123456789abcdef"),
            ],
            tax_type=TaxType.TAXABLE,
        )
    if kind == 2:  # TEST, own MID, a required and an optional secret
        return channels.ChannelDraft(
            store_id=store_id,
            mode=IntegrationMode.TEST,
            pg_provider=PgProvider.NICE_V2,
            module_code="NICE_V2_PAYMENT",
            name=name,
            purpose=ChannelPurpose.PAYMENT,
            pg_merchant_id=f"nicet{index:05d}",
            credentials=[
                CredentialValue("merchantKey", f"nice-merchant-key-{index:05d}-xyz"),
                CredentialValue("cancelPassword", "123456"),
            ],
            tax_type=TaxType.UNSET,
        )
    return channels.ChannelDraft(  # TEST with a shared public test MID, no credentials
        store_id=store_id,
        mode=IntegrationMode.TEST,
        pg_provider=PgProvider.KAKAOPAY,
        module_code="KAKAOPAY_PAYMENT",
        name=name,
        purpose=ChannelPurpose.PAYMENT,
        pg_merchant_id="TC0ONETIME",
        credentials=[],
        tax_type=TaxType.UNSET,
    )


async def _webhook_settings(
    db: AsyncSession, principal: Principal, store_id: str, *, follows: bool | None
) -> None:
    for version in ModuleVersionValue:
        for mode in IntegrationMode:
            url = f"https://{WEBHOOK_HOST}/portone/{version.value.lower()}/{mode.value.lower()}"
            await _mutate(
                db,
                partial(
                    webhooks.update_setting,
                    db=db,
                    principal=principal,
                    allowed_networks=(),
                    store_id=store_id,
                    module_version=version,
                    mode=mode,
                    url=url,
                    content_type=WebhookContentType.JSON,
                    payload_version=None,
                    uses_representative_setting=follows,
                ),
            )


async def seed_dashboard_merchant(
    state: AppState, *, sub_stores: int, email: str = "owner@bench.example"
) -> DashboardMerchant:
    services = channels.ChannelServices(catalog=state.catalog, encryptor=state.encryptor)
    async with state.session_factory() as db:
        owner = await _sign_up(state, db, "Bench Merchant", email)
        principal = owner.principal
        store_ids = [owner.representative_store_id]
        for n in range(1, sub_stores + 1):
            store = await _mutate(
                db,
                partial(
                    stores.create_sub_store, db=db, principal=principal, name=f"Sub-store {n:02d}"
                ),
            )
            store_ids.append(store.store_id)
        for position, store_id in enumerate(store_ids):
            for index in range(1, CHANNELS_PER_STORE + 1):
                draft = _draft(store_id, index)
                await _mutate(
                    db,
                    partial(
                        channels.create_channel,
                        db=db,
                        principal=principal,
                        services=services,
                        draft=draft,
                    ),
                )
            follows = None if position == 0 else position % 2 == 0
            await _webhook_settings(db, principal, store_id, follows=follows)
        for mode in IntegrationMode:
            await _mutate(
                db,
                partial(
                    webhooks.issue_secret,
                    db=db,
                    principal=principal,
                    encryptor=state.encryptor,
                    store_id=owner.representative_store_id,
                    mode=mode,
                ),
            )
        issued = await _in_steps(
            db,
            lambda tx: api_secrets.issue(
                tx=tx,
                principal=principal,
                hashing=state.hashing,
                store_id=owner.representative_store_id,
                name="Bench partner integration",
                expiration_days=None,
            ),
        )
    return DashboardMerchant(owner=owner, sub_store_ids=store_ids[1:], api_secret=issued.plaintext)


async def seed_deep_store(state: AppState, *, count: int = DEEP_CHANNELS) -> Owner:
    """A merchant whose representative store has `count` channels."""
    services = channels.ChannelServices(catalog=state.catalog, encryptor=state.encryptor)
    async with state.session_factory() as db:
        owner = await _sign_up(state, db, "Deep Merchant", "deep@bench.example")
        first = await _mutate(
            db,
            lambda: channels.create_channel(
                db=db,
                principal=owner.principal,
                services=services,
                draft=_draft(owner.representative_store_id, 1),
            ),
        )

        async def copies() -> None:
            assert first.store_pk is not None
            module = state.catalog.provider(PgProvider.TOSSPAYMENTS)
            assert module is not None
            payment = module.module("TOSSPAYMENTS_PAYMENT")
            assert payment is not None
            batch: list[Channel] = []
            for index in range(2, count + 1):
                key = channels.new_channel_key()
                values = {
                    "clientKey": f"live_ck_{index:05d}abcdefghij",
                    "secretKey": f"live_sk_{index:05d}0123456789abcdef",
                }
                batch.append(
                    Channel(
                        channel_key=key,
                        merchant_id=first.merchant_id,
                        store_pk=first.store_pk,
                        name=f"Channel {index:05d}",
                        mode=first.mode,
                        pg_provider=first.pg_provider,
                        module_code=first.module_code,
                        purpose=first.purpose,
                        pg_merchant_id=f"tosslive{index:05d}",
                        shared_test=False,
                        tax_type=first.tax_type,
                        # the service's own sealing: AES-GCM bound to this channel key and field
                        credentials=channels._seal(state.encryptor, key, payment, values),
                    )
                )
                if len(batch) == 1000:
                    db.add_all(batch)
                    await db.flush()
                    batch = []
            db.add_all(batch)
            await db.flush()

        await _mutate(db, copies)
    return owner


async def seed_login_users(state: AppState, count: int) -> list[str]:
    """`count` owners who log in during the argon2 burst, one attempt in flight each (log-in
    throttling counts attempts per email, so one email cannot carry 20 concurrent log-ins)."""
    emails = [f"login{n:02d}@bench.example" for n in range(1, count + 1)]
    async with state.session_factory() as db:
        for n, email in enumerate(emails, start=1):
            await _sign_up(state, db, f"Login Merchant {n:02d}", email)
    return emails
