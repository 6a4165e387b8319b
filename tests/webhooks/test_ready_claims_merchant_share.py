"""Review: a ready claim skips the per-merchant share (claim_due: `not host_full and
merchant_full`), on the grounds that it only replaces an attempt of its own host. When that
host is shared by two merchants, the ended attempt may be another merchant's: the merchant at
its share then has more attempts in flight than WEBHOOK_WORKER_CONCURRENCY // 2."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from gql_api.settings import Settings
from gql_api.webhooks.sender import Limits
from tests.factories import seed_merchant
from tests.support import Api
from tests.webhooks.events_support import (
    event_body,
    event_settings,
    make_worker,
    published,
    running,
    until,
    until_status,
)
from tests.webhooks.helpers import save_setting
from tests.webhooks.receiver import Receivers

PATIENT = Limits(connect_seconds=5.0, read_seconds=30.0, response_max_bytes=65536)


@pytest.fixture(name="settings")
def settings_for_events(database_url: str) -> Settings:
    return event_settings(database_url)


async def test_a_merchant_at_its_share_gets_no_more_attempts_through_a_shared_host(
    api: Api,
    client: httpx.AsyncClient,
    app: Starlette,
    db_engine: AsyncEngine,
    receiver_pool: Receivers,
) -> None:
    # given a receiver host H shared by merchants M1 and M2, and two slow receivers of M2
    m1 = (await seed_merchant(db_engine, roles=(), stores=())).owner
    m2 = await seed_merchant(db_engine, roles=(), stores=("T2", "H"))
    shared = await receiver_pool.start(hold=True)
    t1, t2 = await receiver_pool.start(hold=True), await receiver_pool.start(hold=True)
    token = m2.owner.token
    await save_setting(api, m1.token, m1.representative_store_id, shared.url)
    await save_setting(api, token, m2.owner.representative_store_id, t1.url)
    await save_setting(api, token, m2.stores["T2"], t2.url, usesRepresentativeSetting=False)
    await save_setting(api, token, m2.stores["H"], shared.url, usesRepresentativeSetting=False)
    m1_event = await published(client, event_body(m1.representative_store_id))
    await published(client, event_body(m2.owner.representative_store_id))
    await published(client, event_body(m2.stores["T2"]))
    for _ in range(2):
        await published(client, event_body(m2.stores["H"]))
    # (4 slots: one merchant may hold 2, one host 1)
    worker = make_worker(app, concurrency=4, per_host_limit=1, poll_seconds=0.05, limits=PATIENT)

    async with running(worker):
        # when M2 holds its two slots (T1, T2) and M1's attempt to H is being sent
        await until(lambda: (len(shared.requests), len(t1.requests), len(t2.requests)) == (1, 1, 1))
        await asyncio.sleep(0.2)  # (cycles: M2's first event to H is claimed ahead, ready)
        # and H answers M1
        shared.release.set()
        await until_status(db_engine, m1_event, "SUCCEEDED")
        await asyncio.sleep(0.1)  # (time for M2's request to H, were it sent)

        # then M2, at its share with T1 and T2 still holding, got no third attempt in flight
        assert len(shared.requests) == 1, "M2 sent a third attempt past its share"
        assert (len(t1.requests), len(t2.requests)) == (1, 1)
