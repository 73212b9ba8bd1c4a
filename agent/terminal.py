"""Tables and lines that read whole at any terminal width and when piped.

At a terminal, a table is laid out for the terminal's width: columns that hold prose (a reason, an
error, a list of tags) wrap between words, never inside one; when even their longest words do not
fit, the least important columns are left out rather than cut. Piped (`| grep`, `| less`, a file),
nothing wraps: every row is one line at the table's natural width, so a grep finds it whole.

Widths are terminal cells, not characters: a CJK character takes two (rich's cell_len), so a
Chinese machine name or state is measured as the terminal shows it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TextIO

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

UNBOUNDED = 100_000  # "no width": piped output is never wrapped by us
TABLE_BOX = box.HEAVY_HEAD
CELL_PADDING = 1  # rich's default (0, 1): one space each side of a cell
HANGING_INDENT = "    "

Cell = str | Text


@dataclass(frozen=True)
class Column:
    header: str
    numeric: bool = False  # right-aligned
    wrap: bool = False  # prose: may wrap between words when the terminal is narrow
    drop: int = 0  # 0: always shown; when the table does not fit, the highest numbers go first
    style: str | None = None


@dataclass
class Row:
    cells: Sequence[Cell]
    end_section: bool = False


@dataclass
class FittedTable:
    """A table's content; `render(width)` lays it out for a width (None: piped, no limit)."""

    title: str | None
    columns: Sequence[Column]
    rows: list[Row] = field(default_factory=list)

    def add_row(self, *cells: Cell, end_section: bool = False) -> None:
        self.rows.append(Row(cells, end_section))

    def add_section(self) -> None:
        if self.rows:
            self.rows[-1].end_section = True

    def shown(self, width: int | None) -> list[int]:
        """The indexes of the columns laid out at this width."""
        return visible_columns(self.columns, self.rows, width)

    def render(self, width: int | None) -> Table:
        shown = self.shown(width)
        widths = column_widths([self.columns[i] for i in shown], self._cells(shown), width)
        table = Table(title=self.title, box=TABLE_BOX, expand=False)
        for index, column_width in zip(shown, widths, strict=True):
            column = self.columns[index]
            table.add_column(
                column.header,
                justify="right" if column.numeric else "left",
                width=column_width,
                no_wrap=not column.wrap,
                overflow="fold",  # never reached: a column is at least its longest word wide
                style=column.style,
            )
        for row in self.rows:
            table.add_row(*(row.cells[i] for i in shown), end_section=row.end_section)
        return table

    def _cells(self, shown: Sequence[int]) -> list[list[Cell]]:
        return [[self.columns[i].header, *(row.cells[i] for row in self.rows)] for i in shown]


def plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def longest_line(cell: Cell) -> int:
    return max((cell_len(line) for line in plain(cell).split("\n")), default=0)


def longest_word(cell: Cell) -> int:
    return max((cell_len(word) for word in plain(cell).split()), default=0)


def overhead(columns: int) -> int:
    """Borders and padding of a table of this many columns (edges included)."""
    return columns + 1 + 2 * CELL_PADDING * columns


def column_range(column: Column, cells: Sequence[Cell]) -> tuple[int, int]:
    """(narrowest, widest) the column can be: prose down to its longest word, the rest whole."""
    widest = max((longest_line(c) for c in cells), default=0)
    if not column.wrap:
        return widest, widest
    return max((longest_word(c) for c in cells), default=0), widest


def visible_columns(columns: Sequence[Column], rows: Sequence[Row], width: int | None) -> list[int]:
    """The columns that fit: all of them piped; else the most important ones whose narrowest
    layout fits, dropping the highest `drop` level first."""
    shown = list(range(len(columns)))
    if width is None:
        return shown
    levels = sorted({c.drop for c in columns if c.drop > 0}, reverse=True)
    while True:
        narrowest = sum(
            column_range(columns[i], [columns[i].header, *(r.cells[i] for r in rows)])[0] for i in shown
        )
        if narrowest + overhead(len(shown)) <= width or not levels:
            return shown
        level = levels.pop(0)
        shown = [i for i in shown if columns[i].drop != level]


def column_widths(columns: Sequence[Column], cells: Sequence[Sequence[Cell]], width: int | None) -> list[int]:
    """Each column at its widest; over the width, prose columns give up room between words,
    the one with the most room to give first, never below its longest word."""
    ranges = [column_range(c, column_cells) for c, column_cells in zip(columns, cells, strict=True)]
    widths = [widest for _, widest in ranges]
    if width is None:
        return widths
    excess = sum(widths) + overhead(len(columns)) - width
    while excess > 0:
        slack = [w - low for w, (low, _) in zip(widths, ranges, strict=True)]
        most = max(range(len(widths)), key=lambda i: slack[i], default=None)
        if most is None or slack[most] <= 0:
            break  # cannot shrink further: the terminal shows what it can
        widths[most] -= 1
        excess -= 1
    return widths


def is_piped(stream: TextIO) -> bool:
    return not stream.isatty()


def output_console(stream: TextIO | None = None) -> Console:
    """A console for command output: the terminal's width at a terminal; no wrapping when piped."""
    stream = stream or sys.stdout
    if is_piped(stream):
        return Console(file=stream, width=UNBOUNDED, soft_wrap=True)
    return Console(file=stream)


def table_width(console: Console) -> int | None:
    """The width tables are laid out for on this console: None when it does not wrap (piped)."""
    return None if console.width >= UNBOUNDED else console.width


def print_table(console: Console, table: FittedTable) -> None:
    console.print(table.render(table_width(console)))


def wrap_words(text: str, width: int | None, indent: str = HANGING_INDENT) -> list[str]:
    """One line of text as lines of at most `width` cells, broken between words only (a word
    longer than a line stays whole on its own line); continuation lines are indented. None: as is."""
    if width is None or cell_len(text) <= width:
        return [text]
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and cell_len(candidate) > width:
            lines.append(current)
            current = indent + word
        else:
            current = candidate
    lines.append(current)
    return lines


def print_lines(text: str, stream: TextIO) -> None:
    """A message (an error, a summary) wrapped between words at a terminal, whole when piped."""
    width = None if is_piped(stream) else Console(file=stream).width
    for line in wrap_words(text, width):
        print(line, file=stream)
