"""`edge-agent status`: a running agent's /health as tables a plant engineer reads at a glance."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console
from rich.table import Table


class StatusError(Exception):
    pass


def fetch_health(base_url: str, timeout_s: float = 3.0) -> dict[str, Any]:
    url = base_url.rstrip("/") + "/health"
    if not url.startswith(("http://", "https://")):
        raise StatusError(f"{base_url}: give an http:// URL")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:  # noqa: S310 - scheme checked above
            document: dict[str, Any] = json.loads(answer.read())
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise StatusError(f"no agent answers at {url}: {reason}") from None
    return document


def print_status(document: dict[str, Any], console: Console) -> None:
    config = document["config"]
    console.print(
        f"agent {document['agent']}: {'OK' if document['ok'] else 'DEGRADED'} "
        f"(config {config['file']}, version {config['version']})"
    )
    connections = Table(title="connections")
    for column in ("connection", "endpoint", "devices up", "cycles", "missed", "errors", "cycle ms"):
        connections.add_column(column)
    down = Table(title="devices not answering")
    for column in ("connection", "device", "last good read", "error"):
        down.add_column(column)
    for name, health in document["connections"].items():
        devices = health["devices"]
        connections.add_row(
            name,
            health["endpoint"],
            f"{sum(d['connected'] for d in devices.values())}/{len(devices)}",
            str(health["cycles"]),
            str(health["missed_cycles"]),
            str(health["errors"]),
            str(health["last_cycle_ms"]),
        )
        for device, state in devices.items():
            if not state["connected"]:
                ago = state["last_good_read_s_ago"]
                down.add_row(
                    name, device, "never" if ago is None else f"{ago:.0f} s ago", state["error"] or ""
                )
    console.print(connections)
    if down.row_count:
        console.print(down)
    outputs = Table(title="outputs")
    for column in ("output", "connected", "backlog", "oldest s", "delivered", "failures", "last error"):
        outputs.add_column(column)
    for name, stats in document["outputs"].items():
        outputs.add_row(
            f"{name} (at-most-once: accept_loss)" if stats.get("accept_loss") else name,
            "yes" if stats["connected"] else "no",
            str(stats["backlog_records"]),
            str(stats["oldest_undelivered_s"] or ""),
            str(stats["delivered"]),
            str(stats["failures"]),
            stats["last_error"] or "",
        )
    console.print(outputs)
    outbox = document["outbox"]
    console.print(
        f"outbox: {outbox['committed']} records committed"
        + (
            f", NOT WRITABLE ({outbox['unwritable_reason']}): {outbox['waiting_in_memory']} waiting in memory"
            if outbox["unwritable"]
            else ""
        )
    )
    if outbox.get("salvaged") or outbox.get("lost_to_corruption"):
        console.print(
            f"outbox was corrupt at start: {outbox['salvaged']} records salvaged, "
            f"{outbox['lost_to_corruption']} lost"
        )
    for name, loop in document.get("loops", {}).items():
        if loop["restarts"]:
            console.print(
                f"loop {name} restarted {loop['restarts']} time(s); last error: {loop['last_error']}"
            )
