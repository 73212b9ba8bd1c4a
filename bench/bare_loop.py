"""The floor: a bare pymodbus asyncio loop reading exactly the agent's requests (the same planner
output) every second, doing nothing with the values. `python -m bench.bare_loop WORKSHOP OUT`:
runs until SIGTERM, then writes cycles, missed cycles and requests to OUT as JSON.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from agent.config.connections import ModbusTcpConnection
from agent.config.loader import load_config
from agent.drivers.modbus import new_client, plan_device, read_table

INTERVAL_S = 1.0


async def poll(connection: ModbusTcpConnection, plans: list, counts: dict[str, int]) -> None:  # type: ignore[type-arg]
    client = new_client(connection)
    await client.connect()
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while True:
        for plan in plans:
            for request in plan.requests:
                await read_table(client, request.table, request.address, request.count, plan.unit)
                counts["requests"] += 1
        counts["cycles"] += 1
        next_tick += INTERVAL_S
        now = loop.time()
        if now > next_tick:
            missed = int((now - next_tick) // INTERVAL_S) + 1
            counts["missed"] += missed
            next_tick += missed * INTERVAL_S
        await asyncio.sleep(next_tick - now)


async def main(workshop: Path, out: Path) -> None:
    config = load_config(workshop)
    counts = {"cycles": 0, "missed": 0, "requests": 0}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = []
    for connection in config.workshop.connections:
        assert isinstance(connection, ModbusTcpConnection)
        plans = [plan_device(device, connection) for device in config.devices_on(connection)]
        tasks.append(asyncio.create_task(poll(connection, plans, counts)))
    print("polling", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    counts["connections"] = len(tasks)
    out.write_text(json.dumps(counts), encoding="utf-8")  # noqa: ASYNC240 - once, at exit


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2])))
