"""JSON Lines file output: one record per line, flushed and fsynced per batch."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Self

from agent.exceptions import OutputError
from agent.sinks.base import Envelope


class FileSink:
    def __init__(self, path: str, *, truncate: bool = False) -> None:
        self.name = "file"
        self.path = path
        self.mode = "w" if truncate else "a"
        self._stream: IO[str] | None = None

    async def __aenter__(self) -> Self:
        if self.path == "-":
            self._stream = sys.stdout
            return self
        target = Path(self.path)
        try:
            self._stream = await asyncio.to_thread(self._open, target, self.mode)
        except OSError as error:
            raise OutputError(self.name, f"cannot open {target}: {error.strerror}") from error
        return self

    @staticmethod
    def _open(target: Path, mode: str) -> IO[str]:
        target.parent.mkdir(parents=True, exist_ok=True)
        return target.open(mode, encoding="utf-8")

    async def __aexit__(self, *exc: object) -> None:
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()
        self._stream = None

    async def write(self, batch: Sequence[Envelope]) -> None:
        if not batch:
            return
        stream = self._stream
        if stream is None:
            raise OutputError(self.name, "written to while not open")
        text = b"".join(e.payload_json() + b"\n" for e in batch).decode()
        await asyncio.to_thread(self._write_durably, stream, text)

    @staticmethod
    def _write_durably(stream: IO[str], text: str) -> None:
        stream.write(text)
        stream.flush()
        if stream is not sys.stdout:
            os.fsync(stream.fileno())
