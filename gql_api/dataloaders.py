"""The base of every area's DataLoaders: created per request, on first use, kept on the context.

As saleor's `DataLoader` with `context_key`: each area declares its loaders in
`gql_api/<area>/loaders.py` and a resolver asks for one by class, `StoreLoader.of(info.context)`;
the context holds them in a dict by key and imports no area.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Awaitable, Hashable, Sequence
from functools import partial
from typing import Any, ClassVar, Self, TypeVar, cast

from strawberry.dataloader import DataLoader

from gql_api.context import Context

K = TypeVar("K")
V = TypeVar("V")

_keys: dict[str, type[AreaLoader[Any, Any]]] = {}


class AreaLoader(DataLoader[K, V]):
    """A DataLoader bound to one request's context.

    Subclasses set `context_key` (unique), implement `batch_load`, and may override `cache_key`
    when a key carries more than its identity (e.g. a whole row, cached by its primary key).
    """

    context_key: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        key = cls.__dict__.get("context_key")
        if key is None:
            return
        taken = _keys.setdefault(key, cls)
        if _name(taken) != _name(cls):
            raise TypeError(f"context_key {key!r} of {_name(cls)} is already {_name(taken)}'s")

    def __init__(self, context: Context) -> None:
        self.context = context
        super().__init__(load_fn=self._load_in_turn, cache_key_fn=self.cache_key)

    async def _load_in_turn(self, keys: list[K]) -> Sequence[V | BaseException]:
        # A heavy operation's batch runs in a loop iteration of its own (gql_api.fairness).
        if self.context.lane is not None:
            await self.context.lane.turn()
        return await self.batch_load(keys)

    @classmethod
    def of(cls, context: Context) -> Self:
        """This request's loader of this class, created on first use."""
        found = context.dataloaders.get(cls.context_key)
        if found is None:
            found = context.dataloaders[cls.context_key] = cls(context)
        if not isinstance(found, cls):
            raise TypeError(f"context_key {cls.context_key!r} holds a {type(found).__name__}")
        return found

    @abstractmethod
    async def batch_load(self, keys: list[K]) -> Sequence[V | BaseException]:
        """The values of `keys`, in their order; reads through `self.context.db()`."""

    def cache_key(self, key: K) -> Hashable:
        """What the cache knows `key` by: the key itself unless a subclass says otherwise."""
        return cast(Hashable, key)

    def load(self, key: K) -> Awaitable[V]:
        if self.context.holds_db():
            # The batch function takes the same lock: awaiting this would wait forever.
            raise RuntimeError(
                f"{type(self).__name__}.load() inside `async with context.db()`: the batch "
                "reads through the same session lock. Load first, then open db()."
            )
        lane = self.context.lane
        if lane is None or not lane.heavy:
            return super().load(key)
        cached = self.cache_map.get(key)
        if cached is not None and cached.done() and not cached.cancelled():
            return cached  # awaiting it does not yield to the loop: nothing to space out
        # A heavy operation's values come one loop iteration apart (gql_api.fairness).
        return lane.paced(partial(super().load, key))


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
