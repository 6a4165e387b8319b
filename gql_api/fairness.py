"""How one process's event loop shares its CPU between light and heavy GraphQL requests.

A `serve` process runs every request on one event loop, and the loop runs each ready callback
to its end before it looks at its timers and sockets again. A dashboard (a merchant's stores
and all their channels: ~115 ms of CPU) is a few hundred callbacks, the largest ~7 ms: the
completion of one store's page of channels. When a DataLoader's batch sets its results, every
waiting store becomes ready in the same loop iteration, and one iteration ran ~11 x 7 ms; with
eight dashboards in flight, several hundred ms, during which a one-millisecond query, a
health check or a timer waited. Four rules, all here, bound what a request waits behind:

1. **Heavy operations take turns.** An operation whose cost (gql_api.query_cost: the most
   objects it could return) is above HEAVY_QUERY_COST is *heavy*; at most
   HEAVY_QUERY_CONCURRENCY heavy operations execute at once, the others wait for a turn
   before executing. Waiting costs the loop nothing, and only the executing ones hold their
   objects (~25 MiB for a dashboard): memory is bounded by the setting, not by the number of
   connections.
2. **A heavy operation's loaded values are handed over one per loop iteration**
   (`Lane.paced`), in the order they arrive, and each of its DataLoader batches runs in an
   iteration of its own (`Lane.turn`): each store's completion is an iteration of its own,
   and timers and new requests get in between. An iteration is then about the largest single
   completion (rule 3 cuts the largest, a page of channels, into slices), not the sum of a
   batch. The loads asked for meanwhile are passed on to their
   loaders together once nothing is due, so they still make one batch (one statement).
3. **A heavy operation's long lists are completed a slice at a time** (`Lane.sliced`): a
   store's page of channels is some 20 x 0.35 ms of graphql-core completing fields, and was
   one callback of ~7 ms (most of a dashboard's loop time). graphql-core completes an
   asynchronous iterable item by item, awaiting each; the items come in slices of at most
   LIST_SLICE_SECONDS of the loop's time, each slice after a turn (as a batch takes one),
   so an iteration holds about one slice, not one page. With eight dashboards in flight (and
   their page rows converted store by store, gql_api.channels.pages) the loop's iterations
   went from ~11 to ~5.5 ms of CPU at p99 with 1 ms slices, and a small query's time on the
   loop from ~11 to ~5.7 ms; the turns cost a dashboard 2-5% more CPU at 1 ms, half of that
   at the 2 ms slices now used (+1.4 ms for the small query).
4. **Light requests first.** While a light request that arrived less than
   LIGHT_FIRST_MAX_WAIT_SECONDS ago is in flight (every request counts as light from its
   arrival until its cost says otherwise), the next hand-over of a heavy operation waits for
   it, at most that long: a small query waits for at most the one completion (or slice)
   already running, a stream of them slows a dashboard down but cannot stop it, and a light request
   that waits for something else than the loop (a log-in for its argon2 hash) does not hold
   heavy work back once it is older than that.

The state is per process on purpose: this shares one event loop's CPU among the requests on
that loop, and each process of `serve --workers N` has its own loop and its own CPU time. It
is not a cross-process limit on the service (that would live in the database, as log-in
throttling does). A light request pays a dictionary entry; nothing else here runs for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from functools import partial
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# The longest a heavy operation's next hand-over waits for light requests to finish: a few
# light requests' worth (a small query takes ~2 ms of CPU), and short against a dashboard.
LIGHT_FIRST_MAX_WAIT_SECONDS = 0.02
# A heavy operation waits for light requests, in all, at most this share of the time it ran
# otherwise: a steady stream of light requests at most doubles a dashboard's time.
LIGHT_FIRST_MAX_SHARE = 1.0
# The most of the loop's time a heavy operation's list completes in before it takes a turn:
# a few channels of a page, and well above what a turn costs (some 20 microseconds). 2 ms
# rather than 1: the turns' share of a dashboard's CPU halves (bench: the dashboard row was
# 0.69-0.75 of its floor on PostgreSQL against a target of 0.7), for about 1 ms more of a
# small query's wait behind a dashboard.
LIST_SLICE_SECONDS = 0.002


class Fairness:
    """One process's rules (see the module): HEAVY_QUERY_COST, HEAVY_QUERY_CONCURRENCY, the
    count of light requests in flight, and what heavy operations wait for."""

    def __init__(
        self,
        *,
        heavy_cost: int,
        heavy_concurrency: int,
        light_first_max_wait_seconds: float = LIGHT_FIRST_MAX_WAIT_SECONDS,
        light_first_max_share: float = LIGHT_FIRST_MAX_SHARE,
        list_slice_seconds: float = LIST_SLICE_SECONDS,
    ) -> None:
        self.heavy_cost = heavy_cost
        self.list_slice_seconds = list_slice_seconds
        self.light_first_max_wait_seconds = light_first_max_wait_seconds
        self.light_first_max_share = light_first_max_share
        self.heavy_executing = 0  # heavy operations holding a turn now
        self._turns = asyncio.Semaphore(heavy_concurrency)
        # Light requests in flight, by arrival (loop time): the last one is the youngest.
        self._light: dict[Lane, float] = {}
        self._light_ended = asyncio.Event()
        # Values (and batches' turns) to hand over, one per iteration, in order of arrival.
        self._due: deque[tuple[Lane, Callable[[], None]]] = deque()
        # Loads to pass on to their DataLoaders, all at once once nothing is due.
        self._asked: deque[_PacedLoad[Any]] = deque()
        self._pacing: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def request(self) -> Iterator[Lane]:
        """One GraphQL request, from its arrival until its answer is sent: light until
        `Lane.classify` finds its cost above HEAVY_QUERY_COST."""
        lane = Lane(self)
        self._light[lane] = asyncio.get_running_loop().time()
        try:
            yield lane
        finally:
            self._light_ends(lane)

    def _light_ends(self, lane: Lane) -> None:
        if self._light.pop(lane, None) is not None:
            self._light_ended.set()

    async def _light_first(self, lane: Lane) -> None:
        """Rule 4: wait while a light request that arrived less than
        LIGHT_FIRST_MAX_WAIT_SECONDS ago is in flight, and at most that long. An older one is
        waiting for something else than this loop (a log-in for its hash, a write for a
        lock): holding heavy work back would not answer it sooner. `lane`, the heavy
        operation whose hand-over is next, waits in all no longer than it has run otherwise:
        at most LIGHT_FIRST_MAX_SHARE of that (a steady stream of light requests at most
        doubles its time)."""
        loop = asyncio.get_running_loop()
        bound = self.light_first_max_wait_seconds
        started = loop.time()
        budget = lane.light_first_budget(started, self.light_first_max_share)
        deadline = started + min(bound, budget)
        try:
            await self._wait_for_light(deadline)
        finally:
            lane.held += loop.time() - started

    async def _wait_for_light(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        bound = self.light_first_max_wait_seconds
        while self._light:
            youngest = next(reversed(self._light.values()))
            until = min(deadline, youngest + bound)
            if until <= loop.time():
                return
            self._light_ended.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(until):
                    await self._light_ended.wait()

    async def _turn(self, lane: Lane) -> None:
        """Returns in an iteration of its own, after the hand-overs due before it."""
        await self._turn_due(lane)

    def _turn_due(self, lane: Lane) -> asyncio.Future[None]:
        """A turn, due from now on: done in an iteration of its own, after the hand-overs due
        before it. Loads asked meanwhile are not passed on before it is done."""
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._due.append((lane, partial(_give_turn, turn)))
        self._pace()
        return turn

    def _pace(self) -> None:
        if self._pacing is None:
            # A context of its own: not that of the request whose value came first.
            self._pacing = asyncio.get_running_loop().create_task(
                self._pacer(), context=contextvars.Context()
            )

    async def _pacer(self) -> None:
        """One hand-over per loop iteration: `sleep(0)` lets the loop poll its timers and
        sockets, and run what the last hand-over woke, before the next one. Loads are passed
        on once nothing is due, all in the same iteration: the loads that the values handed
        over one by one asked for still make one batch (one statement), as without pacing."""
        try:
            while self._due or self._asked:
                if self._due:
                    if self._light:
                        await self._light_first(self._due[0][0])
                    self._due.popleft()[1]()
                else:
                    asked, self._asked = self._asked, deque()
                    for load in asked:
                        load.ask()
                await asyncio.sleep(0)
        finally:
            self._pacing = None
            # Cancelled (the loop is closing): nobody waits for what is left.
            for load in self._asked:
                load.handed.cancel()
            self._asked.clear()
            while self._due:
                self._due.popleft()[1]()


class _PacedLoad(Generic[T]):
    """One DataLoader.load() of a heavy operation (rule 2): passed on to the loader with the
    others asked meanwhile, its value handed over in an iteration of its own. Cancelling
    `handed` cancels the loader's future, as cancelling a task awaiting it would have."""

    def __init__(self, lane: Lane, load: Callable[[], Awaitable[T]]) -> None:
        self.lane = lane
        self.fairness = lane.fairness
        self.load = load
        # Passed on in the context of the request that asked (its request id and language),
        # whoever passes it on: the pacer runs in a context of its own.
        self.context = contextvars.copy_context()
        self.handed: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.handed.add_done_callback(self._handed_cancelled)
        self.loaded: asyncio.Future[T] | None = None

    def ask(self) -> None:
        if not self.handed.done():  # else cancelled before it was asked
            self.loaded = asyncio.ensure_future(self.context.run(self.load))
            self.loaded.add_done_callback(self._arrived)

    def _arrived(self, _: object) -> None:
        self.fairness._due.append((self.lane, self._hand_over))
        self.fairness._pace()

    def _hand_over(self) -> None:
        handed, loaded = self.handed, self.loaded
        if handed.done():  # cancelled meanwhile
            return
        if loaded is None or not loaded.done() or loaded.cancelled():
            handed.cancel()
        elif (error := loaded.exception()) is not None:
            handed.set_exception(error)
        else:
            handed.set_result(loaded.result())

    def _handed_cancelled(self, _: object) -> None:
        if self.handed.cancelled() and self.loaded is not None:
            self.loaded.cancel()


class Lane:
    """One request's standing: light, or heavy once its cost is known to be above
    HEAVY_QUERY_COST (decided once, before the operation executes)."""

    def __init__(self, fairness: Fairness) -> None:
        self.fairness = fairness
        self.heavy = False
        self.started: float | None = None  # loop time its execution began (heavy only)
        self.held = 0.0  # seconds its hand-overs waited for light requests (rule 4)

    def light_first_budget(self, now: float, share: float) -> float:
        """How much longer it may wait for light requests: `share` of the time it ran
        otherwise, less what it waited already."""
        if self.started is None:
            return 0.0
        return max(0.0, (now - self.started - self.held) * share - self.held)

    def classify(self, cost: int) -> None:
        """Called with the operation's cost once it is known (gql_api.query_cost)."""
        if cost > self.fairness.heavy_cost and not self.heavy:
            self.heavy = True
            self.fairness._light_ends(self)

    @contextlib.asynccontextmanager
    async def executing(self) -> AsyncIterator[None]:
        """Around the operation's execution: a heavy one waits for its turn (rule 1)."""
        if not self.heavy:
            yield
            return
        async with self.fairness._turns:
            self.started = asyncio.get_running_loop().time()
            self.fairness.heavy_executing += 1
            try:
                yield
            finally:
                self.fairness.heavy_executing -= 1

    async def turn(self) -> None:
        """Before a heavy operation's DataLoader batch runs (a dashboard's batch of channel
        pages reads and builds 200 rows at once): in an iteration of its own, as a hand-over
        (rule 2). Returns at once for a light request."""
        if self.heavy:
            await self.fairness._turn(self)

    def paced(self, load: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """A DataLoader's `load` of one key: for a heavy operation, passed on with the other
        loads asked meanwhile, its value handed over one loop iteration after the previous one
        (rule 2); for a light one, called at once."""
        if not self.heavy:
            return load()
        paced = _PacedLoad(self, load)
        # Passed on by the pacer with every load asked meanwhile: handing them on at once when
        # nothing was due split a batch in two (a load asked one iteration later went alone).
        self.fairness._asked.append(paced)
        self.fairness._pace()
        return paced.handed

    def sliced(self, items: list[T]) -> list[T]:
        """A list field's value: for a heavy operation, completed a slice at a time, a turn
        between two slices (rule 3); for a light one, `items` itself."""
        if not self.heavy:
            return items
        return _Sliced(items, self)

    async def _slices(self, items: Iterable[T], first: Awaitable[None]) -> AsyncIterator[T]:
        await first
        slice_seconds = self.fairness.list_slice_seconds
        ends = time.perf_counter() + slice_seconds
        for index, item in enumerate(items):
            if index and time.perf_counter() >= ends:
                await self.fairness._turn(self)
                ends = time.perf_counter() + slice_seconds
            yield item


class _Sliced(list[T]):
    """The same list, which graphql-core completes as an asynchronous iterable (it looks for
    `__aiter__` before it iterates): item by item, in slices (Lane.sliced)."""

    def __init__(self, items: list[T], lane: Lane) -> None:
        super().__init__(items)
        self._lane = lane

    def __aiter__(self) -> AsyncIterator[T]:
        # graphql-core asks for the iterator as it completes the field, and iterates it in a
        # task of its own, an iteration later. The first slice's turn is due from now on, as a
        # value being handed over is: loads its items ask still join those asked meanwhile
        # (handing them on in between split a batch: one statement more).
        first = self._lane.fairness._turn_due(self._lane)
        return self._lane._slices(list.__iter__(self), first)


def _give_turn(turn: asyncio.Future[None]) -> None:
    if not turn.done():  # cancelled meanwhile
        turn.set_result(None)
