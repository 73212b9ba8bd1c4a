"""`edge-agent status`: a running agent's /health as tables a plant engineer reads at a glance."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console

from agent.i18n import Catalogue
from agent.terminal import Column, FittedTable, table_width


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


def print_status(document: dict[str, Any], console: Console, words: Catalogue) -> None:
    config = document["config"]
    verdict = words("status.ok") if document["ok"] else words("status.degraded")
    console.print(
        words(
            "status.headline",
            agent=document["agent"],
            verdict=verdict,
            file=config["file"],
            version=config["version"],
        ),
        highlight=False,
    )
    width = table_width(console)
    connections = FittedTable(
        words("status.connections"),
        [
            Column(words("column.connection")),
            Column(words("column.endpoint"), drop=1),
            Column(words("column.devices_up"), numeric=True),
            Column(words("column.cycles"), numeric=True, drop=2),
            Column(words("column.missed"), numeric=True),
            Column(words("column.errors"), numeric=True),
            Column(words("column.cycle_ms"), numeric=True, drop=2),
        ],
    )
    down = FittedTable(
        words("status.devices_down"),
        [
            Column(words("column.connection")),
            Column(words("column.device")),
            Column(words("column.last_good_read")),
            Column(words("column.error"), wrap=True),
        ],
    )
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
                    name,
                    device,
                    words("status.never") if ago is None else words("status.ago", seconds=f"{ago:.0f}"),
                    state["error"] or "",
                )
    console.print(connections.render(width))
    if down.rows:
        console.print(down.render(width))
    outputs = FittedTable(
        words("status.outputs"),
        [
            Column(words("column.output")),
            Column(words("column.connected")),
            Column(words("column.backlog"), numeric=True),
            Column(words("column.oldest_s"), numeric=True, drop=2),
            Column(words("column.delivered"), numeric=True, drop=1),
            Column(words("column.failures"), numeric=True),
            Column(words("column.last_error"), wrap=True),
        ],
    )
    for name, stats in document["outputs"].items():
        outputs.add_row(
            words("status.at_most_once", name=name) if stats.get("accept_loss") else name,
            words("word.yes") if stats["connected"] else words("word.no"),
            str(stats["backlog_records"]),
            str(stats["oldest_undelivered_s"] or ""),
            str(stats["delivered"]),
            str(stats["failures"]),
            stats["last_error"] or "",
        )
    console.print(outputs.render(width))
    outbox = document["outbox"]
    line = words("status.outbox", count=outbox["committed"])
    if outbox["unwritable"]:
        line += words(
            "status.outbox_unwritable", reason=outbox["unwritable_reason"], count=outbox["waiting_in_memory"]
        )
    console.print(line, highlight=False)
    if outbox.get("salvaged") or outbox.get("lost_to_corruption"):
        console.print(
            words("status.outbox_corrupt", salvaged=outbox["salvaged"], lost=outbox["lost_to_corruption"]),
            highlight=False,
        )
    for name, loop in document.get("loops", {}).items():
        if loop["restarts"]:
            console.print(
                words("status.loop_restarted", name=name, count=loop["restarts"], error=loop["last_error"]),
                highlight=False,
            )
