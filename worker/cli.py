"""`camlights` — the command line for ops and for the dev stack.

camlights dev                       the whole embedded stack (what `make run` runs)
camlights worker                    a worker (workflows + activities)
camlights api                       the HTTP API
camlights migrate                   apply database migrations
camlights create-key --role ops     create an API key (printed once)
camlights demo                      load a small demo program through the running API
camlights backup [-o FILE]          archive the embedded stack's state (.data/), even while it runs
camlights restore FILE              rebuild .data/ from an archive (the stack stopped)
camlights capacity --partners N     what a program of N partners needs (Temporal, PostgreSQL, processes)
camlights simulate --draft FILE     what-if: the draft policy against the current one (docs/simulator.md)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

from core.settings import get_settings, get_tool_settings
from domain.enums import Role


def _cmd_worker(args) -> int:
    from core import loop
    from worker.main import run_worker

    loop.run(run_worker(get_settings()))  # on uvloop where installed
    return 0


def _cmd_api(args) -> int:
    import uvicorn

    from core.observability import configure_logging

    settings = get_settings()
    configure_logging(settings, "api")  # uvicorn's loggers propagate to it (log_config=None)
    # By name: worker/ never imports api/ (the API is its own process).
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host or settings.api_host,
        port=args.port or settings.api_port,
        log_level="info",
        log_config=None,
        proxy_headers=False,  # the client address is the API's to find (TRUSTED_PROXIES, api/ratelimit.py)
    )
    return 0


def _cmd_migrate(args) -> int:
    from store.migrate import upgrade

    settings = get_tool_settings()
    print(f"applying migrations to {_redact(settings.database_url)} ...", flush=True)
    upgrade(settings.database_url)
    print("database is at the latest schema version")
    return 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


async def _create_key(
    role: Role, cam_id: uuid.UUID | None, partner_id: uuid.UUID | None, label: str, integration: bool = False
) -> str:
    from store.apikeys import create_api_key
    from store.db import make_engine, make_sessionmaker
    from store.models import Cam, Partner

    engine = make_engine(get_tool_settings().database_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            if role == Role.cam and (cam_id is None or await session.get(Cam, cam_id) is None):
                raise SystemExit(f"error: --cam-id must name an existing CAM for a cam key (got {cam_id})")
            if role == Role.partner and (partner_id is None or await session.get(Partner, partner_id) is None):
                raise SystemExit(f"error: --partner-id must name an existing partner (got {partner_id})")
            if integration and role != Role.ops:
                raise SystemExit("error: --integration is for an ops key")
            _, secret = await create_api_key(
                session, role=role, cam_id=cam_id, partner_id=partner_id, label=label, integration=integration
            )
        return secret
    finally:
        await engine.dispose()


def _cmd_create_key(args) -> int:
    secret = asyncio.run(_create_key(Role(args.role), args.cam_id, args.partner_id, args.label, args.integration))
    print(secret)
    print(f"# {args.role} key created; it is shown only now. Use: Authorization: Bearer <key>", file=sys.stderr)
    return 0


def _cmd_rotate_key(args) -> int:
    """A new active payload key; the old ones stay in the ring, so running journeys keep working."""
    from pathlib import Path

    from core.codec import KeyRing, new_key, rotate_file

    settings = get_tool_settings()
    if args.print_only or (settings.payload_keys and args.key_file is None):
        ring = settings.key_ring()
        ring = ring.rotated() if ring else KeyRing(active="k1", keys={"k1": new_key()})
        print(ring.spec())
        print(
            f"# new active key {ring.active!r}: set PAYLOAD_KEYS to the line above (and PAYLOAD_KEY_ACTIVE to "
            f"{ring.active!r} if you set it), then restart every worker and the API",
            file=sys.stderr,
        )
        return 0
    path = Path(args.key_file) if args.key_file else settings.data_dir / "payload-keys"
    ring = rotate_file(path)
    print(f"payload key ring in {path}: {len(ring.keys)} key(s), active {ring.active!r}; restart `make run` to use it")
    return 0


def _cmd_dev(args) -> int:
    import os

    from worker.devstack import run_dev

    # The embedded stack is development (unset, ENVIRONMENT means production): the worker and the API
    # it starts inherit this, with the link secret and key ring it generates under .data/.
    os.environ.setdefault("ENVIRONMENT", "development")
    return run_dev(get_settings())


def _cmd_demo(args) -> int:
    from worker.demo import load_demo

    asyncio.run(load_demo(get_tool_settings()))
    return 0


def _cmd_backup(args) -> int:
    from worker.backup import main_backup

    return main_backup(get_tool_settings(), args.output, args.include_secrets)


def _cmd_restore(args) -> int:
    from worker.backup import main_restore

    return main_restore(get_tool_settings(), args.archive, args.force, args.payload_keys, args.link_secret)


def _cmd_capacity(args) -> int:
    from dataclasses import fields

    from worker.capacity import COSTS_FILE, CostsError, Profile, load_costs, parse_mix, table

    try:
        costs = load_costs(args.costs or COSTS_FILE)
        names = {f.name for f in fields(Profile)} - {"partners"}
        given = {k: v for k, v in vars(args).items() if k in names and v is not None}
        if args.tier_mix:
            given["tier_mix"] = parse_mix(args.tier_mix)
        profiles = [Profile(partners=n, **given) for n in args.partners]
    except (CostsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(table(profiles, costs, markdown=args.markdown))
    return 0


def _cmd_simulate(args) -> int:
    from worker.simulate import run_cli

    return run_cli(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="camlights", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="start the embedded stack (make run)").set_defaults(func=_cmd_dev)
    sub.add_parser("worker", help="run a worker").set_defaults(func=_cmd_worker)
    p = sub.add_parser("api", help="run the HTTP API")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=_cmd_api)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_cmd_migrate)
    p = sub.add_parser("create-key", help="create an API key for a role (printed once)")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--cam-id", type=uuid.UUID)
    p.add_argument("--partner-id", type=uuid.UUID)
    p.add_argument("--label", default="created with camlights create-key")
    p.add_argument("--integration", action="store_true", help="an integration's ops key (e.g. the CRM's)")
    p.set_defaults(func=_cmd_create_key)
    p = sub.add_parser("rotate-key", help="add a new active payload encryption key (older keys keep decrypting)")
    p.add_argument("--key-file", help="the key ring file (default: DATA_DIR/payload-keys, the one make run uses)")
    p.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the new PAYLOAD_KEYS value (from the environment's ring) instead of writing a file",
    )
    p.set_defaults(func=_cmd_rotate_key)
    sub.add_parser("demo", help="load a small demo program through the running API").set_defaults(func=_cmd_demo)
    p = sub.add_parser("backup", help="archive the embedded stack's state (.data/) consistently, even while it runs")
    p.add_argument("-o", "--output", help="the archive to write (default: camlights-backup-<UTC time>.tar.gz here)")
    p.add_argument(
        "--include-secrets",
        "--include-keys",
        dest="include_secrets",
        action="store_true",
        help="also archive the payload keys, link secret and ops key (the archive then decrypts everything)",
    )
    p.set_defaults(func=_cmd_backup)
    p = sub.add_parser("restore", help="rebuild the data directory from a backup (stop the stack first)")
    p.add_argument("archive", help="a file written by camlights backup")
    p.add_argument("--force", action="store_true", help="replace a non-empty data directory (moved aside, kept)")
    p.add_argument("--payload-keys", help="the key ring file kept from the backed-up stack (its .data/payload-keys)")
    p.add_argument("--link-secret", help="the link secret file kept from the backed-up stack (its .data/link-secret)")
    p.set_defaults(func=_cmd_restore)
    p = sub.add_parser("capacity", help="what a program of N partners needs (from the bench's journey costs)")
    p.add_argument("--partners", type=int, nargs="+", required=True, help="program size(s): one column each")
    p.add_argument("--tier-mix", help="e.g. platinum=2,gold=8,silver=25,registered=65 (default: the bench's mix)")
    p.add_argument("--deals-per-partner-year", type=float)
    p.add_argument("--certs-per-partner", type=float)
    p.add_argument("--mdf-requests-per-partner-year", type=float)
    p.add_argument("--new-partners-share-per-year", type=float, help="onboardings a year / partners (default 0.2)")
    p.add_argument("--retention-days", type=float, help="closed workflow history retention (default 30)")
    p.add_argument("--jitter-hours", type=float, help="spread each calendar firing over this many hours (default 0)")
    p.add_argument("--api-requests-per-partner-day", type=float)
    p.add_argument("--busy-hours-per-day", type=float)
    p.add_argument("--utilisation", type=float, help="size processes to be at most this busy (default 0.7)")
    p.add_argument("--costs", help="journey costs file (default bench/journey_costs.json)")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(func=_cmd_capacity)
    p = sub.add_parser("simulate", help="what-if: a draft policy against the current one, on throw-away servers")
    p.add_argument("--draft", required=True, help="the draft policy (JSON, as PUT /policy takes it)")
    p.add_argument("--current", help="the current policy (JSON; default: the live program's, else the defaults)")
    p.add_argument("--partners", type=int, default=20, help="sample size (default 20)")
    p.add_argument("--months", type=int, default=12, help="horizon in months (default 12)")
    p.add_argument("--seed", type=int, default=1, help="the sample's seed (the same for both runs)")
    p.add_argument("--json", dest="json_out", help="also write the report as JSON to this file")
    p.set_defaults(func=_cmd_simulate)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
