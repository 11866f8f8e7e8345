"""The `ejsika` command: run the platform locally, create topics, inspect and replay dead letters, release
quarantined outbox rows."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from pathlib import Path

from ejsika_contracts import TOPICS

from .settings import Settings


def _topics_create(args: argparse.Namespace) -> None:
    from .kafka import create_topics

    settings = Settings()
    created = asyncio.run(create_topics(settings.kafka_bootstrap, args.replication_factor, settings))
    print(f"created {len(created)} topic(s): {', '.join(created) or 'none needed'}")


def _database_roles(args: argparse.Namespace) -> None:
    import os

    from .db_roles import provision, role_name
    from .settings import LOCAL_DATABASE_URL

    # Only the database URL: this runs as the administrator, before (and without) any service's settings.
    admin_url = os.environ.get("EJSIKA_DATABASE_URL") or LOCAL_DATABASE_URL
    variables = {service: f"EJSIKA_DATABASE_PASSWORD_{service.upper()}" for service in args.service}
    if missing := [name for name in variables.values() if not os.environ.get(name)]:
        sys.exit(f"set {', '.join(missing)}: the password of each service's database role")
    asyncio.run(provision(admin_url, {service: os.environ[name] for service, name in variables.items()}))
    for service in args.service:
        print(f"role {role_name(service)} owns schema {service}")


def _dead_letters_list(args: argparse.Namespace) -> None:
    from .dead_letter_tool import read

    settings = Settings()

    async def show() -> int:
        count = 0
        async for letter in read(settings.kafka_bootstrap, args.topic, settings):
            facts = letter.facts
            print(f"{letter.partition}:{letter.offset}\tfrom {facts.get('topic')}[{facts.get('partition')}]"
                  f"@{facts.get('offset')}\tgroup={facts.get('group')}\treason={facts.get('reason')}"
                  f"\tattempts={facts.get('attempts')}\t{facts.get('error')}")
            count += 1
        return count

    print(f"{asyncio.run(show())} dead letter(s) of {args.topic}")


def _dead_letters_replay(args: argparse.Namespace) -> None:
    from .dead_letter_tool import replay

    only = None
    if args.letter:
        only = {tuple(int(part) for part in item.split(":", 1)) for item in args.letter}
    settings = Settings()
    count = asyncio.run(replay(settings.kafka_bootstrap, args.topic, only, settings))
    print(f"replayed {count} dead letter(s) to {args.topic}")


def _dead_letters_forget(args: argparse.Namespace) -> None:
    from .dead_letter_tool import forget

    letters = {tuple(int(part) for part in item.split(":", 1)) for item in args.letter}
    settings = Settings()
    count = asyncio.run(forget(settings.kafka_bootstrap, args.topic, args.service, letters, settings))
    print(f"{args.service} let go of {count} dead letter(s) of {args.topic}; replay the letters parked behind them")


def _schema_name(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise argparse.ArgumentTypeError("a service name: lower-case letters, digits and _")
    return name


def _outbox(args: argparse.Namespace) -> None:
    """List a service's quarantined outbox rows, or release them back to its outbox (relay.release)."""
    import asyncpg

    from .relay import release

    async def act() -> None:
        conn = await asyncpg.connect(Settings().database_url, server_settings={"search_path": args.service})
        try:
            if args.action == "release":
                moved = await release(conn, [int(i) for i in args.id] or None)
                print(f"released {moved} row(s) of {args.service} back to its outbox")
                return
            rows = await conn.fetch(
                "SELECT id, topic, partition, reason, error, quarantined_at, octet_length(value) AS bytes"
                " FROM outbox_quarantine ORDER BY id")
            for row in rows:
                print(f"{row['id']}\t{row['topic']}[{row['partition']}]\t{row['reason']}\t{row['bytes']} bytes"
                      f"\t{row['quarantined_at']:%Y-%m-%d %H:%M:%S%z}\t{row['error']}")
            print(f"{len(rows)} quarantined row(s) in {args.service}")
        finally:
            await conn.close()

    asyncio.run(act())


def _data_subject(args: argparse.Namespace) -> None:
    import getpass
    import json
    import os

    from .subject_access import subject_access

    token = os.environ.get("EJSIKA_TOKEN")
    if not token:
        sys.exit("set EJSIKA_TOKEN to an operator's or auditor's access token")
    # Read from the terminal, not the command line: a NIK in argv is visible to every local user.
    nik = getpass.getpass("NIK: ") if sys.stdin.isatty() else sys.stdin.readline()
    urls = {name: getattr(args, name) for name in ("registry", "monitoring", "eligibility", "notifications")}
    print(json.dumps(asyncio.run(subject_access(nik.strip(), token, urls)), indent=2, default=str))


def _import(args: argparse.Namespace) -> None:
    from .register_upload import main as upload

    upload(args.file, args.registry, args.report)


def _up(args: argparse.Namespace) -> None:
    from .demo.launcher import run_platform

    run_platform(Path(args.state_dir), households=args.demo_households)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ejsika", description="e-JSiKa platform tools")
    commands = top.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="run PostgreSQL, Kafka, the four services and a demo on this machine")
    up.add_argument("--state-dir", default=".ejsika", help="where local data lives (default: .ejsika)")
    up.add_argument("--demo-households", type=int, default=20, help="households the demo registers")
    up.set_defaults(run=_up)

    subject = commands.add_parser(
        "data-subject", help="everything the platform holds on one person (NIK from stdin) and who processed it")
    for name, port in (("registry", 8001), ("monitoring", 8002), ("eligibility", 8003), ("notifications", 8004)):
        subject.add_argument(f"--{name}", default=f"http://127.0.0.1:{port}", help=f"base URL of {name}")
    subject.set_defaults(run=_data_subject)

    upload = commands.add_parser(
        "import", help="import a DTKS-style register file (CSV) into the registry, as an operator (EJSIKA_TOKEN)")
    upload.add_argument("file", help="the register file, UTF-8 CSV (columns: see the README)")
    upload.add_argument("--registry", default="http://127.0.0.1:8001", help="base URL of the registry")
    upload.add_argument("--report", help="write the registry's report (every rejected row) to this JSON file")
    upload.set_defaults(run=_import)

    topics = commands.add_parser("topics", help="Kafka topics of the catalogue").add_subparsers(dest="action", required=True)
    create = topics.add_parser("create", help="create missing topics and dead-letter topics")
    create.add_argument("--replication-factor", type=int, default=1,
                        help="1 for the embedded single broker; 3 in production (min.insync.replicas is then 2)")
    create.set_defaults(run=_topics_create)

    database = commands.add_parser("database", help="PostgreSQL set-up").add_subparsers(dest="action", required=True)
    roles = database.add_parser(
        "roles", help="create or update each service's database role (owning only its schema), as the administrator"
                      " of EJSIKA_DATABASE_URL; passwords from EJSIKA_DATABASE_PASSWORD_<SERVICE>")
    roles.add_argument("service", nargs="*", default=["registry", "monitoring", "eligibility", "notifications"])
    roles.set_defaults(run=_database_roles)

    outbox = commands.add_parser(
        "outbox", help="rows Kafka refused for good (too large, unknown topic): list, release once fixed"
    ).add_subparsers(dest="action", required=True)
    quarantined = outbox.add_parser("quarantine", help="list a service's quarantined outbox rows (never their payload)")
    quarantined.add_argument("service", type=_schema_name, help="the service (its schema): registry, monitoring, …")
    quarantined.set_defaults(run=_outbox)
    freed = outbox.add_parser("release", help="put quarantined rows back at the end of the service's outbox")
    freed.add_argument("service", type=_schema_name, help="the service (its schema)")
    freed.add_argument("id", nargs="*", help="ids of the rows to release (default: all)")
    freed.set_defaults(run=_outbox)

    names = [t.name for t in TOPICS]
    dead = commands.add_parser("dead-letters", help="inspect and replay dead letters").add_subparsers(
        dest="action", required=True
    )
    listing = dead.add_parser("list", help="list the dead letters of a topic")
    listing.add_argument("topic", choices=names)
    listing.set_defaults(run=_dead_letters_list)
    again = dead.add_parser("replay", help="publish dead letters back to their topic")
    again.add_argument("topic", choices=names)
    again.add_argument("letter", nargs="*", help="PARTITION:OFFSET of the letters to replay (default: all)")
    again.set_defaults(run=_dead_letters_replay)
    gone = dead.add_parser("forget", help="give up on dead letters for good in one service, so that the events"
                                          " parked behind them (reason parked_behind) can be replayed")
    gone.add_argument("service", type=_schema_name, help="the consumer's service (its schema)")
    gone.add_argument("topic", choices=names)
    gone.add_argument("letter", nargs="+", help="PARTITION:OFFSET of the letters to give up on")
    gone.set_defaults(run=_dead_letters_forget)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
