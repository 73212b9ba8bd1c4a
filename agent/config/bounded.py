"""Reading a file that a configuration names: a regular file only, never more than a bound, and
never a read that can block.

A workshop file, a device profile or a secret file is typed by a person, and a slip (or a hostile
edit) can name /dev/zero, a FIFO nobody writes to, a directory or a 50 MB log. Each is refused by
`stat` before the file is opened, with a message naming what the path really is; the file is then
opened non-blocking and read only up to the bound, so a file that grows or is swapped meanwhile
cannot get past it either.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

READ_CHUNK = 64 * 1024

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class FileReadError(Exception):
    """Why a file cannot be used, in words for the person who named it (the caller adds the path)."""


def _kind(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def _size(count: int) -> str:
    if count >= 2**20:
        return f"{count / 2**20:.1f} MB"
    if count >= 2**10:
        return f"{count / 2**10:.0f} KB"
    return f"{count} bytes"


def check_regular_file(path: Path, limit: int, what: str) -> None:
    """FileReadError unless `path` is a regular file of at most `limit` bytes (found by stat alone,
    for files another library opens)."""
    try:
        before = path.stat()
    except OSError as error:
        raise FileReadError(error.strerror or str(error)) from None
    if not stat.S_ISREG(before.st_mode):
        raise FileReadError(f"{_kind(before.st_mode)}, not a regular file: a {what} must be a file")
    if before.st_size > limit:
        raise FileReadError(f"{_size(before.st_size)}, more than a {what} can be ({_size(limit)} at most)")


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """The content of a regular file of at most `limit` bytes; FileReadError otherwise."""
    check_regular_file(path, limit, what)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise FileReadError(error.strerror or str(error)) from None
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):  # swapped for something else since the stat above
            raise FileReadError(f"{_kind(opened.st_mode)}, not a regular file: a {what} must be a file")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(descriptor, min(READ_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as error:
        raise FileReadError(error.strerror or str(error)) from None
    finally:
        os.close(descriptor)
    if total > limit:
        raise FileReadError(f"more than a {what} can be ({_size(limit)} at most)")
    return b"".join(chunks)
