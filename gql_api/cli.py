"""Command line: `integration-api serve | migrate | export-schema | check-config |
create-merchant`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError


def _serve(_: argparse.Namespace) -> int:
    import uvicorn

    from gql_api.logs import configure_logging
    from gql_api.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        "gql_api.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,  # gql_api.access logs one JSON line per request instead
        # The app applies FORWARDED_ALLOW_IPS itself (gql_api.app), so tests see the same rule.
        proxy_headers=False,
    )
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from db.migrate import upgrade
    from gql_api.settings import get_settings

    upgrade(get_settings().database_url)
    return 0


def _export_schema(args: argparse.Namespace) -> int:
    from gql_api.schema import build_schema
    from gql_api.settings import Settings

    sdl = build_schema(Settings(introspection_enabled=True)).as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl, encoding="utf-8")
    return 0


def _create_merchant(args: argparse.Namespace) -> int:
    """Sign a merchant up without GraphQL (for operators); the password comes from stdin."""
    import asyncio
    import getpass

    from db.engine import Tx
    from gql_api.accounts import service
    from gql_api.app import create_state
    from gql_api.errors import DomainError
    from gql_api.mutations import run_unit
    from gql_api.settings import get_settings

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Owner password: ")

    async def run() -> int:
        state = create_state(get_settings())
        try:
            async with state.session_factory() as db:

                async def sign_up(tx: Tx) -> service.SignUp:
                    return await service.sign_up(
                        tx=tx,
                        hashing=state.hashing,
                        settings=state.settings,
                        merchant_name=args.merchant_name,
                        email=args.email,
                        password=password,
                        name=args.name,
                    )

                try:
                    signed = await run_unit(db, state.engine, sign_up)
                except DomainError as error:
                    for problem in error.errors:
                        field = ".".join(problem.field or ())
                        print(f"{problem.code.value} {field}: {problem.message}", file=sys.stderr)
                    return 1
                print(f"merchant: {signed.merchant.name}")
                print(f"owner: {signed.session.user.email}")
                print(f"representative storeId: {signed.store.store_id}")
                return 0
        finally:
            await state.engine.dispose()

    return asyncio.run(run())


def _check_config(_: argparse.Namespace) -> int:
    from gql_api.settings import Settings

    try:
        settings = Settings()
    except ValidationError as error:
        print(f"configuration is invalid:\n{error}", file=sys.stderr)
        return 1
    safe = settings.model_dump(exclude={"encryption_keys", "database_url"})
    safe["encryption_keys"] = f"{len(settings.encryption_keys)} key(s)"
    for key, value in safe.items():
        print(f"{key.upper()}={value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="integration-api", description="Integration-management GraphQL API"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API with uvicorn on HOST:PORT").set_defaults(
        run=_serve
    )
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)
    export = commands.add_parser("export-schema", help="print or write the GraphQL SDL")
    export.add_argument("--output", default="-", help="file to write, or - for stdout")
    export.set_defaults(run=_export_schema)
    commands.add_parser("check-config", help="validate settings from the environment").set_defaults(
        run=_check_config
    )
    create = commands.add_parser(
        "create-merchant", help="sign a merchant up (merchant, 대표상점, OWNER) without GraphQL"
    )
    create.add_argument("--merchant-name", required=True)
    create.add_argument("--email", required=True, help="the owner's email")
    create.add_argument("--name", required=True, help="the owner's name")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    create.set_defaults(run=_create_merchant)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
