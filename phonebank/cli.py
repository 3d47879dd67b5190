"""``phonebank`` — the command line for ops staff, organisers and drills."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from phonebank import log as logconf
from phonebank.settings import Settings


def _runtime(settings: Settings) -> Any:
    from phonebank.asterisk import AsteriskRuntime

    return AsteriskRuntime.provision(settings)


def cmd_asterisk(args: argparse.Namespace, settings: Settings) -> int:
    rt = _runtime(settings)
    if args.action == "up":
        rt.up()
        if not rt.host_path(f"{rt.inst}/etc/pb_sim_numbers.conf").read_text().startswith("; rendered"):
            from phonebank import sim

            sim.load(rt, [], reload=True)
        print(rt.status())
    elif args.action == "render":
        # systemd's ExecStartPre (deploy/systemd/phonebank-asterisk.service): the config, not the process.
        rt.render_config()
    elif args.action == "wait":
        # systemd's ExecStartPost: the unit is ready once ARI answers.
        rt.wait_ari(args.timeout)
    elif args.action == "down":
        rt.down()
        print(f"instance {settings.instance}: stopped")
    elif args.action == "status":
        print(rt.status())
        return 0 if rt.running() else 3
    elif args.action == "cli":
        if args.command:
            print(rt.cli(" ".join(args.command)), end="")
        else:
            import os

            cmd = rt.command("-r")
            os.execvp(cmd[0], cmd)
    return 0


def cmd_campaign(args: argparse.Namespace, settings: Settings) -> int:
    from store.db import Store, StoreError

    store = Store(settings.db_path)
    if args.action == "create":
        fields: dict[str, Any] = {
            "org_name": args.org or args.name,
            "callback_number": args.callback or "",
            "caller_id": args.caller_id or "",
        }
        for key in ("max_attempts", "ring_timeout_s", "wrapup_limit_s", "dial_ratio"):
            value = getattr(args, key)
            if value is not None:
                fields[key] = value
        if args.voicemail:
            fields["machine_action"] = "voicemail"
            fields["voicemail_media"] = args.voicemail
        try:
            campaign = store.create_campaign(args.name, **fields)
        except StoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps({"id": campaign["id"], "name": campaign["name"]}))
    elif args.action == "list":
        for row in store.campaigns():
            print(json.dumps({k: row[k] for k in ("id", "name", "status", "dial_mode", "dial_ratio")}))
    elif args.action == "stats":
        print(json.dumps(store.campaign_stats(args.id), indent=2))
    return 0


def cmd_contacts(args: argparse.Namespace, settings: Settings) -> int:
    """The panel's importer without the screen: the columns as the panel would guess them (printed), the same
    per-row report (on stderr), all rows or none unless --skip-bad-rows."""
    from store import efforts as ef
    from store.contacts import MAP_CHOICES, FileRefused, check_list, csv_headers, guess_mapping, table_text
    from store.db import Store, StoreError

    store = Store(settings.db_path)
    if store.campaign(args.campaign) is None:
        print(f"error: no campaign {args.campaign}", file=sys.stderr)
        return 2
    try:
        text = table_text(Path(args.file).read_bytes())
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    except FileRefused as exc:
        print(f"error: {args.file}: {exc}", file=sys.stderr)
        return 2
    headers = csv_headers(text)
    mapping = guess_mapping(headers)
    print(
        f"{args.file}: columns: "
        + "; ".join(f"{h or '(no name)'} = {MAP_CHOICES[m]}" for h, m in zip(headers, mapping, strict=True)),
        file=sys.stderr,
    )
    report = check_list(text, mapping, ef.existing_people(store, args.campaign), region=args.region)
    for problem in report.problems:
        print(f"error: {args.file}: {problem}", file=sys.stderr)
    if report.problems:
        if "phone" not in mapping or not {"first_name", "last_name"} & set(mapping):
            # No screen to choose columns on: say which header names are recognised.
            print(
                "hint: name the columns in the header row, e.g. "
                + ", ".join(HEADER_EXAMPLES)
                + " (docs/OPERATIONS.md lists them all)",
                file=sys.stderr,
            )
        return 2
    for err in report.errors:
        print(f"{args.file}:{err.line}: {err.reason}" + (f" ({err.name})" if err.name else ""), file=sys.stderr)
    for note in report.notes:
        print(
            f"{args.file}:{note.line}: note: {note.reason}" + (f" ({note.name})" if note.name else ""), file=sys.stderr
        )
    if report.errors and not args.skip_bad_rows:
        print(f"error: {len(report.errors)} bad rows, nothing imported (fix them, or --skip-bad-rows)", file=sys.stderr)
        return 2
    try:
        n = ef.import_list(store, args.campaign, report, skip_bad=args.skip_bad_rows)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"imported": n, "rejected": len(report.errors)}))
    return 0


HEADER_EXAMPLES = ("First Name", "Last Name", "Phone", "Home Phone", "Cell Phone", "Voter File VANID")


def cmd_sim(args: argparse.Namespace, settings: Settings) -> int:
    from phonebank import sim

    rt = _runtime(settings)
    if args.action == "load":
        numbers = sim.read_csv(Path(args.file).read_text())
        sim.load(rt, numbers)
        print(json.dumps({"loaded": len(numbers)}))
    elif args.action == "demo":
        numbers = sim.demo_network(args.count, seed=args.seed)
        Path(args.out).write_text(sim.write_csv(numbers))
        print(json.dumps({"written": str(args.out), "numbers": len(numbers)}))
    return 0


def cmd_drill(args: argparse.Namespace, settings: Settings) -> int:
    from bridge.ari import AriClient
    from callin import drill

    rt = _runtime(settings)
    user, password = settings.ari_credentials()

    async def go() -> drill.Drill:
        async with AriClient(rt.ari_url(), user, password, settings.app) as ari:
            return await drill.volunteer(ari, rt, args.code, stay_s=args.stay)

    d = asyncio.run(go())
    print(json.dumps({"drill_id": d.drill_id, "channel_id": d.channel_id, "heard_wav": str(d.heard_wav)}))
    return 0


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    import getpass
    import os

    from store import users as u
    from store.db import Store, StoreError

    store = Store(settings.db_path)
    if args.action == "list":
        for row in u.users(store):
            print(json.dumps({k: row[k] for k in ("id", "username", "name", "role", "expires_at", "disabled")}))
        return 0
    if not args.username:
        print("error: --username is required", file=sys.stderr)
        return 2
    # The password comes from the environment or the terminal, never the command line (shell history).
    password = os.environ.get("PHONEBANK_NEW_PASSWORD") or getpass.getpass(f"password for {args.username}: ")
    try:
        user = u.create_user(store, args.username, password, args.role, name=args.name or "", email=args.email or "")
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"id": user["id"], "username": user["username"], "role": user["role"]}))
    return 0


def cmd_screenshots(args: argparse.Namespace, settings: Settings) -> int:
    from phonebank import screenshots

    return asyncio.run(screenshots.main(Path(args.out)))


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from phonebank.service import serve

    rt = _runtime(settings)
    asyncio.run(serve(settings, rt, Path(args.ready_file) if args.ready_file else None))
    return 0


def _places(settings: Settings) -> Any:
    """The data and instance directories, without provisioning Asterisk (a backup must not start a debootstrap)."""
    from phonebank.asterisk import MIN_SYSTEM_MAJOR, _system_asterisk_major
    from phonebank.backup import Places

    major = _system_asterisk_major() if settings.asterisk_mode != "chroot" else None
    root = Path("/") if major is not None and major >= MIN_SYSTEM_MAJOR else settings.cache_dir / "asterisk-sid"
    return Places(settings.data_dir, root / "var/lib/phonebank" / settings.instance, settings.instance)


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from phonebank.backup import BackupError, backup

    try:
        manifest = backup(_places(settings), Path(args.dest))
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"backup": str(args.dest), **manifest}))
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from phonebank.backup import BackupError, restore

    try:
        manifest = restore(_places(settings), Path(args.src), force=args.force)
    except (BackupError, OSError, sqlite3.Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"restored": str(args.src), "tables": manifest["tables"]}))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from phonebank import demo

    return demo.main(settings, _runtime(settings), count=args.contacts)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="phonebank", description=__doc__)
    p.add_argument("--data", help="data directory (default: $PHONEBANK_DATA or ./data)")
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("asterisk", help="provision and run the PBX")
    a.add_argument(
        "action",
        choices=["up", "down", "status", "cli", "render", "wait"],
        help="render: write the config only; wait: until ARI answers (both for systemd)",
    )
    a.add_argument("--timeout", type=float, default=60.0, help="for wait: seconds")
    a.add_argument("command", nargs="*", help="for cli: a CLI command to run (else an interactive console)")
    a.set_defaults(func=cmd_asterisk)

    c = sub.add_parser("campaign", help="create and inspect campaigns")
    c.add_argument("action", choices=["create", "list", "stats"])
    c.add_argument("--name", default="")
    c.add_argument("--id", type=int, default=0)
    c.add_argument("--org")
    c.add_argument("--callback", help="call-back number spoken in the abandon message")
    c.add_argument("--caller-id")
    c.add_argument("--max-attempts", dest="max_attempts", type=int)
    c.add_argument("--ring-timeout", dest="ring_timeout_s", type=int)
    c.add_argument("--wrapup-limit", dest="wrapup_limit_s", type=int)
    c.add_argument("--dial-ratio", dest="dial_ratio", type=float)
    c.add_argument("--voicemail", help="sound to leave on answering machines (Asterisk path, no extension)")
    c.set_defaults(func=cmd_campaign)

    ct = sub.add_parser("contacts", help="import contacts")
    ct.add_argument("action", choices=["import"])
    ct.add_argument("file")
    ct.add_argument("--campaign", type=int, required=True)
    ct.add_argument("--region", default="US", help="default country for numbers without +country code")
    ct.add_argument("--skip-bad-rows", action="store_true", help="import the good rows even if some are bad")
    ct.set_defaults(func=cmd_contacts)

    s = sub.add_parser("sim", help="the simulated telephone network")
    s.add_argument("action", choices=["load", "demo"])
    s.add_argument("file", nargs="?", default="")
    s.add_argument("--out", default="sim-network.csv")
    s.add_argument("--count", type=int, default=50)
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_sim)

    dr = sub.add_parser("drill", help="simulated callers for drills and tests")
    dr.add_argument("who", choices=["volunteer"])
    dr.add_argument("--code", required=True)
    dr.add_argument("--stay", type=int, default=3600, help="seconds to stay on the line")
    dr.set_defaults(func=cmd_drill)

    us = sub.add_parser("user", help="panel users (admins, managers, callers)")
    us.add_argument("action", choices=["create", "list"])
    us.add_argument("--username")
    us.add_argument("--role", default="admin", help="admin, manager, caller or a custom role")
    us.add_argument("--name")
    us.add_argument("--email")
    us.set_defaults(func=cmd_user)

    sc = sub.add_parser("screenshots", help="render the panel's main screens to PNG (offline, no PBX)")
    sc.add_argument("--out", default="docs/screenshots")
    sc.set_defaults(func=cmd_screenshots)

    r = sub.add_parser("run", help="run the controller and the API (Asterisk must be up)")
    r.add_argument("--ready-file", help=argparse.SUPPRESS)
    r.set_defaults(func=cmd_run)

    bk = sub.add_parser("backup", help="online copy of the store, secrets, media and uploads (safe during a shift)")
    bk.add_argument("dest", help="a new or empty directory")
    bk.set_defaults(func=cmd_backup)

    rs = sub.add_parser("restore", help="put a backup back into a fresh data directory (controller stopped)")
    rs.add_argument("src", help="a directory made by phonebank backup")
    rs.add_argument("--force", action="store_true", help="replace an existing store")
    rs.set_defaults(func=cmd_restore)

    dm = sub.add_parser("demo", help="provision everything and run a demo phone bank on the simulated network")
    dm.add_argument("--contacts", type=int, default=50)
    dm.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Tools with their own exact interfaces (issues 4 and 5) take the rest of the line as is.
    if argv[:2] == ["bench", "pacing"]:
        from bridge import pacing_sim

        return pacing_sim.main(argv[2:])
    if argv[:1] == ["forecast"]:
        from bridge import pacing_sim

        return pacing_sim.forecast_main(argv[1:])
    if argv[:2] == ["amd", "classify"]:
        from bridge import amd_cli

        return amd_cli.classify_main(argv[2:])
    args = build_parser().parse_args(argv)
    logconf.configure(args.log_level)
    settings = Settings.from_env(Path(args.data) if args.data else None)
    return int(args.func(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())
