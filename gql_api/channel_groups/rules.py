"""Rules of a channel group's entries, its schedule and the weighted pick; pure functions that
only collect problems (the database checks are gql_api.channel_groups.service's)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import TypeVar

from gql_api.errors import Problems, UserErrorCode
from gql_api.i18n import _, _n

MAX_ENTRIES = 10  # channels per session, as PortOne's console allows
MAX_GROUPS_PER_STORE = 50
MAX_SCHEDULE_DAYS = 366  # how far ahead a session may be scheduled
WEIGHT_TOTAL = 100  # weights are whole percentages
ENTRIES_PATH = ("input", "entries")
BEGIN_AT_PATH = ("input", "beginAt")

T = TypeVar("T")


@dataclass(frozen=True)
class EntryDraft:
    """An entry as given: a Channel's global ID, its weight and whether it takes payments."""

    channel_id: str
    weight: int
    enabled: bool


def entry_path(index: int, field: str) -> tuple[str, ...]:
    return (*ENTRIES_PATH, str(index), field)


def check_entries(problems: Problems, entries: Sequence[EntryDraft]) -> None:
    """1 to MAX_ENTRIES entries; each weight a whole percentage (0-100); the enabled entries'
    weights summing to exactly 100 (a disabled entry's weight counts for nothing, so that an
    entry can be switched off and on without retyping the others)."""
    if not 1 <= len(entries) <= MAX_ENTRIES:
        problems.add(
            UserErrorCode.INVALID_INPUT,
            ENTRIES_PATH,
            _n(
                "A channel group has 1 to {limit} channels; {count} was given.",
                "A channel group has 1 to {limit} channels; {count} were given.",
                len(entries),
                limit=MAX_ENTRIES,
            ),
        )
        return
    in_range = True
    for index, entry in enumerate(entries):
        if not 0 <= entry.weight <= WEIGHT_TOTAL:
            in_range = False
            problems.add(
                UserErrorCode.CHANNEL_GROUP_WEIGHTS_INVALID,
                entry_path(index, "weight"),
                _("A weight is a whole percentage from 0 to {total}.", total=WEIGHT_TOTAL),
            )
    total = sum(entry.weight for entry in entries if entry.enabled)
    if in_range and total != WEIGHT_TOTAL:
        problems.add(
            UserErrorCode.CHANNEL_GROUP_WEIGHTS_INVALID,
            ENTRIES_PATH,
            _(
                "The weights of the enabled channels sum to {sum}; they must sum to exactly "
                "{total}.",
                sum=total,
                total=WEIGHT_TOTAL,
            ),
        )


def check_begin_at(problems: Problems, begin_at: datetime, now: datetime) -> None:
    """A scheduled session begins on the hour (UTC; every time zone in use is whole or half
    hours off UTC, and the console offers hours), after `now` and within MAX_SCHEDULE_DAYS."""
    on_the_hour = begin_at.minute == begin_at.second == begin_at.microsecond == 0
    if not on_the_hour:
        problems.add(
            UserErrorCode.SCHEDULE_INVALID,
            BEGIN_AT_PATH,
            _("A scheduled change begins on the hour (minutes and seconds 0)."),
        )
    elif begin_at <= now:
        problems.add(
            UserErrorCode.SCHEDULE_INVALID,
            BEGIN_AT_PATH,
            _("A scheduled change begins in the future; leave beginAt out to change now."),
        )
    elif begin_at > now + timedelta(days=MAX_SCHEDULE_DAYS):
        problems.add(
            UserErrorCode.SCHEDULE_INVALID,
            BEGIN_AT_PATH,
            _("A change can be scheduled at most {days} days ahead.", days=MAX_SCHEDULE_DAYS),
        )


def weighted_pick(
    entries: Sequence[tuple[T, int, bool]], rng: random.Random | None = None
) -> T | None:
    """The item of one of the enabled (item, weight, enabled) entries, drawn with probability
    weight / total: a uniform draw over the cumulative weights (random.choices with
    cum_weights). Disabled and zero-weight entries are never drawn; None if nothing can be."""
    live = [(item, weight) for item, weight, enabled in entries if enabled and weight > 0]
    if not live:
        return None
    draw = rng or _SYSTEM_RANDOM
    cumulative = list(accumulate(weight for _, weight in live))
    return draw.choices([item for item, _ in live], cum_weights=cumulative, k=1)[0]


# os.urandom-backed: no seed to guess, shared safely by concurrent requests
_SYSTEM_RANDOM = random.SystemRandom()
