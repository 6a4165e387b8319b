"""Channel groups: create, change now or on a schedule, delete; read their sessions; pick.

Every function starts with the permission check (CHANNEL_MANAGE to change, READ to read and
pick) and reports every problem of an input at once. A group is of one store and mode, and
only that store's live channels of that mode can be in it; another merchant's group or channel
is NOT_FOUND, never FORBIDDEN.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.models import Channel, ChannelGroup, ChannelGroupEntry, ChannelGroupSession, Store
from db.types import utcnow
from gql_api import validation
from gql_api.audit import service as audit
from gql_api.channel_groups import rules
from gql_api.channel_groups.rules import EntryDraft
from gql_api.channels.rules import IntegrationMode
from gql_api.errors import DomainError, Problems, UserErrorCode
from gql_api.i18n import _
from gql_api.ids import pk_of
from gql_api.permissions import (
    Operation,
    Principal,
    confined_store_pk,
    may_act_on_store,
    require,
)
from gql_api.scoping import scope_to_store
from gql_api.stores.service import require_store, store_id_of
from gql_api.unique_names import UniqueName

ID_PATH = ("input", "id")
GROUP_NOT_FOUND = _("No channel group with this ID.")


@dataclass(frozen=True)
class GroupDraft:
    store_id: str
    mode: IntegrationMode
    name: str
    entries: Sequence[EntryDraft]


@dataclass(frozen=True)
class GroupChanges:
    """What channelGroupUpdate changes: entries with no begin_at take effect now."""

    group_id: str
    name: str | None = None
    entries: Sequence[EntryDraft] | None = None
    begin_at: datetime | None = None


@dataclass(frozen=True)
class EntryView:
    channel_pk: int
    weight: int
    enabled: bool


@dataclass(frozen=True)
class SessionView:
    pk: int
    begin_at: datetime
    entries: list[EntryView] = field(default_factory=list)


@dataclass(frozen=True)
class GroupSessions:
    """A group's sessions as of `now`: the latest that has begun, and the one to come."""

    current: SessionView | None
    scheduled: SessionView | None


def new_channel_group_id(mode: IntegrationMode) -> str:
    """channel-group-live-<uuid4> / channel-group-test-<uuid4>, the SDK's channelGroupId."""
    return f"channel-group-{mode.value.lower()}-{uuid.uuid4()}"


def visible_groups(principal: Principal) -> SelectOfScalar[ChannelGroup]:
    """The groups of the caller's merchant, of its own store only when it is confined to one;
    a deleted store's groups are gone with it (they pick nothing)."""
    require(principal, Operation.READ)
    live_stores = select(Store.id).where(
        col(Store.merchant_id) == principal.merchant_pk, col(Store.deleted_at).is_(None)
    )
    statement = select(ChannelGroup).where(
        col(ChannelGroup.merchant_id) == principal.merchant_pk,
        col(ChannelGroup.store_pk).in_(live_stores),
    )
    return scope_to_store(statement, principal, Operation.READ, col(ChannelGroup.store_pk))


async def group_by_pk(*, db: AsyncSession, principal: Principal, pk: int) -> ChannelGroup | None:
    statement = visible_groups(principal).where(col(ChannelGroup.id) == pk)
    return (await db.exec(statement)).first()


async def sessions_of(
    *, db: AsyncSession, group_pks: Sequence[int], now: datetime | None = None
) -> dict[int, GroupSessions]:
    """The current and scheduled session of each group (in two statements), as of `now`:
    a scheduled session replaces the current one at its beginAt without anyone writing."""
    now = now or utcnow()
    if not group_pks:
        return {}
    rows = (
        await db.exec(
            select(ChannelGroupSession).where(col(ChannelGroupSession.group_pk).in_(group_pks))
        )
    ).all()
    chosen: dict[int, GroupSessions] = {}
    for group_pk in group_pks:
        mine = [row for row in rows if row.group_pk == group_pk]
        begun = [row for row in mine if row.begin_at <= now]
        to_come = [row for row in mine if row.begin_at > now]
        current = max(begun, key=lambda r: (r.begin_at, r.id or 0), default=None)
        scheduled = min(to_come, key=lambda r: (r.begin_at, r.id or 0), default=None)
        chosen[group_pk] = GroupSessions(
            current=_view(current) if current else None,
            scheduled=_view(scheduled) if scheduled else None,
        )
    session_pks = [
        view.pk
        for sessions in chosen.values()
        for view in (sessions.current, sessions.scheduled)
        if view is not None
    ]
    if session_pks:
        entries = (
            await db.exec(
                select(ChannelGroupEntry)
                .where(col(ChannelGroupEntry.session_pk).in_(session_pks))
                .order_by(col(ChannelGroupEntry.session_pk), col(ChannelGroupEntry.position))
            )
        ).all()
        by_session: dict[int, list[EntryView]] = defaultdict(list)
        for entry in entries:
            by_session[entry.session_pk].append(
                EntryView(channel_pk=entry.channel_pk, weight=entry.weight, enabled=entry.enabled)
            )
        for sessions in chosen.values():
            for view in (sessions.current, sessions.scheduled):
                if view is not None:
                    view.entries.extend(by_session.get(view.pk, []))
    return chosen


def _view(row: ChannelGroupSession) -> SessionView:
    assert row.id is not None
    return SessionView(pk=row.id, begin_at=row.begin_at)


async def create_group(
    *, db: AsyncSession, principal: Principal, draft: GroupDraft
) -> ChannelGroup:
    """A group whose first session begins now."""
    require(principal, Operation.CHANNEL_MANAGE)
    problems = Problems()
    store = await _store_or_problem(db, principal, problems, draft.store_id)
    name = validation.name(problems, draft.name, ("input", "name"), label=_("Channel group name"))
    channel_pks = await _check_entries(
        db,
        principal,
        problems,
        draft.entries,
        store_pk=store.id if store else None,
        mode=draft.mode,
    )
    problems.raise_if_any()
    assert store is not None and store.id is not None
    await _lock_store(db, store.id)
    count = (
        await db.exec(select(func.count()).where(col(ChannelGroup.store_pk) == store.id))
    ).one()
    if count >= rules.MAX_GROUPS_PER_STORE:
        raise DomainError.single(
            UserErrorCode.LIMIT_EXCEEDED,
            ("input", "storeId"),
            _(
                "A store has at most {limit} channel groups; delete one first.",
                limit=rules.MAX_GROUPS_PER_STORE,
            ),
        )
    await _ensure_name_free(db, store.id, name)
    now = utcnow()
    group = ChannelGroup(
        channel_group_id=new_channel_group_id(draft.mode),
        merchant_id=principal.merchant_pk,
        store_pk=store.id,
        name=name,
        mode=draft.mode.value,
        created_at=now,
        updated_at=now,
    )
    db.add(group)
    await _GROUP_NAME.flush(db)
    assert group.id is not None
    await _add_session(db, group.id, now, draft.entries, channel_pks)
    await audit.record_by(
        db,
        principal,
        "channel_group.create",
        f"Created {draft.mode.value} channel group “{name}”: {_summary(draft.entries)}",
        store_id=store.store_id,
        target_id=group.channel_group_id,
    )
    return group


async def update_group(
    *, db: AsyncSession, principal: Principal, changes: GroupChanges
) -> ChannelGroup:
    """Rename, and/or give new entries: now (the current session is replaced) or from
    `begin_at` on (the scheduled session, replacing any scheduled before)."""
    require(principal, Operation.CHANNEL_MANAGE)
    group = await _managed_group(db, principal, changes.group_id)
    problems = Problems()
    now = utcnow()
    name = group.name
    if changes.name is not None:
        name = validation.name(
            problems, changes.name, ("input", "name"), label=_("Channel group name")
        )
    if changes.begin_at is not None:
        if changes.entries is None:
            problems.add(
                UserErrorCode.REQUIRED,
                rules.ENTRIES_PATH,
                _("Give the entries of the session that begins at beginAt."),
            )
        rules.check_begin_at(problems, changes.begin_at, now)
    channel_pks: list[int] = []
    if changes.entries is not None:
        channel_pks = await _check_entries(
            db,
            principal,
            problems,
            changes.entries,
            store_pk=group.store_pk,
            mode=IntegrationMode(group.mode),
        )
    problems.raise_if_any()
    assert group.id is not None
    changed: list[str] = []
    if name != group.name:
        await _ensure_name_free(db, group.store_pk, name, exclude=group.id)
        changed.append(f"name “{group.name}” → “{name}”")
        group.name = name
    if changes.entries is not None:
        begin_at = changes.begin_at or now
        if changes.begin_at is not None:
            await _delete_sessions(db, group.id, after=now)
            changed.append(f"entries from {begin_at.isoformat()}: {_summary(changes.entries)}")
        else:
            changed.append(f"entries now: {_summary(changes.entries)}")
        await _add_session(db, group.id, begin_at, changes.entries, channel_pks)
        await _prune(db, group.id, now)
    if not changed:
        return group
    group.updated_at = now
    db.add(group)
    await _GROUP_NAME.flush(db)
    await audit.record_by(
        db,
        principal,
        "channel_group.update",
        f"Updated channel group “{group.name}”: {'; '.join(changed)}",
        store_id=await store_id_of(db, group.store_pk),
        target_id=group.channel_group_id,
    )
    return group


async def delete_scheduled_session(
    *, db: AsyncSession, principal: Principal, group_id: str
) -> ChannelGroup:
    """The scheduled session is dropped; the current one stays. SCHEDULE_INVALID if none."""
    require(principal, Operation.CHANNEL_MANAGE)
    group = await _managed_group(db, principal, group_id)
    assert group.id is not None
    if not await _delete_sessions(db, group.id, after=utcnow()):
        raise DomainError.single(
            UserErrorCode.SCHEDULE_INVALID,
            ID_PATH,
            _("This channel group has no scheduled session."),
        )
    group.updated_at = utcnow()
    db.add(group)
    await db.flush()
    await audit.record_by(
        db,
        principal,
        "channel_group.scheduled_session_delete",
        f"Cancelled the scheduled change of channel group “{group.name}”",
        store_id=await store_id_of(db, group.store_pk),
        target_id=group.channel_group_id,
    )
    return group


async def delete_group(*, db: AsyncSession, principal: Principal, group_id: str) -> ChannelGroup:
    """The group, its sessions and entries are deleted for good (it cannot be undone); its
    channelGroupId stops picking at once."""
    require(principal, Operation.CHANNEL_MANAGE)
    group = await _managed_group(db, principal, group_id)
    assert group.id is not None
    await _delete_sessions(db, group.id)
    await db.exec(delete(ChannelGroup).where(col(ChannelGroup.id) == group.id))
    await audit.record_by(
        db,
        principal,
        "channel_group.delete",
        f"Deleted channel group “{group.name}”",
        store_id=await store_id_of(db, group.store_pk),
        target_id=group.channel_group_id,
    )
    return group


async def pick_channel(
    *,
    db: AsyncSession,
    principal: Principal,
    channel_group_id: str,
    rng: random.Random | None = None,
) -> Channel | None:
    """The channel the group's current session picks now, by weight; None for a group the
    caller cannot see (or that does not exist) and for one with nothing to pick."""
    statement = visible_groups(principal).where(
        col(ChannelGroup.channel_group_id) == channel_group_id
    )
    group = (await db.exec(statement)).first()
    if group is None or group.id is None:
        return None
    current = (await sessions_of(db=db, group_pks=[group.id]))[group.id].current
    if current is None:
        return None
    channel_pk = rules.weighted_pick(
        [(entry.channel_pk, entry.weight, entry.enabled) for entry in current.entries], rng
    )
    if channel_pk is None:
        return None
    channel = await db.get(Channel, channel_pk)
    return channel if channel is not None and channel.deleted_at is None else None


async def groups_using_channel(db: AsyncSession, channel: Channel) -> list[str]:
    """Names of the groups whose current or scheduled session has `channel` (enabled or not):
    such a channel cannot be deleted (CHANNEL_IN_GROUP). Superseded sessions do not count."""
    rows = (
        await db.exec(
            select(ChannelGroup.id, ChannelGroup.name, ChannelGroupEntry.session_pk)
            .join(ChannelGroupSession, col(ChannelGroupSession.group_pk) == ChannelGroup.id)
            .join(ChannelGroupEntry, col(ChannelGroupEntry.session_pk) == ChannelGroupSession.id)
            .where(
                col(ChannelGroup.store_pk) == channel.store_pk,
                col(ChannelGroupEntry.channel_pk) == channel.id,
            )
        )
    ).all()
    if not rows:
        return []
    names = {group_pk: name for group_pk, name, _session in rows if group_pk is not None}
    live = await sessions_of(db=db, group_pks=sorted(names))
    using = {
        group_pk
        for group_pk, _name, session_pk in rows
        if group_pk is not None
        and session_pk
        in {view.pk for view in (live[group_pk].current, live[group_pk].scheduled) if view}
    }
    return sorted(names[group_pk] for group_pk in using)


async def _store_or_problem(
    db: AsyncSession, principal: Principal, problems: Problems, store_id: str
) -> Store | None:
    try:
        return await require_store(
            db=db, principal=principal, operation=Operation.CHANNEL_MANAGE, store_id=store_id
        )
    except DomainError as error:
        problems.errors.extend(error.errors)
        return None


async def _check_entries(
    db: AsyncSession,
    principal: Principal,
    problems: Problems,
    entries: Sequence[EntryDraft],
    *,
    store_pk: int | None,
    mode: IntegrationMode,
) -> list[int]:
    """The channel pks of `entries`, each a live channel of the store (`store_pk`; unknown:
    only that it is one the caller may manage) and of `mode`, given once; locked until the
    transaction ends (PostgreSQL), so that a concurrent channelDelete waits and then sees the
    group."""
    rules.check_entries(problems, entries)
    if len(entries) > rules.MAX_ENTRIES:
        return []
    pks: list[int | None] = [pk_of(entry.channel_id, "Channel") for entry in entries]
    wanted = sorted({pk for pk in pks if pk is not None})
    statement = select(Channel).where(
        col(Channel.id).in_(wanted),
        col(Channel.merchant_id) == principal.merchant_pk,
        col(Channel.deleted_at).is_(None),
    )
    store_pk = store_pk or confined_store_pk(principal, Operation.CHANNEL_MANAGE)
    if store_pk is not None:
        statement = statement.where(col(Channel.store_pk) == store_pk)
    # locked in key order, so that two transactions locking overlapping channels cannot deadlock
    locking = statement.order_by(col(Channel.id)).with_for_update()
    found = {row.id: row for row in (await db.exec(locking)).all()}
    seen: set[int] = set()
    for index, pk in enumerate(pks):
        path = rules.entry_path(index, "channelId")
        row = found.get(pk) if pk is not None else None
        if row is None:
            problems.add(
                UserErrorCode.NOT_FOUND, path, _("No channel with this ID in the group's store.")
            )
        elif row.mode != mode.value:
            problems.add(
                UserErrorCode.CHANNEL_GROUP_MODE_MISMATCH,
                path,
                _(
                    "“{name}” is a {channel_mode} channel; a {group_mode} group takes "
                    "{group_mode} channels only.",
                    name=row.name,
                    channel_mode=row.mode,
                    group_mode=mode.value,
                ),
            )
        elif pk in seen:
            problems.add(
                UserErrorCode.INVALID_INPUT,
                path,
                _("“{name}” is in the group twice.", name=row.name),
            )
        if pk is not None:
            seen.add(pk)
    return [pk for pk in pks if pk is not None]


async def _add_session(
    db: AsyncSession,
    group_pk: int,
    begin_at: datetime,
    entries: Sequence[EntryDraft],
    channel_pks: Sequence[int],
) -> None:
    session = ChannelGroupSession(group_pk=group_pk, begin_at=begin_at)
    db.add(session)
    await db.flush()
    assert session.id is not None
    for position, (entry, channel_pk) in enumerate(zip(entries, channel_pks, strict=True)):
        db.add(
            ChannelGroupEntry(
                session_pk=session.id,
                position=position,
                channel_pk=channel_pk,
                weight=entry.weight,
                enabled=entry.enabled,
            )
        )
    await db.flush()


async def _delete_sessions(
    db: AsyncSession, group_pk: int, *, after: datetime | None = None
) -> int:
    """Delete the group's sessions (only those beginning after `after`, if given) with their
    entries; how many sessions."""
    statement = select(ChannelGroupSession.id).where(col(ChannelGroupSession.group_pk) == group_pk)
    if after is not None:
        statement = statement.where(col(ChannelGroupSession.begin_at) > after)
    return await _delete_session_pks(db, [pk for pk in (await db.exec(statement)).all() if pk])


async def _delete_session_pks(db: AsyncSession, session_pks: list[int]) -> int:
    if session_pks:
        await db.exec(
            delete(ChannelGroupEntry).where(col(ChannelGroupEntry.session_pk).in_(session_pks))
        )
        await db.exec(
            delete(ChannelGroupSession).where(col(ChannelGroupSession.id).in_(session_pks))
        )
    return len(session_pks)


async def _prune(db: AsyncSession, group_pk: int, now: datetime) -> None:
    """Sessions superseded by a later one that has begun are history: deleted, so that they
    never hold a channel back from deletion."""
    sessions = (
        await db.exec(
            select(ChannelGroupSession).where(
                col(ChannelGroupSession.group_pk) == group_pk,
                col(ChannelGroupSession.begin_at) <= now,
            )
        )
    ).all()
    ordered = sorted(sessions, key=lambda row: (row.begin_at, row.id or 0))
    await _delete_session_pks(db, [row.id for row in ordered[:-1] if row.id is not None])


async def _managed_group(db: AsyncSession, principal: Principal, group_id: str) -> ChannelGroup:
    """The group `group_id` names, if the caller may manage channels of its store; NOT_FOUND
    otherwise (another merchant's, or another store's for a store-bound caller)."""
    pk = pk_of(group_id, "ChannelGroup")
    group = await group_by_pk(db=db, principal=principal, pk=pk) if pk is not None else None
    if group is None or not may_act_on_store(principal, Operation.CHANNEL_MANAGE, group.store_pk):
        raise DomainError.single(UserErrorCode.NOT_FOUND, ID_PATH, GROUP_NOT_FOUND)
    return group


async def _lock_store(db: AsyncSession, store_pk: int) -> None:
    """Serializes group creation per store on PostgreSQL, so the limit holds under
    concurrency (SQLite writes are serialized anyway)."""
    await db.exec(select(Store.id).where(col(Store.id) == store_pk).with_for_update())


def _summary(entries: Sequence[EntryDraft]) -> str:
    return ", ".join(
        f"{entry.channel_id} {entry.weight}%{'' if entry.enabled else ' (disabled)'}"
        for entry in entries
    )


_GROUP_NAME = UniqueName(
    UserErrorCode.CHANNEL_GROUP_NAME_DUPLICATE,
    _("Another channel group of this store has this name."),
)


async def _ensure_name_free(
    db: AsyncSession, store_pk: int, name: str, *, exclude: int | None = None
) -> None:
    statement = select(ChannelGroup.id).where(
        col(ChannelGroup.store_pk) == store_pk, col(ChannelGroup.name) == name
    )
    if exclude is not None:
        statement = statement.where(col(ChannelGroup.id) != exclude)
    await _GROUP_NAME.ensure_free(db, statement)
