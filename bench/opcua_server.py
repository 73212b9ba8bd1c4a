"""A bare asyncua server for the OPC UA benchmark: N Double variables (nsu=urn:bench;i=1000+k).
Once a second CHANGING of them (taking turns) are set to the server's wall-clock time, so a
client can tell a changed value's age.

Run by bench/opcua.py in its own process: `python -m bench.opcua_server PORT N CHANGING`.
"""

from __future__ import annotations

import asyncio
import sys
import time

from asyncua import ua
from asyncua.server import Server

BENCH_URI = "urn:bench"
FIRST_ID = 1000


async def serve(port: int, count: int, changing: int) -> None:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    namespace = await server.register_namespace(BENCH_URI)
    folder = await server.nodes.objects.add_folder(namespace, "Bench")
    variables = [
        await folder.add_variable(
            ua.NodeId(FIRST_ID + k, namespace), f"v{k}", time.time(), ua.VariantType.Double
        )
        for k in range(count)
    ]
    async with server:
        print("serving", flush=True)
        turn = 0
        while True:
            now = time.time()
            for k in range(changing):
                variable = variables[(turn + k) % count]
                await server.write_attribute_value(
                    variable.nodeid, ua.DataValue(ua.Variant(now, ua.VariantType.Double))
                )
            turn = (turn + changing) % count
            await asyncio.sleep(1.0 - (time.time() - now) % 1.0)


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
