"""DriverQuery rows are read by column name: a record's fields are filled from the columns of
the same names, whatever their order, so adding a column cannot shift the others."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, Table, literal, select

from db.driver_query import DriverQuery
from db.engine import create_engine


class Pair(NamedTuple):
    left: int
    right: str


async def test_a_record_is_filled_by_column_name(database_url: str) -> None:
    # given: the columns in another order than the record's fields, and one more
    query = DriverQuery(
        select(literal("R").label("right"), literal(1).label("left")),
        Pair,
    )
    unnamed = DriverQuery(select(literal(7), literal(8).label("eight")))
    engine = create_engine(database_url)

    # when
    try:
        found = await query.first(engine)
        row = await unnamed.first(engine)
    finally:
        await engine.dispose()

    # then
    assert found == Pair(left=1, right="R")
    assert row is not None and row == (7, 8) and row.eight == 8


def test_a_record_without_a_column_for_each_field_is_refused() -> None:
    with pytest.raises(ValueError, match="label the columns"):
        DriverQuery(select(literal(1).label("left"), literal(2).label("middle")), Pair)


async def test_json_columns_read_back_what_was_written(database_url: str) -> None:
    """JSON columns are decoded with orjson where it reads as json.loads does (db.engine)."""
    # given: documents json.dumps writes, integers orjson alone would read as floats
    documents = [
        {"cipher": "gAAAAABm", "masked": "••••1234"},
        {"amount": 2**70, "negative": -(2**66)},
        {"low": -(2**63) - 1},  # 19 digits, alone in its document
        {"high": 2**64},
        [1.5, None, True, "한국어"],
    ]
    table = Table("json_documents", MetaData(), Column("id", Integer, primary_key=True))
    table.append_column(Column("doc", JSON))
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.create)
            await conn.execute(table.insert(), [{"doc": d} for d in documents])

        # when
        async with engine.connect() as conn:
            found = [row.doc for row in await conn.execute(select(table).order_by(table.c.id))]
        fast = await DriverQuery(select(table.c.doc).order_by(table.c.id)).all(engine)
        async with engine.begin() as conn:
            await conn.run_sync(table.drop)
    finally:
        await engine.dispose()

    # then
    assert found == documents
    assert [row.doc for row in fast] == documents
    assert isinstance(found[1]["amount"], int)
