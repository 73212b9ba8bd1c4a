"""A Modbus server that misbehaves on purpose, on raw asyncio sockets (no pymodbus), so every
hostile reply is exactly what the test says. It speaks Modbus TCP (MBAP headers) or RTU frames
over TCP (a serial-to-Ethernet gateway), to any number of units. Honest replies carry a value
unique per register (VALUE(address)), so a reply attributed to the wrong request cannot go
unnoticed.

Run as a script (`python tests/integration/hostile_modbus.py --port P [--framing rtu]`) it is a
simulator that a test can kill with SIGKILL and start again on the same port: it imports nothing
beyond the standard library, so it is back within a few tens of milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
from dataclasses import dataclass, field
from typing import Literal

Framing = Literal["socket", "rtu"]
RTU_REQUEST_BYTES = 8  # unit, function, address (2), count (2), CRC (2): every read request
RTU_CRC_POLYNOMIAL = 0xA001  # Modbus over serial line v1.02, 6.2.2 (reflected 0x8005)

# Replies a real device or gateway was seen to send, or that a broken one could:
MODES = (
    "honest",
    "exception-N",  # an exception reply with code N
    "wrong-byte-count",  # byte count 2 more than the registers that follow
    "short",  # byte count and registers 2 bytes short
    "wrong-function",
    "wrong-unit",
    "garbage",
    "close",  # the connection closed instead of a reply (FIN)
    "reset",  # the connection reset instead of a reply (RST)
    "odd-byte-count",  # an odd byte count, one more than the register bytes that follow
    "huge-byte-count",  # byte count 255 and 255 bytes: a frame longer than Modbus allows
    "short-mbap",  # an MBAP length field too short for the PDU that follows it (TCP only)
    "bad-crc",  # an RTU frame whose CRC is wrong (RTU only)
    # coils and discrete inputs (functions 1 and 2): a byte count that does not fit the bit count
    # asked for, consistent with the bytes that follow (so the framing alone cannot tell)
    "bits-extra-byte",  # one byte more than the bits need
    "bits-as-registers",  # two bytes per bit, as a device that answers every read from registers
    "bits-short",  # one byte fewer than the bits need
)
BIT_FUNCTIONS = (1, 2)


def value_of(address: int) -> int:
    return (address * 37 + 11) % 65536


def bit_of(address: int) -> bool:
    """A coil's or discrete input's honest value: unique enough that a shifted reply shows."""
    return bool(value_of(address) & 4)


def pack_bits(address: int, count: int) -> bytes:
    """Bits LSB first, padded to whole bytes (Modbus application protocol v1.1b3, 6.1)."""
    packed = bytearray((count + 7) // 8)
    for i in range(count):
        if bit_of(address + i):
            packed[i // 8] |= 1 << (i % 8)
    return bytes(packed)


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ RTU_CRC_POLYNOMIAL if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + struct.pack("<H", crc16(frame))


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST rather than a FIN, as a gateway that reboots or drops the socket does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class HostileServer:
    mode: str = "honest"
    framing: Framing = "socket"
    hostile_units: frozenset[int] | None = None  # None: every unit misbehaves as `mode` says
    late_by_s: float = 0.0
    refused: frozenset[int] = frozenset()  # addresses this device does not have: exception 02
    seen: list[tuple[int, int]] = field(default_factory=list)  # (address, count) of every request
    units_seen: list[int] = field(default_factory=list)
    requests: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    connections: int = 0
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port, reuse_address=True)
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
                if self.framing == "rtu":
                    frame = await reader.readexactly(RTU_REQUEST_BYTES)
                    tid, unit, pdu = 0, frame[0], frame[1:6]
                else:
                    header = await reader.readexactly(7)
                    tid, _protocol, length, unit = struct.unpack(">HHHB", header)
                    pdu = await reader.readexactly(length - 1)
                self.requests += 1
                self.units_seen.append(unit)
                reply = self._reply(tid, unit, pdu)
                if reply == b"close":
                    writer.close()
                    return
                if reply == b"reset":
                    reset(writer)
                    return
                if self.late_by_s:
                    delay, self.late_by_s = self.late_by_s, 0.0  # only this one reply is late
                    asyncio.get_running_loop().call_later(delay, writer.write, reply)
                    continue
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        except asyncio.CancelledError:  # the event loop ends with the test: nothing to report
            return

    def _frame(self, tid: int, unit: int, body: bytes, *, mbap_length: int | None = None) -> bytes:
        if self.framing == "rtu":
            return with_crc(bytes([unit]) + body)
        length = len(body) + 1 if mbap_length is None else mbap_length
        return struct.pack(">HHHB", tid, 0, length, unit) + body

    def _reply(self, tid: int, unit: int, pdu: bytes) -> bytes:
        function, address, count = struct.unpack(">BHH", pdu[:5])
        self.seen.append((address, count))
        if self.refused & set(range(address, address + count)):
            return self._frame(tid, unit, bytes([function | 0x80, 2]))
        mode = self.mode if self.hostile_units is None or unit in self.hostile_units else "honest"
        if function in BIT_FUNCTIONS:
            return self._frame(tid, unit, self._bits_body(function, address, count, mode))
        return self._registers_reply(tid, unit, function, address, count, mode)

    def _registers_reply(
        self, tid: int, unit: int, function: int, address: int, count: int, mode: str
    ) -> bytes:
        registers = b"".join(struct.pack(">H", value_of(address + i)) for i in range(count))
        body = bytes([function, len(registers)]) + registers
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
        elif mode in ("close", "reset"):
            return mode.encode()
        elif mode == "odd-byte-count":
            body = bytes([function, len(registers) + 1]) + registers
        elif mode == "huge-byte-count":
            body = bytes([function, 255]) + (registers * 128)[:255]
        elif mode == "short-mbap" and self.framing == "socket":
            return self._frame(tid, unit, body, mbap_length=2)
        elif mode == "bad-crc" and self.framing == "rtu":
            frame = self._frame(tid, unit, body)
            return frame[:-2] + bytes([frame[-2] ^ 0xFF, frame[-1]])
        return self._frame(tid, unit, body)

    @staticmethod
    def _bits_body(function: int, address: int, count: int, mode: str) -> bytes:
        packed = pack_bits(address, count)
        if mode == "bits-extra-byte":
            packed += b"\xff"
        elif mode == "bits-as-registers":
            packed = pack_bits(address, 16 * count)
        elif mode == "bits-short":
            packed = packed[:-1]
        elif mode.startswith("exception-"):
            return bytes([function | 0x80, int(mode.split("-")[1])])
        return bytes([function, len(packed)]) + packed


async def serve_forever(port: int, framing: Framing) -> None:
    server = HostileServer(framing=framing)
    await server.start(port)
    print(f"serving {framing} on {server.port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="an honest Modbus simulator to kill and restart")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--framing", choices=["socket", "rtu"], default="socket")
    arguments = parser.parse_args()
    asyncio.run(serve_forever(arguments.port, arguments.framing))
