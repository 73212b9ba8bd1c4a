"""The `edge-agent` command."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import signal
import sys
import zoneinfo
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from agent import __version__
from agent.config.compiled import AgentConfig
from agent.config.issues import ConfigError
from agent.config.loader import load_config
from agent.config.shipped import shipped_profiles_dir
from agent.i18n import Catalogue, catalogue, languages
from agent.terminal import output_console, print_lines, print_table

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2  # the configuration is invalid: systemd does not restart (RestartPreventExitStatus)
EXIT_OUTBOX = 3  # the outbox cannot be opened for writing (permissions, read-only file system)

log = logging.getLogger("agent")


def _load(path: Path, console: Console) -> AgentConfig | None:
    try:
        return load_config(path)
    except ConfigError as error:
        for issue in error.issues:
            print_lines(str(issue), sys.stderr)  # between words at a terminal, whole when piped
        print(f"{len(error.issues)} error(s) in {path}", file=sys.stderr)
        return None


def _words(
    args: argparse.Namespace, config: AgentConfig | None = None, fallback: str | None = None
) -> Catalogue:
    """The catalogue in --language if given, else the workshop's site.language."""
    if args.language is not None:
        return catalogue(args.language)
    if config is not None:
        return catalogue(config.workshop.site.language)
    return catalogue(fallback) if fallback in languages() else catalogue()


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    config = _load(args.config, console)
    if config is None:
        return EXIT_CONFIG
    if args.for_service:
        from agent.config.samples import still_sample

        problems = still_sample(config)
        for problem in problems:
            print_lines(str(problem), sys.stderr)
        if problems:
            print(
                f"{args.config} is valid, but not yet this plant's: the service stays stopped",
                file=sys.stderr,
            )
            return EXIT_CONFIG
    for warning in config.warnings:
        print(f"{warning} (a warning: the file is valid)", file=sys.stderr)
    w = config.workshop
    words = _words(args, config)
    print_lines(
        words(
            "validate.ok",
            file=args.config,
            machines=len(w.machines),
            lines=len(w.lines),
            meters=len(w.meters),
            connections=len(w.connections),
            profiles=len(config.profiles),
        ),
        sys.stdout,
    )
    by_folder: dict[Path, list[str]] = {}
    for name, profile in sorted(config.profiles.items()):
        by_folder.setdefault(profile.file.parent, []).append(name)
    shipped = shipped_profiles_dir()
    for folder, names in by_folder.items():
        listed = ", ".join(names)
        line = (
            words("validate.profiles_shipped", names=listed)
            if folder == shipped
            else words("validate.profiles_from", folder=folder, names=listed)
        )
        print_lines(line, sys.stdout)
    for note in holiday_notes(config, words):
        print_lines(note, sys.stdout)
    return EXIT_OK


def holiday_notes(config: AgentConfig, words: Catalogue, today: dt.date | None = None) -> list[str]:
    """A note when the workshop's holiday set does not know this year, or in December the next."""
    from agent.config.holidays import missing_years, statutory_calendar

    chosen = config.workshop.calendar.holidays
    if chosen is None:
        return []
    today = today or dt.datetime.now(zoneinfo.ZoneInfo(config.workshop.site.timezone)).date()
    years = ", ".join(str(y) for y in statutory_calendar(chosen).years)
    return [
        words("validate.holidays_missing", set=chosen, years=years, year=year)
        for year in missing_years(chosen, today)
    ]


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    from agent.drivers.registry import driver_entry

    config = _load(args.config, console)
    if config is None:
        return EXIT_CONFIG
    words = _words(args, config)
    for connection in config.workshop.connections:
        shown = driver_entry(connection).plan(connection, config.devices_on(connection), words)
        if isinstance(shown, str):
            console.print(shown, highlight=False)
        else:
            print_table(console, shown)
    return EXIT_OK


def _install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


def _run_agent(main: Coroutine[Any, Any, None]) -> int:
    """Run the agent's event loop; an outbox it cannot write is one line and EXIT_OUTBOX."""
    from agent.delivery.outbox import OutboxUnopenableError

    unopenable: list[OutboxUnopenableError] = []
    try:
        asyncio.run(main)
    except* OutboxUnopenableError as group:  # raised inside the agent's task groups
        unopenable += [e for e in group.exceptions if isinstance(e, OutboxUnopenableError)]
    for error in unopenable:
        log.error(
            "event=outbox_unopenable path=%s reason=%r action=%r exit=%d",
            error.path,
            error.reason,
            error.action,
            EXIT_OUTBOX,
        )
    return EXIT_OUTBOX if unopenable else EXIT_OK


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    config = _load(args.config, console)
    if config is None:
        return EXIT_CONFIG
    if args.once:
        return _run_once(config, _words(args, config))
    from agent.service.daemon import Daemon

    async def main() -> None:
        await Daemon(config, args.config).run()

    code = _run_agent(main())
    if code == EXIT_OK:
        log.info("event=stopped")
    return code


def _run_once(config: AgentConfig, words: Catalogue) -> int:
    from agent.commands.run_once import poll_once, report

    readings = asyncio.run(poll_once(config, words=words))
    return EXIT_OK if report(readings, output_console(), words) else EXIT_FAILURE


def _wide_console(width: int = 160) -> Console:
    """Tables of many columns stay whole when piped (rich would fold them to 80 characters)."""
    return Console(width=max(Console().width, width))


def cmd_init(args: argparse.Namespace, console: Console) -> int:
    from agent.commands.init import InitError, init_workshop

    try:
        written = init_workshop(args.directory, args.example, force=args.force)
    except InitError as error:
        print(f"init: {error}", file=sys.stderr)
        return EXIT_FAILURE
    workshop = written.workshop
    for path in (workshop, *written.profiles):
        print(f"wrote {path}")
    print(
        "\nNext:\n"
        f"  1. edit {workshop}: agent id, site, your PLCs and gateways (connections),\n"
        "     machines, meters and shifts; the profiles in "
        f"{workshop.parent / 'devices'} are found before the shipped ones\n"
        f"  2. edge-agent validate -c {workshop}\n"
        f"  3. edge-agent plan -c {workshop}        (the Modbus requests of each cycle)\n"
        f"  4. edge-agent run --once -c {workshop}  (one poll: every tag's value and each machine's state)\n"
        f"  5. edge-agent run -c {workshop}         (or as the service: deploy/install.sh)"
    )
    return EXIT_OK


def cmd_schemas(args: argparse.Namespace, console: Console) -> int:
    from agent.commands.schemas import copy_schemas, shape_lines

    words = _words(args)
    if args.out is not None:
        for path in copy_schemas(args.out):
            print(words("schemas.wrote", path=path))
        return EXIT_OK
    from agent.schemas.files import schemas_dir

    print(words("schemas.folder", folder=schemas_dir()))
    for line in shape_lines(args.style):
        print(line)
    return EXIT_OK


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    from agent.commands.status import StatusError, fetch_health, print_status

    url = args.url
    if url is None and args.config is not None:
        config = _load(args.config, console)
        if config is None:
            return EXIT_CONFIG
        url = f"http://{config.workshop.health.host}:{config.workshop.health.port}"
    try:
        document = fetch_health(url or "http://127.0.0.1:9470")
    except StatusError as error:
        print(f"status: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print_status(document, console, _words(args, fallback=document.get("language")))
    return EXIT_OK if document.get("ok") else EXIT_FAILURE


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from agent.commands.report import ReportError, write_report
    from agent.reports.build import ReportNotFoundError

    config = _load(args.config, console)
    if config is None:
        return EXIT_CONFIG
    try:
        written = write_report(
            config,
            args.output,
            shift=tuple(args.shift) if args.shift else None,
            day=args.day,
            month=args.month,
            language=args.language,
        )
    except ReportNotFoundError as error:
        print(f"report: {error.text(_words(args, config))}", file=sys.stderr)
        return EXIT_CONFIG
    except (ReportError, OSError) as error:
        print(f"report: {error}", file=sys.stderr)
        return EXIT_CONFIG
    print(written)
    return EXIT_OK


def cmd_simulate(args: argparse.Namespace, console: Console) -> int:
    from agent.clock import ScaledClock, wall_clock
    from agent.sim.server import OpcUaSimulation, WorkshopSimulator
    from agent.sim.timeline import load_timeline

    config = _load(args.config, console)
    if config is None:
        return EXIT_CONFIG
    timeline = None
    if args.timeline is not None:
        try:
            timeline = load_timeline(args.timeline, [m.id for m in config.workshop.machines])
        except ConfigError as error:
            for issue in error.issues:
                print(issue, file=sys.stderr)
            print(f"{len(error.issues)} error(s) in {args.timeline}", file=sys.stderr)
            return EXIT_CONFIG
    clock = wall_clock if args.speed == 1.0 else ScaledClock(wall_clock(), args.speed)
    words = _words(args, config)

    async def main() -> None:
        stop = asyncio.Event()
        _install_stop_handlers(stop)
        # simulation only: the agent on this machine trusts the simulated OPC UA servers
        opcua = OpcUaSimulation(trust_into_agent=True)
        async with WorkshopSimulator(config, clock, seed=args.seed, opcua=opcua, timeline=timeline) as sim:
            for line in unmodelled_tag_warnings(sim.unmodelled_tags(), config, words):
                print_lines(line, sys.stderr)
            for connection in config.workshop.connections:
                units = [f"{d.id}@{d.unit}" for d in config.devices_on(connection)]
                print(
                    f"serving {connection.id} on {connection.endpoint}: {', '.join(units)}",
                    flush=True,
                )
            await stop.wait()

    asyncio.run(main())
    return EXIT_OK


def unmodelled_tag_warnings(
    unmodelled: dict[str, tuple[list[str], list[str]]], config: AgentConfig, words: Catalogue
) -> list[str]:
    """One warning per device whose profile names tags the simulator has no model for (served as
    0), each with the closest name it does model, if one is close."""
    import difflib

    lines = []
    for device in config.devices():
        if device.id not in unmodelled:
            continue
        missing, modelled = unmodelled[device.id]
        named = []
        for tag in missing:
            close = difflib.get_close_matches(tag, modelled, n=1, cutoff=0.6)
            named.append(words("simulate.closest", tag=tag, name=close[0]) if close else tag)
        lines.append(
            words("simulate.unmodelled", device=device.id, profile=device.profile.name, tags=", ".join(named))
        )
    return lines


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from agent.commands.demo import DemoOptions, default_state_dir, demo_config, reset_demo_state, run_demo

    try:
        path = args.config or demo_config(args.example)
    except KeyError as error:
        print(f"demo: {error.args[0]}", file=sys.stderr)
        return EXIT_CONFIG
    config = _load(path, console)
    if config is None:
        return EXIT_CONFIG
    options = DemoOptions(
        language=args.language,
        state_dir=args.state_dir or default_state_dir(),
        speed=args.speed,
        duration_s=args.duration,
        start=args.start,
        records=Path(args.records) if args.records else None,
        write_records=args.records != "",
        seed=args.seed,
        board_port=args.board_port,
    )
    try:
        reset_demo_state(options)
    except OSError as error:
        print(
            f"demo: cannot use {options.state_dir} for the demo's outbox and records "
            f"({error.strerror or error}); give another folder with --state-dir",
            file=sys.stderr,
        )
        return EXIT_FAILURE

    async def main() -> None:
        stop = asyncio.Event()
        _install_stop_handlers(stop)
        await run_demo(config, options, console, stop)

    return _run_agent(main())


def cmd_probe(args: argparse.Namespace, console: Console) -> int:
    from agent.commands.probe import ProbeError, ProbeRequest, probe
    from agent.config.profile import Table

    if args.url.startswith("opc.tcp://"):
        return _probe_opcua(args)
    chosen = [(t, getattr(args, t.value)) for t in Table if getattr(args, t.value) is not None]
    if not chosen:
        print("probe: give one of --holding, --input, --coil, --discrete-input", file=sys.stderr)
        return EXIT_CONFIG
    table, address = chosen[0]
    request = ProbeRequest(table, address, args.count, args.unit)
    try:
        asyncio.run(probe(args.url, request, args.timeout, _wide_console()))
    except ProbeError as error:
        print(f"probe: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _probe_opcua(args: argparse.Namespace) -> int:
    from agent.commands.probe import ProbeError
    from agent.commands.probe_opcua import OpcUaProbe, default_pki_dir, probe_opcua
    from agent.config.connections import SecurityMode

    password = args.password_file.read_text(encoding="utf-8").strip() if args.password_file else None
    mode: SecurityMode = args.mode or ("None" if args.policy == "None" else "SignAndEncrypt")
    request = OpcUaProbe(
        args.url,
        policy=args.policy,
        mode=mode,
        username=args.user,
        password=password,
        browse=args.browse,
        depth=args.depth,
        nodes=tuple(args.node or ()),
        pki_dir=args.pki or default_pki_dir(),
        timeout_s=args.timeout,
    )
    try:
        ok = asyncio.run(probe_opcua(request, _wide_console(200)))
    except ProbeError as error:
        print(f"probe: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK if ok else EXIT_FAILURE


def _report_arguments(report: argparse.ArgumentParser) -> None:
    which = report.add_mutually_exclusive_group(required=True)
    which.add_argument("--shift", nargs=2, metavar=("DAY", "SHIFT"), help="e.g. --shift 2026-11-24 day")
    which.add_argument("--day", metavar="DAY", help="a production day, e.g. 2026-11-24")
    which.add_argument("--month", metavar="YYYY-MM", help="energy per part per machine and line")
    report.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write")


def _add_schemas_parser(commands: Any) -> None:
    schemas = commands.add_parser(
        "schemas", help="list the JSON Schemas of every MQTT topic and record, or copy them to a folder"
    )
    schemas.add_argument("--style", choices=["isa95", "umh"], help="only the topics of this topic_style")
    schemas.add_argument("--out", type=Path, help="copy every schema file and topics.json into this folder")


def _add_probe_parser(commands: Any) -> None:
    probe = commands.add_parser(
        "probe",
        help="read registers once and print them decoded every way; or list and browse an OPC UA server",
    )
    probe.add_argument(
        "url",
        help="modbus-tcp://HOST:PORT, modbus-rtu-over-tcp://HOST:PORT, "
        "modbus-rtu:///dev/ttyUSB0?baudrate=9600&parity=E, or opc.tcp://HOST:PORT",
    )
    probe.add_argument("--unit", type=int, default=1, help="unit id (slave address)")
    opcua = probe.add_argument_group("OPC UA")
    opcua.add_argument(
        "--policy",
        default="None",
        choices=["None", "Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"],
        help="security policy for browsing and reading (endpoints are listed without a session)",
    )
    opcua.add_argument("--mode", choices=["None", "Sign", "SignAndEncrypt"], help="default: SignAndEncrypt")
    opcua.add_argument("--user", help="username (default: anonymous)")
    opcua.add_argument("--password-file", type=Path, help="file holding the password")
    opcua.add_argument("--browse", metavar="NODE", help="browse from this node, e.g. i=85 (Objects)")
    opcua.add_argument("--depth", type=int, default=2)
    opcua.add_argument("--node", action="append", metavar="NODE", help="read this node (repeatable)")
    opcua.add_argument(
        "--pki",
        type=Path,
        help="certificates and trust store (own/, trusted/, rejected/); default probe's own, "
        "~/.local/state/edge-agent/probe-pki. Give the agent's (<state_dir>/pki) to open sessions "
        "as the agent: its certificate is used as it is, never replaced",
    )
    where = probe.add_mutually_exclusive_group()
    for table in ("holding", "input", "coil", "discrete_input"):
        where.add_argument(
            f"--{table.replace('_', '-')}",
            dest=table,
            type=int,
            metavar="ADDRESS",
            help=f"first {table.replace('_', ' ')} address (0-based, as on the wire)",
        )
    probe.add_argument("--count", type=int, default=10)
    probe.add_argument("--timeout", type=float, default=2.0, help="seconds")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument(
        "--language",
        choices=languages(),
        help="the language of tables and messages (default: the workshop's site.language; for status "
        "without -c, the running agent's)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(name: str, help_text: str, *, required: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("-c", "--config", type=Path, required=required, help="workshop YAML")
        return sub

    validate = with_config("validate", "check a workshop file; exit 0, or 2 with every error")
    validate.add_argument(
        "--for-service",
        action="store_true",
        help="also fail (exit 2) while a connection still points at a shipped sample's simulator "
        "endpoint: what install.sh checks before it starts the service",
    )
    with_config("plan", "print the compiled Modbus read plan")
    _report_arguments(with_config("report", "write a shift, day or month report from the history as HTML"))
    run = with_config("run", "run the agent (SIGTERM/SIGINT stop it cleanly)")
    run.add_argument(
        "--once",
        action="store_true",
        help="poll every device once, print each tag's value and quality and each machine's state, "
        "and exit: 0 if every device answered, 1 if not. Records nothing.",
    )
    init = commands.add_parser(
        "init", help="write a starting workshop and its device profiles into a folder, for a plant to edit"
    )
    init.add_argument("directory", type=Path, help="folder for workshop.yaml and devices/")
    init.add_argument("--example", default="grinding", help="which shipped example (default: grinding)")
    init.add_argument("--force", action="store_true", help="replace files that exist")
    simulate = with_config("simulate", "serve simulated devices for every machine of the workshop")
    simulate.add_argument("--speed", type=float, default=1.0, help="shop-floor time per real second")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument(
        "--timeline",
        type=Path,
        help="YAML script of what named machines do and when (see agent/sim/timeline.py)",
    )
    demo = with_config(
        "demo", "simulated workshop + agent + live view, faster than real time", required=False
    )
    demo.add_argument("--speed", type=float, default=120.0, help="shop-floor seconds per real second")
    demo.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many real seconds (0: never)"
    )
    demo.add_argument("--start", default="07:20", help="local shop-floor time to start at (HH:MM)")
    demo.add_argument(
        "--state-dir",
        type=Path,
        help="folder for the demo's outbox, records and certificates "
        "(default $XDG_STATE_HOME/edge-agent/demo, i.e. ~/.local/state/edge-agent/demo)",
    )
    demo.add_argument(
        "--records",
        help="JSON Lines file for records (default <state-dir>/records.jsonl; '' for none)",
    )
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--board-port",
        type=int,
        metavar="PORT",
        help="also serve the workshop board and the reports on http://127.0.0.1:PORT (0: any free port)",
    )
    demo.add_argument(
        "--example",
        default="grinding",
        help="which shipped workshop (default: grinding; grinding-zh: a Chinese plant, in Chinese)",
    )
    _add_schemas_parser(commands)
    status = commands.add_parser(
        "status", help="ask a running agent for its health (exit 0 healthy, 1 not, 2 unreachable)"
    )
    status.add_argument("--url", help="health endpoint, default from -c or http://127.0.0.1:9470")
    status.add_argument("-c", "--config", type=Path, help="workshop YAML (for the endpoint's address)")
    _add_probe_parser(commands)
    return parser


HANDLERS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "run": cmd_run,
    "init": cmd_init,
    "simulate": cmd_simulate,
    "demo": cmd_demo,
    "probe": cmd_probe,
    "status": cmd_status,
    "report": cmd_report,
    "schemas": cmd_schemas,
}


def main(argv: Sequence[str] | None = None) -> int:
    from agent.service.logsetup import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    return HANDLERS[args.command](args, output_console())
