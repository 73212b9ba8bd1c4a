"""A Modbus TCP server that misbehaves on purpose, on raw asyncio sockets (no pymodbus), so every
hostile reply is exactly what the test says. Honest replies carry a value unique per register
(VALUE(address)), so a reply attributed to the wrong request cannot go unnoticed."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field


def value_of(address: int) -> int:
    return (address * 37 + 11) % 65536


@dataclass
class HostileServer:
    mode: str = "honest"
    late_by_s: float = 0.0
    refused: frozenset[int] = frozenset()  # addresses this device does not have: exception 02
    seen: list[tuple[int, int]] = field(default_factory=list)  # (address, count) of every request
    requests: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    connections: int = 0
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for writer in self._writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            while True:
                header = await reader.readexactly(7)
                tid, _protocol, length, unit = struct.unpack(">HHHB", header)
                pdu = await reader.readexactly(length - 1)
                self.requests += 1
                reply = self._reply(tid, unit, pdu)
                if reply is None:
                    writer.close()  # connection reset mid-request
                    return
                if self.late_by_s:
                    delay, self.late_by_s = self.late_by_s, 0.0  # only this one reply is late
                    asyncio.get_running_loop().call_later(delay, writer.write, reply)
                    continue
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def _reply(self, tid: int, unit: int, pdu: bytes) -> bytes | None:
        function, address, count = struct.unpack(">BHH", pdu[:5])
        self.seen.append((address, count))
        if self.refused & set(range(address, address + count)):
            body = bytes([function | 0x80, 2])
            return struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body
        registers = b"".join(struct.pack(">H", value_of(address + i)) for i in range(count))
        body = bytes([function, len(registers)]) + registers
        mode = self.mode
        if mode.startswith("exception-"):
            body = bytes([function | 0x80, int(mode.split("-")[1])])
        elif mode == "wrong-byte-count":
            body = bytes([function, len(registers) + 2]) + registers
        elif mode == "short":
            body = bytes([function, len(registers) - 2]) + registers[:-2]
        elif mode == "wrong-function":
            body = bytes([function + 1, len(registers)]) + registers
        elif mode == "wrong-unit":
            unit = (unit + 1) % 256
        elif mode == "garbage":
            return b"\xde\xad\xbe\xef" * 5
        elif mode == "reset":
            return None
        return struct.pack(">HHHB", tid, 0, len(body) + 1, unit) + body
