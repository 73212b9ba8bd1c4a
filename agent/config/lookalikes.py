"""Characters that look like ASCII but are not: what a Chinese input method left switched on
(full-width colons, digits and commas, the ideographic space) or a Cyrillic or Greek letter
pasted from somewhere (U+0430 CYRILLIC SMALL LETTER A is not `a`). A key, an id or a number with
one of them fails in a way the eye cannot see, so every message about such a word names the
character, its code point and the ASCII character it looks like.

Full-width forms are found by NFKC normalisation (Unicode's own compatibility mapping); the
Cyrillic and Greek letters, dashes and quotes that Unicode's confusables list (UTS #39) pairs with
an ASCII character are listed below: only those, the ones seen in keys and ids, not the whole list.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

# code point -> the ASCII character it is taken for; written as code points, as a file of look-alikes
# would otherwise be unreadable itself
CONFUSABLE = {
    # Cyrillic
    0x0430: 'a', 0x0435: 'e', 0x043E: 'o', 0x0440: 'p', 0x0441: 'c', 0x0443: 'y', 0x0445: 'x',
    0x0456: 'i', 0x0458: 'j', 0x0455: 's', 0x0501: 'd', 0x04BB: 'h', 0x04CF: 'l', 0x051B: 'q',
    0x051D: 'w', 0x0410: 'A', 0x0412: 'B', 0x0415: 'E', 0x041A: 'K', 0x041C: 'M', 0x041D: 'H',
    0x041E: 'O', 0x0420: 'P', 0x0421: 'C', 0x0422: 'T', 0x0425: 'X', 0x0423: 'Y', 0x0406: 'I',
    0x0408: 'J', 0x0405: 'S',
    # Greek
    0x03BF: 'o', 0x03BD: 'v', 0x03C1: 'p', 0x03B9: 'i', 0x03BA: 'k', 0x03B1: 'a', 0x0391: 'A',
    0x0392: 'B', 0x0395: 'E', 0x0396: 'Z', 0x0397: 'H', 0x0399: 'I', 0x039A: 'K', 0x039C: 'M',
    0x039D: 'N', 0x039F: 'O', 0x03A1: 'P', 0x03A4: 'T', 0x03A7: 'X', 0x03A5: 'Y',
    # dashes, dots and quotes that word processors and input methods put in
    0x2010: '-', 0x2011: '-', 0x2012: '-', 0x2013: '-', 0x2014: '-', 0x2212: '-', 0x3002: '.',
    0x3001: ',', 0x2018: "'", 0x2019: "'", 0x201C: '"', 0x201D: '"',
}  # fmt: skip


MAX_LISTED = 3  # look-alikes named one by one in a message; a whole word of them is typed again anyway
MAX_WORD = 40  # characters of the word quoted
YAML_SYNTAX = frozenset(":,[]{}#-\"' ")  # a look-alike of one of these breaks the file's structure


@dataclass(frozen=True)
class Lookalike:
    """One character of a word that looks like an ASCII one."""

    position: int  # 1-based, as a person counts characters
    char: str
    ascii: str

    def __str__(self) -> str:
        name = unicodedata.name(self.char, "unnamed")
        shown = "a space" if self.ascii == " " else f"'{self.ascii}'"
        code = f"U+{ord(self.char):04X}"
        return f"'{self.char}' ({code} {name}) at character {self.position}, a look-alike of {shown}"


def ascii_twin(char: str) -> str | None:
    """The ASCII character this one is taken for, or None (ASCII itself, or no look-alike)."""
    if char.isascii():
        return None
    if ord(char) in CONFUSABLE:
        return CONFUSABLE[ord(char)]
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 and folded.isascii() and folded.isprintable() else None


def lookalikes(word: str) -> list[Lookalike]:
    found = []
    for index, char in enumerate(word):
        twin = ascii_twin(char)
        if twin is not None:
            found.append(Lookalike(index + 1, char, twin))
    return found


def as_ascii(word: str) -> str:
    """The word as it was meant: every look-alike replaced by its ASCII character."""
    return "".join(ascii_twin(char) or char for char in word)


def lookalike_note(word: str) -> str:
    """'' or what a message says about a word's look-alike characters."""
    found = lookalikes(word)
    if not found:
        return ""
    listed = "; ".join(str(item) for item in found[:MAX_LISTED])
    if len(found) > MAX_LISTED:
        listed += f" and {len(found) - MAX_LISTED} more"
    it = "it" if len(found) == 1 else "them"
    shown = word if len(word) <= MAX_WORD else f"{word[:MAX_WORD]}..."
    return f"'{shown}' contains the non-ASCII {listed}: retype {it} in ASCII"


def syntax_lookalike(text: str, end: int) -> tuple[int, Lookalike] | None:
    """The last character before `end` (a YAML syntax error's position), on its line or the line
    before (where a `key： value` is found wanting), that looks like a character YAML's syntax is
    made of (`：` for `:`), with its offset in the text; or None."""
    line_start = text.rfind("\n", 0, end) + 1
    start = text.rfind("\n", 0, max(line_start - 1, 0)) + 1
    for index in range(min(end, len(text) - 1), start - 1, -1):
        twin = ascii_twin(text[index])
        if twin is not None and twin in YAML_SYNTAX:
            return index, Lookalike(index - text.rfind("\n", 0, index), text[index], twin)
    return None
