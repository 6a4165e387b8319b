"""One clock across hosts (db.clock): windows that processes share are the database's; each
process measures how far its own clock is from the database's and is not ready past the
tolerance."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest

from db.clock import host_clock_skew
from db.engine import create_engine
from db.types import utcnow
from gql_api.app import create_app
from tests.accounts.test_login_throttling import (
    WRONG_PASSWORD,
    assert_rate_limited,
    client_at,
    fail_log_in,
    log_in,
    service,
)
from tests.conftest import make_settings
from tests.factories import seed_merchant


def shifted(by: timedelta) -> Callable[[], datetime]:
    """The clock of a host whose clock is off by `by`."""
    return lambda: utcnow() + by


@pytest.mark.parametrize("offset_seconds", [-90.0, 0.0, 45.0])
async def test_the_skew_measured_is_how_far_the_host_clock_is_from_the_database(
    database_url: str, backend: str, offset_seconds: float
) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            skew = await host_clock_skew(
                conn, host_clock=shifted(timedelta(seconds=offset_seconds))
            )
    finally:
        await engine.dispose()
    if backend == "sqlite":
        assert (skew.seconds, skew.uncertainty) == (0.0, 0.0)  # one machine, one clock
    else:
        # The test's host and PostgreSQL share a clock here: what is measured is the offset.
        assert abs(skew.seconds - offset_seconds) < 1.0
        assert skew.beyond(1.0) is (abs(offset_seconds) > 2.0)


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_host_whose_clock_is_off_is_not_ready(database_url: str) -> None:
    settings = make_settings(database_url, clock_skew_tolerance_seconds=2)
    for offset, expected in ((0.0, 200), (-5.0, 503), (30.0, 503)):
        application = create_app(settings, host_clock=shifted(timedelta(seconds=offset)))
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                ready = await http.get("/readyz")
                metrics = (await http.get("/metrics")).text
        finally:
            await application.state.app_state.engine.dispose()
        assert ready.status_code == expected, ready.text
        body = ready.json()
        assert abs(body["clockSkewSeconds"] - offset) < 1.0
        assert body["database"] == "ok"
        if expected == 503:
            assert body == {**body, "status": "unavailable", "clock": "skewed"}
        assert "host_clock_skew_seconds" in metrics


def slow_readings(round_trip: timedelta) -> Callable[[], datetime]:
    """A right clock read around a database answer that took `round_trip` to come back (a
    busy event loop, a loaded database): the second reading of each pair is that much later."""
    calls = 0

    def clock() -> datetime:
        nonlocal calls
        calls += 1
        return utcnow() + (round_trip if calls % 2 == 0 else timedelta(0))

    return clock


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_a_slow_reading_does_not_make_a_right_clock_look_wrong(database_url: str) -> None:
    settings = make_settings(database_url, clock_skew_tolerance_seconds=2)
    application = create_app(settings, host_clock=slow_readings(timedelta(seconds=5)))
    transport = httpx.ASGITransport(app=application)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            ready = await http.get("/readyz")
    finally:
        await application.state.app_state.engine.dispose()
    # Read as 2.5 s ahead, give or take 2.5 s: not beyond the tolerance for certain.
    assert ready.status_code == 200, ready.text
    assert abs(ready.json()["clockSkewUncertaintySeconds"] - 2.5) < 0.5


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_log_in_failures_counted_by_a_host_whose_clock_is_behind_still_count(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Host B's clock is 20 minutes behind: its failures, timed by its own clock, would fall
    outside host A's 15-minute window (and A's pruning would delete them). Timed by the
    database, they count wherever they were made."""
    seeded = await seed_merchant(database_url, roles=())
    email = seeded.owner.email
    async with (
        service(database_url, login_max_failures=3) as app,
        client_at(app, "127.0.0.9") as api,
    ):
        with monkeypatch.context() as host_b:
            host_b.setattr("gql_api.accounts.throttling.utcnow", shifted(timedelta(minutes=-20)))
            await fail_log_in(api, email, 3)
        # Host A, clock right: the address has used up its attempts for this email.
        assert_rate_limited(await log_in(api, email, WRONG_PASSWORD))
