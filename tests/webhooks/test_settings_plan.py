"""The settings in force for a batch of events (gql_api.webhooks.outbox.settings_in_force, read
in the delivery worker's cycle and in a publish about to be SKIPPED, both short write
transactions whose statements run on the event loop's thread) find a merchant's
representative store by the partial index of representative stores, not by reading every
store of the merchant (SQLite matched `is_representative = 1` to no index: 11-13 ms per
statement for a merchant with 50,000 stores)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy.dialects import sqlite

from gql_api.webhooks import outbox


def test_the_representative_store_is_found_by_its_partial_index(sqlite_template: Path) -> None:
    # SQLite's planner, on the migrated template (EXPLAIN changes nothing): once, not per backend.
    statement = str(
        outbox._STORES_AND_SETTINGS.statement.params(pks=[1, 2]).compile(
            dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
        )
    )
    with sqlite3.connect(sqlite_template) as connection:
        plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}")]

    assert any("uq_stores_one_representative" in step for step in plan), plan
    assert not any("ix_stores_merchant_id" in step for step in plan), plan
