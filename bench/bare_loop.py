"""The floors: a bare pymodbus asyncio loop reading exactly the agent's requests (the same planner
output) every second. `python -m bench.bare_loop WORKSHOP OUT [--publish]`: runs until SIGTERM,
then writes cycles, missed cycles and requests to OUT as JSON.

- `bare`: does nothing with the answers. The floor under any pymodbus-based gateway.
- `bare+paho` (--publish): decodes each device's values (the agent's struct decoder, the cheapest
  there is) and publishes them as one QoS 1 message per device and cycle, `{"ts", "values"}` in
  JSON (orjson), through paho's own network thread (loop_start). The least any gateway that
  publishes what it reads does.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config.connections import ModbusTcpConnection
from agent.config.loader import load_config
from agent.drivers.modbus import new_client, plan_device, read_table
from agent.drivers.planner import DevicePlan

INTERVAL_S = 1.0
TOPIC = "bench-bare"  # bench-bare/<device>: what the harness's probe subscribes to
MAX_INFLIGHT = 1000  # one cycle's messages (200 devices) never wait for an acknowledgement


async def poll(
    connection: ModbusTcpConnection,
    plans: list[DevicePlan],
    counts: dict[str, int],
    mqtt_client: mqtt.Client | None,
) -> None:
    client = new_client(connection)
    await client.connect()
    loop = asyncio.get_running_loop()
    next_tick = loop.time()
    while True:
        for plan in plans:
            values: dict[str, object] = {}
            ts = time.time()
            for request in plan.requests:
                response = await read_table(client, request.table, request.address, request.count, plan.unit)
                counts["requests"] += 1
                if mqtt_client is not None:
                    decoded, _ = request.decode(
                        response.bits if request.table.is_bit_table else response.registers
                    )
                    values.update(zip(request.names, decoded, strict=True))
            if mqtt_client is not None:
                mqtt_client.publish(
                    f"{TOPIC}/{plan.device}", orjson.dumps({"ts": ts, "values": values}), qos=1
                )
        counts["cycles"] += 1
        next_tick += INTERVAL_S
        now = loop.time()
        if now > next_tick:
            missed = int((now - next_tick) // INTERVAL_S) + 1
            counts["missed"] += missed
            next_tick += missed * INTERVAL_S
        await asyncio.sleep(next_tick - now)


def connected_publisher() -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    return client


async def main(workshop: Path, out: Path, publish: bool) -> None:
    config = load_config(workshop)
    counts = {"cycles": 0, "missed": 0, "requests": 0}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    publisher = connected_publisher() if publish else None
    tasks = []
    for connection in config.workshop.connections:
        assert isinstance(connection, ModbusTcpConnection)
        plans = [plan_device(device, connection) for device in config.devices_on(connection)]
        tasks.append(asyncio.create_task(poll(connection, plans, counts, publisher)))
    print("polling", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    if publisher is not None:
        publisher.loop_stop()
        publisher.disconnect()
    counts["connections"] = len(tasks)
    out.write_text(json.dumps(counts), encoding="utf-8")  # noqa: ASYNC240 - once, at exit


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), "--publish" in sys.argv[3:]))
