"""A burst of log-ins keeps the hashing thread busy: while one log-in hashes, the next ones do
their own statements (the throttling claim) and queue for the hash, up to
ADMITTED_PER_HASHING_THREAD; the rest wait without touching the database."""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from db.models import LoginFailure
from gql_api.security.passwords import ADMITTED_PER_HASHING_THREAD
from tests.accounts.test_session import SESSION_CREATE, credentials
from tests.support import PASSWORD, Api

BURST = ADMITTED_PER_HASHING_THREAD + 4


async def _claims(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        counted = await conn.execute(select(func.count()).select_from(LoginFailure))
        return int(counted.scalar_one())


async def test_log_ins_queue_for_the_hash_having_made_their_claims(
    api: Api, app: Starlette, db_engine: AsyncEngine
) -> None:
    # given: owners who log in at once, and the hashing thread held busy by other work
    emails = [(await api.sign_up(email=f"pipeline{n}@example.com")).email for n in range(BURST)]
    hashing = app.state.app_state.hashing
    release = threading.Event()
    blocked = asyncio.get_running_loop().run_in_executor(hashing._executor, release.wait)

    # when
    logins = [
        asyncio.create_task(api.gql(SESSION_CREATE, credentials(email, PASSWORD)))
        for email in emails
    ]
    claims = 0
    for _ in range(200):  # until the admitted log-ins have claimed (recorded) their attempts
        await asyncio.sleep(0.02)
        claims = await _claims(db_engine)
        if claims >= ADMITTED_PER_HASHING_THREAD:
            break
    await asyncio.sleep(0.2)  # time for any log-in beyond the admitted ones to claim too
    claimed_while_blocked = await _claims(db_engine)
    release.set()
    await blocked
    results = await asyncio.gather(*logins)

    # then: all the admitted ones (not two, as before) did their statements while the thread
    # hashed something else, none beyond them; and every log-in then succeeded
    assert claimed_while_blocked == ADMITTED_PER_HASHING_THREAD
    for result in results:
        payload = result.data["sessionCreate"]
        assert payload["userErrors"] == [] and payload["session"]["token"]
    assert await _claims(db_engine) == 0  # a success forgets its failures
