"""A statement that fails is logged with its error (gql_api's unexpected-failure logging, the
delivery worker's cycle): the error's text holds the SQL, never the values bound to it (a
webhook attempt's body and signatures, hashes, ciphers)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from sqlalchemy import exc as sa_exc

from db.engine import create_engine, independent_write


async def test_a_failed_statement_shows_none_of_its_values(database_url: str) -> None:
    # given: a table whose second column may not be NULL
    table = Table(
        "failing_rows",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("body", String(200), nullable=False),
        Column("other", String(200), nullable=False),
    )
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.create)

        # when: an insert fails, with a value that must not be shown
        with pytest.raises(sa_exc.IntegrityError) as raised:
            async with independent_write(engine) as conn:
                await conn.execute(insert(table), {"body": "v1,t=ZZ-signature-ZZ", "other": None})
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(table.drop)
        await engine.dispose()

    # then: the error names the statement, not the values
    assert "INSERT INTO failing_rows" in str(raised.value)
    assert "ZZ-signature-ZZ" not in str(raised.value)
