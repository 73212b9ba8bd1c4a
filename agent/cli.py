"""The `edge-agent` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from agent import __version__
from agent.config.issues import ConfigError
from agent.config.loader import AgentConfig, load_config

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2

log = logging.getLogger("agent")


def _load(path: Path, console: Console) -> AgentConfig | None:
    try:
        return load_config(path)
    except ConfigError as error:
        for issue in error.issues:
            print(issue, file=sys.stderr)
        print(f"{len(error.issues)} error(s) in {path}", file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    config = _load(args.config, console)
    if config is None:
        return EXIT_CONFIG
    w = config.workshop
    console.print(
        f"{args.config}: OK — {len(w.machines)} machines on {len(w.lines)} lines, "
        f"{len(w.meters)} meters, {len(w.connections)} connections, "
        f"{len(config.profiles)} device profiles"
    )
    return EXIT_OK


def cmd_plan(args: argparse.Namespace, console: Console) -> int:
    from agent.config.workshop import ModbusRtuConnection, OpcUaConnection
    from agent.drivers.modbus import plan_device, request_pause
    from agent.drivers.timing import cycle_seconds

    config = _load(args.config, console)
    if config is None:
        return EXIT_CONFIG
    for connection in config.workshop.connections:
        if isinstance(connection, OpcUaConnection):
            nodes = sum(len(d.profile.spec.nodes) for d in config.devices_on(connection))
            console.print(
                f"{connection.id} (opcua {connection.url}, {connection.security_policy}/"
                f"{connection.security_mode}): {nodes} nodes, read or subscribed per the profiles"
            )
            continue
        plans = [plan_device(d, connection) for d in config.devices_on(connection)]
        requests = [r for p in plans for r in p.requests]
        budget = ""
        if isinstance(connection, ModbusRtuConnection):
            busy = cycle_seconds(requests, connection, request_pause(connection))
            share = busy / connection.interval_s
            budget = f"; bus busy {busy * 1000:.0f} ms of {connection.interval_s * 1000:.0f} ms ({share:.0%})"
            if share > 0.8:
                budget += " - TOO SLOW: raise interval_s or baudrate, or move devices to another bus"
        table = Table(
            title=f"{connection.id} ({connection.transport} {connection.endpoint}, every "
            f"{connection.interval_s:g}s): {len(requests)} requests per cycle{budget}"
        )
        for column in ("device", "unit", "fc", "table", "address", "count", "gap filled"):
            table.add_column(column, no_wrap=True)
        table.add_column("tags", overflow="fold")
        for plan in plans:
            for request in plan.requests:
                table.add_row(
                    plan.device,
                    str(plan.unit),
                    f"{request.function_code:02d}",
                    request.table.value,
                    str(request.address),
                    str(request.count),
                    str(request.filled),
                    ", ".join(t.name for t in request.tags),
                )
        console.print(table)
    return EXIT_OK


def _install_stop_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from agent.daemon import Daemon

    config = _load(args.config, console)
    if config is None:
        return EXIT_CONFIG

    async def main() -> None:
        await Daemon(config, args.config).run()

    asyncio.run(main())
    log.info("event=stopped")
    return EXIT_OK


def cmd_status(args: argparse.Namespace, console: Console) -> int:
    from agent.status import StatusError, fetch_health, print_status

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
    print_status(document, console)
    return EXIT_OK if document.get("ok") else EXIT_FAILURE


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

    async def main() -> None:
        stop = asyncio.Event()
        _install_stop_handlers(stop)
        # simulation only: the agent on this machine trusts the simulated OPC UA servers
        opcua = OpcUaSimulation(trust_into_agent=True)
        async with WorkshopSimulator(config, clock, seed=args.seed, opcua=opcua, timeline=timeline):
            for connection in config.workshop.connections:
                units = [f"{d.id}@{d.unit}" for d in config.devices_on(connection)]
                print(
                    f"serving {connection.id} on {connection.endpoint}: {', '.join(units)}",
                    flush=True,
                )
            await stop.wait()

    asyncio.run(main())
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, console: Console) -> int:
    from agent.demo import DEMO_CONFIG, DemoOptions, reset_demo_state, run_demo

    config = _load(args.config or DEMO_CONFIG, console)
    if config is None:
        return EXIT_CONFIG
    options = DemoOptions(
        speed=args.speed,
        duration_s=args.duration,
        start=args.start,
        records=None if args.records == "" else args.records,
        seed=args.seed,
    )

    reset_demo_state(options)

    async def main() -> None:
        stop = asyncio.Event()
        _install_stop_handlers(stop)
        await run_demo(config, options, console, stop)

    asyncio.run(main())
    return EXIT_OK


def cmd_probe(args: argparse.Namespace, console: Console) -> int:
    from agent.config.profile import Table
    from agent.probe import ProbeError, ProbeRequest, probe

    if args.url.startswith("opc.tcp://"):
        return _probe_opcua(args)
    chosen = [(t, getattr(args, t.value)) for t in Table if getattr(args, t.value) is not None]
    if not chosen:
        print("probe: give one of --holding, --input, --coil, --discrete-input", file=sys.stderr)
        return EXIT_CONFIG
    table, address = chosen[0]
    request = ProbeRequest(table, address, args.count, args.unit)
    try:
        asyncio.run(probe(args.url, request, args.timeout, Console(width=max(Console().width, 240))))
    except ProbeError as error:
        print(f"probe: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _probe_opcua(args: argparse.Namespace) -> int:
    from agent.config.workshop import SecurityMode
    from agent.probe import ProbeError
    from agent.probe_opcua import OpcUaProbe, probe_opcua

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
        pki_dir=args.pki,
        timeout_s=args.timeout,
    )
    try:
        asyncio.run(probe_opcua(request, Console(width=max(Console().width, 200))))
    except ProbeError as error:
        print(f"probe: {error}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(name: str, help_text: str, *, required: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("-c", "--config", type=Path, required=required, help="workshop YAML")
        return sub

    with_config("validate", "check a workshop file; exit 0, or 2 with every error")
    with_config("plan", "print the compiled Modbus read plan")
    with_config("run", "run the agent (SIGTERM/SIGINT stop it cleanly)")
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
        "--records",
        default="var/demo/records.jsonl",
        help="JSON Lines file for records ('' for none)",
    )
    demo.add_argument("--seed", type=int, default=7)
    status = commands.add_parser(
        "status", help="ask a running agent for its health (exit 0 healthy, 1 not, 2 unreachable)"
    )
    status.add_argument("--url", help="health endpoint, default from -c or http://127.0.0.1:9470")
    status.add_argument("-c", "--config", type=Path, help="workshop YAML (for the endpoint's address)")
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
    opcua.add_argument("--pki", type=Path, default=Path("var/edge-agent/pki"), help="certificates and trust")
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
    return parser


HANDLERS = {
    "validate": cmd_validate,
    "plan": cmd_plan,
    "run": cmd_run,
    "simulate": cmd_simulate,
    "demo": cmd_demo,
    "probe": cmd_probe,
    "status": cmd_status,
}


def main(argv: Sequence[str] | None = None) -> int:
    from agent.logsetup import configure_logging

    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    console = Console()
    return HANDLERS[args.command](args, console)
