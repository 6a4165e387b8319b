"""The per-request loader base: one loader per class and request, and no load inside db()."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gql_api.context import AppState, Context
from gql_api.dataloaders import AreaLoader


class _Session:
    async def close(self) -> None:
        pass


class _EchoLoader(AreaLoader[int, int]):
    """Reads through the context's session, as every area's loader does."""

    context_key = "tests.echo"

    async def batch_load(self, keys: list[int]) -> list[int]:
        async with self.context.db():
            return [key * 10 for key in keys]


def _context() -> Context:
    app = cast(AppState, SimpleNamespace(session_factory=_Session))
    return Context(
        request=cast(Any, None),
        response=None,
        app=app,
        principal=None,
        request_id="test",
        client_address="127.0.0.1",
    )


async def test_one_loader_per_class_and_context() -> None:
    # given
    context = _context()

    # when
    first = _EchoLoader.of(context)

    # then
    assert _EchoLoader.of(context) is first
    assert _EchoLoader.of(_context()) is not first
    assert await first.load(4) == 40


async def test_loading_inside_db_is_refused() -> None:
    # given: the task holds the session lock that the batch function would wait for
    context = _context()
    loader = _EchoLoader.of(context)

    # when / then: refused at once instead of waiting forever
    async with context.db():
        with pytest.raises(RuntimeError, match=r"inside `async with context.db\(\)`"):
            loader.load(1)
        with pytest.raises(RuntimeError, match="inside"):
            loader.load_many([1, 2])

    # then: after the block, the same load works
    assert await loader.load(1) == 10


async def test_nested_db_in_one_task_is_refused() -> None:
    context = _context()

    async with context.db():
        with pytest.raises(RuntimeError, match=r"context.db\(\) inside context.db\(\)"):
            async with context.db():
                pass


async def test_another_task_loading_waits_for_the_session() -> None:
    # given: one resolver holds the session while a sibling loads
    context = _context()
    loader = _EchoLoader.of(context)
    release = asyncio.Event()

    async def holder() -> None:
        async with context.db():
            await release.wait()

    holding = asyncio.create_task(holder())
    await asyncio.sleep(0)

    # when
    loading = asyncio.ensure_future(loader.load(3))
    await asyncio.sleep(0.01)

    # then: the sibling waits, not refused, and gets its value once the session is free
    assert not loading.done()
    release.set()
    assert await loading == 30
    await holding


def test_a_context_key_belongs_to_one_loader() -> None:
    with pytest.raises(TypeError, match=r"tests\.echo"):

        class _Other(AreaLoader[int, int]):
            context_key = "tests.echo"

            async def batch_load(self, keys: list[int]) -> list[int]:
                return keys
