"""The edge node's birth/death sequence number (bdSeq), kept on disk: it starts at 0 and goes up by
one with every MQTT CONNECT, wrapping after 255, across restarts of the agent
(tck-id-topics-nbirth-bdseq-increment). A host application pairs an NDEATH with its NBIRTH by it:
a number used again after a restart could let a stale death certificate kill a live session.

The number is saved before the CONNECT that carries it in its will, so a crash right after the
CONNECT cannot hand the same number to the next one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from agent.config.bounded import FileReadError, read_bounded
from agent.exceptions import OutputError
from agent.sinks.sparkplug_payloads import SEQ_MODULUS

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 4096


class BdSeqStore:
    def __init__(self, path: Path, group_id: str, edge_node_id: str) -> None:
        self.path = path
        self.key = f"{group_id}/{edge_node_id}"

    def _last(self) -> int | None:
        """The bdSeq of the last CONNECT of this edge node; None: none yet (or another node's file)."""
        if not self.path.exists():
            return None
        try:
            saved = json.loads(read_bounded(self.path, MAX_FILE_BYTES, "bdSeq file"))
        except (ValueError, FileReadError) as error:
            log.warning(
                "output=sparkplug file=%s event=bdseq_unreadable error=%r starting_at=0",
                self.path,
                str(error),
            )
            return None
        value = saved.get("bd_seq") if isinstance(saved, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < SEQ_MODULUS:
            log.warning("output=sparkplug file=%s event=bdseq_unreadable starting_at=0", self.path)
            return None
        return value if saved.get("edge_node") == self.key else None

    def next(self) -> int:
        """The bdSeq for the next CONNECT, saved (fsync'd) before it is returned."""
        last = self._last()
        value = 0 if last is None else (last + 1) % SEQ_MODULUS
        self._save(value)
        return value

    def unused(self, value: int) -> None:
        """The CONNECT that was to carry `value` never went out (the broker could not be reached):
        the next one takes the same number, so bdSeq counts CONNECT packets, not attempts."""
        if self._last() == value:
            self._save((value - 1) % SEQ_MODULUS)

    def _save(self, value: int) -> None:
        body = json.dumps({"edge_node": self.key, "bd_seq": value}).encode()
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as file:
                file.write(body)
                file.flush()
                os.fsync(file.fileno())
            temporary.replace(self.path)
        except OSError as error:
            raise OutputError("sparkplug", f"cannot save the bdSeq in {self.path}: {error}") from error
