"""Read planning: compile a device's tag map once into the fewest Modbus requests.

Greedy left-to-right merging is optimal here: a request starting at the first unread tag that
extends as far as the size and gap limits allow covers every tag any other first request could,
so no plan has fewer requests (tests check this against brute force).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

from agent.config.profile import Table, TagSpec
from agent.drivers.codec import RequestDecoder, request_decoder

FUNCTION_CODE = {Table.COIL: 1, Table.DISCRETE_INPUT: 2, Table.HOLDING: 3, Table.INPUT: 4}


@dataclass(frozen=True)
class PlannedTag:
    name: str
    spec: TagSpec
    offset: int  # position of the tag's first register (or bit) inside the request


@dataclass(frozen=True)
class ReadRequest:
    table: Table
    address: int
    count: int
    tags: tuple[PlannedTag, ...]
    interval_s: float | None = None  # None: every cycle
    # compiled at planning: the values of every tag from the reply, in the order of `tags`
    decode: RequestDecoder = field(init=False, repr=False, compare=False)
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        layout = [(tag.offset, tag.spec) for tag in self.tags]
        object.__setattr__(self, "decode", request_decoder(self.table, self.count, layout))
        object.__setattr__(self, "names", tuple(tag.name for tag in self.tags))

    @property
    def key(self) -> tuple[Table, int, int]:
        return (self.table, self.address, self.count)

    @property
    def function_code(self) -> int:
        return FUNCTION_CODE[self.table]

    @property
    def filled(self) -> int:
        """Registers (bits) read only to merge requests: gap filling."""
        used: set[int] = set()
        for tag in self.tags:
            used.update(range(tag.offset, tag.offset + tag.spec.width))
        return self.count - len(used)


@dataclass(frozen=True)
class DevicePlan:
    device: str
    unit: int
    requests: tuple[ReadRequest, ...]


def plan_reads(
    tags: dict[str, TagSpec],
    *,
    addressing: int,
    max_gap: int,
    max_registers: int,
    max_bits: int,
) -> tuple[ReadRequest, ...]:
    """Tags with different poll intervals are planned apart: a slow counter never rides along in
    (and slows down) the fast state request."""
    by_interval: dict[float | None, dict[str, TagSpec]] = defaultdict(dict)
    for name, spec in tags.items():
        by_interval[spec.interval_s][name] = spec
    requests: list[ReadRequest] = []
    for interval in sorted(by_interval, key=lambda i: (i is not None, i or 0.0)):
        planned = _plan_group(
            by_interval[interval],
            addressing=addressing,
            max_gap=max_gap,
            max_registers=max_registers,
            max_bits=max_bits,
        )
        requests += [replace(r, interval_s=interval) for r in planned]
    return tuple(requests)


def _plan_group(
    tags: dict[str, TagSpec], *, addressing: int, max_gap: int, max_registers: int, max_bits: int
) -> tuple[ReadRequest, ...]:
    by_table: dict[Table, list[tuple[int, str, TagSpec]]] = defaultdict(list)
    for name, spec in tags.items():
        by_table[spec.table].append((spec.address - addressing, name, spec))
    requests: list[ReadRequest] = []
    for table in sorted(by_table, key=lambda t: FUNCTION_CODE[t]):
        limit = max_bits if table.is_bit_table else max_registers
        entries = sorted(by_table[table], key=lambda e: (e[0], e[1]))
        group: list[tuple[int, str, TagSpec]] = []
        start = end = 0
        for address, name, spec in entries:
            tag_end = address + spec.width
            if group and address - end <= max_gap and max(end, tag_end) - start <= limit:
                group.append((address, name, spec))
                end = max(end, tag_end)
                continue
            if group:
                requests.append(_request(table, start, end, group))
            group, start, end = [(address, name, spec)], address, tag_end
        if group:
            requests.append(_request(table, start, end, group))
    return tuple(requests)


def _request(table: Table, start: int, end: int, group: list[tuple[int, str, TagSpec]]) -> ReadRequest:
    planned = tuple(PlannedTag(name, spec, address - start) for address, name, spec in group)
    return ReadRequest(table, start, end - start, planned)


def split_at_gaps(request: ReadRequest) -> tuple[ReadRequest, ...]:
    """The request's tags in contiguous runs only: no register read that no tag needs. For devices
    that refuse a read touching an address they do not have (exception 02)."""
    placed = sorted(((request.address + t.offset, t) for t in request.tags), key=lambda item: item[0])
    runs: list[ReadRequest] = []
    group: list[tuple[int, str, TagSpec]] = []
    start = end = 0
    for address, tag in placed:
        if group and address > end:
            runs.append(_request(request.table, start, end, group))
            group = []
        if not group:
            start = end = address
        group.append((address, tag.name, tag.spec))
        end = max(end, address + tag.spec.width)
    runs.append(_request(request.table, start, end, group))
    return tuple(replace(run, interval_s=request.interval_s) for run in runs)
