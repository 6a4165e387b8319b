"""Throttling windows are the database's clock, whatever the clock of the host that counted.

A host is played in this process by shifting the clock its modules read (their `utcnow`), as
tests/test_clock.py does for log-in failures: API-secret failures and verifications recorded
by a host whose clock is 20 minutes behind still count for a host whose clock is right (the
window is 15 minutes), and a host whose clock is hours ahead prunes none of them. A log-in
success remembered by a host whose clock is behind keeps its address known (KNOWN_FOR).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from starlette.applications import Starlette

from db.types import utcnow
from gql_api.api_secrets.throttling import MAX_FAILURES, MAX_VERIFICATIONS
from tests.accounts.test_login_throttling import (
    OTHER_ADDRESS,
    OWNER_ADDRESS,
    WRONG_PASSWORD,
    assert_logged_in,
    assert_rate_limited,
    log_in,
    service,
)
from tests.accounts.test_login_throttling import client_at as login_client_at
from tests.api_secrets.helpers import (
    WHO_AM_I,
    assert_refused,
    issue,
    near_miss,
    portone,
    set_secret_columns,
)
from tests.api_secrets.test_throttling import FORGER, client_at, forgeries
from tests.support import PASSWORD, Api, GraphQLResponse

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

# Every module of the path that reads the host's clock (`raising=False`: older code read it
# in fewer places).
API_SECRET_CLOCKS = ("gql_api.api_secrets.auth.utcnow", "gql_api.api_secrets.throttling.utcnow")
LOG_IN_CLOCKS = ("gql_api.accounts.throttling.utcnow",)


def shifted(by: timedelta) -> Callable[[], datetime]:
    """The clock of a host whose clock is off by `by`."""
    return lambda: utcnow() + by


@contextmanager
def host_clock_off_by(
    monkeypatch: pytest.MonkeyPatch, by: timedelta, clocks: tuple[str, ...]
) -> Iterator[None]:
    with monkeypatch.context() as host:
        for target in clocks:
            host.setattr(target, shifted(by), raising=False)
        yield


def assert_throttled(result: GraphQLResponse) -> None:
    assert result.status == 429, result.body
    assert result.error_codes == ["RATE_LIMITED"]


async def forge(app: Starlette, address: str, forged: list[str]) -> None:
    """Forgeries of one key id from `address`, each refused as invalid (not throttled)."""
    async with client_at(app, address) as forger:
        for secret in forged:
            assert_refused(await forger.gql(WHO_AM_I, authorization=portone(secret)), "INVALID")


async def test_failures_counted_by_a_host_whose_clock_is_behind_still_count(
    app: Starlette, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By its own clock host B's failures would be 20 minutes old, outside host A's window."""
    # given: a secret, and its key id forged MAX_FAILURES times from one address through B
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    with host_clock_off_by(monkeypatch, timedelta(minutes=-20), API_SECRET_CLOCKS):
        await forge(app, FORGER, forgeries(issued.secret, MAX_FAILURES))

    # when: the address forges once more, through host A (clock right)
    async with client_at(app, FORGER) as forger:
        again = await forger.gql(WHO_AM_I, authorization=portone(near_miss(issued.secret)))

    # then: the address is over its limit
    assert_throttled(again)


async def test_verifications_started_by_a_host_whose_clock_is_behind_still_count(
    app: Starlette, api: Api, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a secret issued before verification tags (every attempt runs argon2), tried
    # MAX_VERIFICATIONS times with wrong secrets through host B, clock 20 minutes behind
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await set_secret_columns(database_url, issued.pk, verify_tag=None)
    with host_clock_off_by(monkeypatch, timedelta(minutes=-20), API_SECRET_CLOCKS):
        await forge(app, FORGER, forgeries(issued.secret, MAX_VERIFICATIONS))

    # when: another wrong secret from another address, through host A (clock right)
    async with client_at(app, "127.0.0.3") as elsewhere:
        again = await elsewhere.gql(WHO_AM_I, authorization=portone(near_miss(issued.secret)))

    # then: the key has used up its argon2 runs for the window
    assert_throttled(again)


async def test_a_host_whose_clock_is_ahead_prunes_no_failure_still_in_the_window(
    app: Starlette, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows older than an hour are pruned with every failure; by host C's clock, two hours
    ahead, every row just written would be."""
    # given: an address over its limit, through host A (clock right)
    owner = await api.sign_up()
    issued = await issue(api, owner.token, owner.representative_store_id)
    await forge(app, FORGER, forgeries(issued.secret, MAX_FAILURES))

    # when: host C records a failure from another address, pruning as it goes
    with host_clock_off_by(monkeypatch, timedelta(hours=2), API_SECRET_CLOCKS):
        await forge(app, "127.0.0.3", [near_miss(issued.secret, -20)])

    # then: the first address is still over its limit
    async with client_at(app, FORGER) as forger:
        again = await forger.gql(WHO_AM_I, authorization=portone(near_miss(issued.secret)))
    assert_throttled(again)


async def test_a_log_in_remembered_by_a_host_whose_clock_is_behind_keeps_its_address_known(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An (email, address) that logged in within 30 days takes no turn. Timed by a host whose
    clock is a month behind (extreme, to show it plainly: any skew moves the 30 days by as
    much), the success would be forgotten at once."""
    # Past one failure for the email, an unknown address's turn (0.25 s ahead) is refused.
    settings = {"login_email_slowdown_after": 1, "login_email_max_queue_seconds": 0}
    async with (
        service(database_url, **settings) as app,
        login_client_at(app, OWNER_ADDRESS) as home,
        login_client_at(app, OTHER_ADDRESS) as guesser,
    ):
        # given: the owner logs in from home through host B, its clock 31 days behind
        owner = await home.sign_up()
        with host_clock_off_by(monkeypatch, timedelta(days=-31), LOG_IN_CLOCKS):
            assert_logged_in(await log_in(home, owner.email, PASSWORD), owner.email)
        # and: someone guesses the password from elsewhere
        guessed = await log_in(guesser, owner.email, WRONG_PASSWORD)
        assert guessed.data["sessionCreate"]["userErrors"][0]["code"] == "INVALID_CREDENTIALS"

        # when: the owner logs in from home through host A (clock right)
        from_home = await log_in(home, owner.email, PASSWORD)

        # then: home is a known address: no turn to wait for, no refusal
        assert_logged_in(from_home, owner.email)
        # and: an unknown address would have been refused
        assert_rate_limited(await log_in(guesser, owner.email, WRONG_PASSWORD))
