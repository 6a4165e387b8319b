"""The committed schema.graphql is what the service actually serves."""

from pathlib import Path

from gql_api.schema import build_schema
from gql_api.settings import Settings

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_schema_file_is_current() -> None:
    served = build_schema(Settings(introspection_enabled=True)).as_str() + "\n"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == served, (
        "schema.graphql is stale: run `make schema` and commit it"
    )
