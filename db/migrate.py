"""Apply Alembic migrations programmatically (used by the CLI, `make migrate` and tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from db.engine import PoolOptions, create_engine

ROOT = Path(__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("path_separator", "os")
    config.attributes["database_url"] = database_url
    return config


def ensure_sqlite_folder(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def upgrade(database_url: str, revision: str = "head") -> None:
    ensure_sqlite_folder(database_url)
    command.upgrade(alembic_config(database_url), revision)


@dataclass(frozen=True)
class SchemaState:
    """Where a database's schema stands against this code's migrations."""

    current: tuple[str, ...]  # revisions the database is stamped with; empty: never migrated
    heads: tuple[str, ...]  # the newest revisions this code knows
    known: frozenset[str]  # every revision this code knows

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.heads)

    @property
    def ahead(self) -> bool:
        """Stamped with a revision this code does not know (a newer release migrated it)."""
        return any(revision not in self.known for revision in self.current)


async def schema_state(database_url: str) -> SchemaState:
    """Connect once and read the revision the database is migrated to, for `check-config
    --connect` and the commands that check before they start. Raises what connecting raises
    (the caller words it). A SQLite file that does not exist is reported as never migrated
    without connecting: connecting would create it."""
    script = ScriptDirectory.from_config(alembic_config(database_url))
    heads = tuple(script.get_heads())
    known = frozenset(revision.revision for revision in script.walk_revisions())
    if _missing_sqlite_file(database_url):
        return SchemaState(current=(), heads=heads, known=known)
    engine = create_engine(database_url, pool=PoolOptions(size=1, max_overflow=0))
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(
                lambda sync: tuple(MigrationContext.configure(sync).get_current_heads())
            )
    finally:
        await engine.dispose()
    return SchemaState(current=current, heads=heads, known=known)


def _missing_sqlite_file(database_url: str) -> bool:
    url = make_url(database_url)
    return url.get_backend_name() == "sqlite" and not Path(url.database or "").expanduser().exists()
