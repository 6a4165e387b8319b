"""Command line: `integration-api serve | worker | migrate | export-schema | check-config |
generate-key | persisted-queries | create-merchant | event publish`.

Every command that reads settings validates all of them first (gql_api.config_check) and,
when it uses the database, checks that it answers (and is migrated) before doing anything:
a problem is one line naming the variable, and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from gql_api.config_check import (
    ConfigurationError,
    check_database,
    effective_values,
    load_settings,
    settings_read_by,
    warnings,
)

EXIT_OK = 0
EXIT_FAILED = 1  # the operation itself failed (e.g. the email is taken)
EXIT_USAGE = 2  # a usage or configuration error, as argparse uses it for a bad option


def _serve(args: argparse.Namespace) -> int:
    """Serve on HOST:PORT, in one process or (--workers N, WEB_CONCURRENCY) N worker processes
    sharing the port, each set up like one process (JSON logs, request ids, settings from the
    same environment), with one metrics view over all of them (gql_api.metrics)."""
    import uvicorn

    from gql_api.logs import configure_logging, logging_config

    settings = load_settings()
    # Checked here, before uvicorn starts: a wrong URL is one line, not a traceback per worker.
    check_database(settings, migrated=True)
    configure_logging(settings.log_level)
    workers = args.workers or settings.web_concurrency
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        # uvicorn applies it in every worker process it spawns, and in this one.
        "log_config": logging_config(settings.log_level),
        "access_log": False,  # gql_api.access logs one JSON line per request instead
        # The app applies FORWARDED_ALLOW_IPS itself (gql_api.app), so tests see the same rule.
        "proxy_headers": False,
        "timeout_keep_alive": settings.keepalive_timeout_seconds,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }
    from gql_api.metrics import MULTIPROCESS_DIR_ENV

    if workers == 1 and not os.environ.get(MULTIPROCESS_DIR_ENV):
        uvicorn.run("gql_api.app:create_app", factory=True, **options)
        return 0
    from gql_api.app import SUPERVISOR_PID_ENV

    os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())  # the workers inherit it
    with _metrics_directory_of_this_run():
        from gql_api.metrics import all_processes_registry
        from gql_api.metrics_access import metrics_listener

        # The workers cannot all listen on METRICS_PORT: this process serves it for them.
        with metrics_listener(settings, all_processes_registry()):
            uvicorn.run("gql_api.app:create_worker_app", factory=True, workers=workers, **options)
    return 0


@contextmanager
def _metrics_directory_of_this_run() -> Iterator[None]:
    """A new, empty PROMETHEUS_MULTIPROC_DIR for the workers about to be spawned (they inherit
    the environment), removed afterwards: inside the operator's PROMETHEUS_MULTIPROC_DIR when
    set (other processes' files there are left alone), else in the temporary folder. The
    client library requires a directory that no earlier run has written to."""
    import shutil
    import tempfile

    from gql_api.metrics import MULTIPROCESS_DIR_ENV

    given = os.environ.get(MULTIPROCESS_DIR_ENV) or None
    if given is not None:
        Path(given).mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f"integration-api-serve-{os.getpid()}-", dir=given)
    os.environ[MULTIPROCESS_DIR_ENV] = folder
    try:
        yield
    finally:
        if given is None:
            del os.environ[MULTIPROCESS_DIR_ENV]
        else:
            os.environ[MULTIPROCESS_DIR_ENV] = given
        shutil.rmtree(folder, ignore_errors=True)


def _migrate(_: argparse.Namespace) -> int:
    from db.migrate import upgrade

    settings = load_settings()
    check_database(settings, migrated=False)  # reachable; migrating is what this does
    upgrade(settings.database_url)
    return 0


def _export_schema(args: argparse.Namespace) -> int:
    from gql_api.schema import build_schema

    settings = load_settings().model_copy(update={"introspection_enabled": True})
    sdl = build_schema(settings).as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        Path(args.output).write_text(sdl, encoding="utf-8")
    return 0


def _create_merchant(args: argparse.Namespace) -> int:
    """Sign a merchant up without GraphQL (for operators). The password is read from standard
    input when that is not a terminal (a pipe, a file, a script), else asked for without echo;
    the settings and the database are checked first, so no one types a password for nothing."""
    import asyncio

    from db.engine import Tx
    from gql_api.accounts import service
    from gql_api.app import create_state
    from gql_api.errors import DomainError
    from gql_api.mutations import run_unit

    settings = load_settings()
    check_database(settings, migrated=True)
    try:
        password = _owner_password(from_stdin=args.password_stdin)
        password.encode("utf-8")  # undecodable input arrives as lone surrogates
    except UnicodeError:
        print(
            "create-merchant: the password is not UTF-8 text; write it in UTF-8",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not password:
        print(
            "create-merchant: the password is empty; write it on standard input (one line) "
            "or run the command in a terminal to be asked for it",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def run() -> int:
        state = create_state(settings)
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


def _owner_password(*, from_stdin: bool) -> str:
    """The first line of standard input, unless it is a terminal (and --password-stdin was
    not given): then getpass asks. "" when nothing was given (end of input)."""
    import getpass

    stdin = sys.stdin
    if stdin is None:  # started with standard input closed
        return ""
    if from_stdin or not stdin.isatty():
        # A line ends in \n, or \r\n when written on Windows: neither is part of the password.
        return stdin.readline().rstrip("\r\n")
    try:
        return getpass.getpass("Owner password: ")
    except EOFError:  # Ctrl-D at the prompt
        return ""


def _run_on_the_servers_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on the event loop `serve` runs on: uvicorn (loop "auto") takes uvloop where
    it is installed, so `worker` does too. The worker serve embeds and a separate one then run
    alike, and a separate one's delivery cycle costs about 3 % less CPU."""
    import asyncio

    try:
        import uvloop
    except ImportError:  # not installed on this platform (uvicorn falls back the same way)
        return asyncio.run(main)
    return uvloop.run(main)


def _worker(args: argparse.Namespace) -> int:
    """Deliver webhook events until SIGTERM or SIGINT (then finish or release what is held)."""
    import asyncio
    import signal

    from gql_api.app import create_state
    from gql_api.logs import configure_logging
    from gql_api.metrics import forget_this_process
    from gql_api.metrics_access import metrics_listener
    from gql_api.webhooks.worker import Worker, WorkerConfig

    settings = load_settings()
    check_database(settings, migrated=True)
    configure_logging(settings.log_level)

    async def run() -> int:
        state = create_state(settings)
        worker = Worker(
            engine=state.engine,
            session_factory=state.session_factory,
            encryptor=state.encryptor,
            metrics=state.metrics,
            config=WorkerConfig.from_settings(settings),
        )
        try:
            if args.once:
                made = await worker.deliver_due()
                print(f"{made} attempt(s) made")
                return 0
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, worker.stop)
            with metrics_listener(settings, state.metrics.exposition_registry()):
                await worker.run()
            return 0
        finally:
            await state.engine.dispose()
            forget_this_process()

    return _run_on_the_servers_loop(run())


def _publish_event(args: argparse.Namespace) -> int:
    """Publish one webhook event as the payment core would (POST /internal/events)."""
    import asyncio
    import json
    import uuid

    from cross_web import HTTPException

    from gql_api.app import create_state
    from gql_api.errors import DomainError
    from gql_api.webhooks import outbox
    from gql_api.webhooks.events import check_event
    from gql_api.webhooks.intake import publish_event

    try:
        data = _event_data(args.data)
    except HTTPException as refused:
        print(f"INVALID_INPUT data: {refused.reason}", file=sys.stderr)
        return 2
    body = {
        "id": args.id or f"evt-{uuid.uuid4()}",
        "storeId": args.store,
        "moduleVersion": args.module_version,
        "mode": args.mode,
        "type": args.type,
        "data": data,
    }
    try:
        event = check_event(body)
    except DomainError as error:
        for problem in error.errors:
            print(
                f"{problem.code.value} {'.'.join(problem.field or ())}: {problem.message}",
                file=sys.stderr,
            )
        return 2

    settings = load_settings()
    check_database(settings, migrated=True)

    async def run() -> int:
        state = create_state(settings)
        try:
            answer = await publish_event(state, event)
        except outbox.StoreNotFound:
            print("NOT_FOUND storeId: No store with this storeId.", file=sys.stderr)
            return 1
        finally:
            await state.engine.dispose()
        print(json.dumps(answer.as_json(), ensure_ascii=False))
        return 0

    return asyncio.run(run())


def _event_data(text: str) -> object:
    """--data read as POST /internal/events reads its body (gql_api.request_json): refused, with
    the endpoint's reason, are NaN and Infinity, numbers beyond a double, lone surrogates, NUL
    and nesting too deep, so that what check_event accepts can be stored on either database."""
    from cross_web import HTTPException

    from gql_api.request_json import NotAnObjectError, decode_request_json

    try:
        return decode_request_json(text)
    except NotAnObjectError:  # its reason speaks of GraphQL
        raise HTTPException(400, "data must be a JSON object.") from None


def _persisted_queries_add(args: argparse.Namespace) -> int:
    """Register trusted documents (gql_api.persisted_queries): all of them, or none when one
    does not parse or validate against the schema. Each file is one document, hashed exactly
    as written (the text a client sends); prints `<sha256>  <file>` per file."""
    import asyncio

    from gql_api import persisted_queries
    from gql_api.schema import build_schema

    settings = load_settings()
    check_database(settings, migrated=True)
    schema = build_schema(settings)._schema
    documents: list[str] = []
    refused = False
    for name in args.files:
        # Bytes, decoded as they are: read_text would turn CRLF into LF, and the hash would
        # no longer be that of the text a client sends.
        try:
            content = Path(name).read_bytes()
        except OSError as error:
            print(f"{name}: cannot read it: {error}", file=sys.stderr)
            refused = True
            continue
        try:
            document = content.decode("utf-8")
        except UnicodeDecodeError as error:
            print(
                f"{name}: not UTF-8 (byte {error.start}): a document is hashed as UTF-8, "
                "save the file in that encoding",
                file=sys.stderr,
            )
            refused = True
            continue
        for problem in persisted_queries.document_problems(schema, document):
            print(f"{name}: {problem}", file=sys.stderr)
            refused = True
        documents.append(document)
    if refused:
        print("nothing registered", file=sys.stderr)
        return 1

    async def run() -> list[str]:
        from db.engine import create_engine

        engine = create_engine(settings.database_url)
        try:
            return await persisted_queries.register_trusted(engine=engine, documents=documents)
        finally:
            await engine.dispose()

    for sha, name in zip(asyncio.run(run()), args.files, strict=True):
        print(f"{sha}  {name}")
    return 0


def _persisted_queries_list(_: argparse.Namespace) -> int:
    """Print `<sha256>  <operation names>` for every trusted document."""
    import asyncio

    from graphql import OperationDefinitionNode, parse

    from db.engine import create_engine
    from gql_api import persisted_queries

    settings = load_settings()
    check_database(settings, migrated=True)

    async def run() -> list[tuple[str, str]]:
        engine = create_engine(settings.database_url)
        try:
            return await persisted_queries.trusted_hashes(engine=engine)
        finally:
            await engine.dispose()

    for sha, document in asyncio.run(run()):
        names = [
            definition.name.value if definition.name else "(anonymous)"
            for definition in parse(document, no_location=True).definitions
            if isinstance(definition, OperationDefinitionNode)
        ]
        print(f"{sha}  {' '.join(names)}")
    return 0


def _generate_key(_: argparse.Namespace) -> int:
    """Print a new encryption key for ENCRYPTION_KEYS (32 random bytes, URL-safe base64)."""
    from gql_api.security.encryption import new_key

    print(new_key())
    return 0


def _check_config(args: argparse.Namespace) -> int:
    """Print every setting in effect (secrets masked), `NAME=value`; with --connect, also
    connect to the database and require it migrated."""
    settings = load_settings()
    for name, value in effective_values(settings):
        print(f"{name}={value}")
    for warning in warnings(settings):
        print(warning, file=sys.stderr)
    if args.connect:
        state = check_database(settings, migrated=True)
        print(f"database: reachable, migrated to {', '.join(state.current)} (the newest)")
    return EXIT_OK


def _worker_count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError("a whole number from 1 to 64")
    return int(text)


EXIT_CODES = f"""exit codes:
  {EXIT_OK}  done
  {EXIT_FAILED}  the operation failed (e.g. create-merchant: the email is taken)
  {EXIT_USAGE}  usage or configuration error: a bad option, an invalid setting, the database
     unreachable or not migrated (one line each on standard error, naming the variable)

Settings come from environment variables (and a .env file in the working folder);
`integration-api check-config` prints every one in effect."""


def _environment(command: str) -> str:
    """The epilog of `command --help`: the variables it acts on (gql_api.config_check, derived
    from the Settings fields), and that every setting is validated first."""
    names = settings_read_by(command)
    if command == "generate-key":
        return "environment: reads no environment variable."
    listed = textwrap.fill(
        ", ".join(names) if names else "none beyond validating them",
        width=88,
        initial_indent="  ",
        subsequent_indent="  ",
    )
    return (
        f"environment variables:\n{listed}\n"
        "Every setting is validated first (see `integration-api check-config`): an invalid "
        f"one,\nor a database that does not answer, stops the command with exit code {EXIT_USAGE}."
    )


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name.rsplit(" ", 1)[-1],
        help=help_text,
        description=help_text,
        epilog=_environment(name),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _version() -> str:
    try:
        return version("integration-api")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="integration-api",
        description="Integration-management GraphQL API",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = _command(commands, "serve", "serve the API with uvicorn on HOST:PORT")
    serve.add_argument(
        "--workers",
        type=_worker_count,
        help="worker processes sharing the port (default: WEB_CONCURRENCY, else 1)",
    )
    serve.set_defaults(run=_serve)
    worker = _command(
        commands,
        "worker",
        "deliver webhook events (any number of workers may share PostgreSQL)",
    )
    worker.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    worker.set_defaults(run=_worker)
    _command(commands, "migrate", "apply database migrations").set_defaults(run=_migrate)
    event = commands.add_parser("event", help="webhook events").add_subparsers(
        dest="event_command", required=True
    )
    publish = _command(
        event, "event publish", "publish a webhook event for a store, as the payment core does"
    )
    publish.add_argument("--store", required=True, help="the storeId (store-…)")
    publish.add_argument("--mode", required=True, choices=["LIVE", "TEST"])
    publish.add_argument("--module-version", required=True, choices=["V1", "V2"])
    publish.add_argument("--type", required=True, help="e.g. Transaction.Paid (V1: paid, …)")
    publish.add_argument("--data", required=True, help='JSON object, e.g. \'{"paymentId": "…"}\'')
    publish.add_argument(
        "--id", help="the publisher's event id (idempotency key); default: a new evt-<uuid>"
    )
    publish.set_defaults(run=_publish_event)
    export = _command(commands, "export-schema", "print or write the GraphQL SDL")
    export.add_argument("--output", default="-", help="file to write, or - for stdout")
    export.set_defaults(run=_export_schema)
    check = _command(
        commands,
        "check-config",
        "validate the settings and print every value in effect, NAME=value (secrets masked)",
    )
    check.add_argument(
        "--connect",
        action="store_true",
        help="also connect to DATABASE_URL and check it is migrated to this release",
    )
    check.set_defaults(run=_check_config)
    _command(
        commands, "generate-key", "print a new ENCRYPTION_KEYS key (put it first to rotate)"
    ).set_defaults(run=_generate_key)
    persisted = commands.add_parser(
        "persisted-queries", help="trusted documents (PERSISTED_QUERIES_ONLY)"
    ).add_subparsers(dest="persisted_command", required=True)
    persisted_add = _command(
        persisted,
        "persisted-queries add",
        "register GraphQL documents as trusted, one per file; prints their sha256",
    )
    persisted_add.add_argument("files", nargs="+", metavar="FILE")
    persisted_add.set_defaults(run=_persisted_queries_add)
    _command(
        persisted, "persisted-queries list", "print the trusted documents' sha256"
    ).set_defaults(run=_persisted_queries_list)
    create = _command(
        commands,
        "create-merchant",
        "sign a merchant up (merchant, 대표상점, OWNER) without GraphQL; the owner's password "
        "is read from standard input when it is not a terminal, else asked for",
    )
    create.add_argument("--merchant-name", required=True)
    create.add_argument("--email", required=True, help="the owner's email")
    create.add_argument("--name", required=True, help="the owner's name")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input even when it is a terminal",
    )
    create.set_defaults(run=_create_merchant)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.run not in (_serve, _worker):
        # One-off commands record nothing worth a scrape: no metrics files of theirs.
        from gql_api.metrics import MULTIPROCESS_DIR_ENV

        os.environ.pop(MULTIPROCESS_DIR_ENV, None)
    try:
        return int(args.run(args))
    except ConfigurationError as error:
        for line in error.lines:
            print(line, file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
