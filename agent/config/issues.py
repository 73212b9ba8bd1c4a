"""Configuration problems, each tied to the file, line and column it came from."""

from __future__ import annotations

from dataclasses import dataclass

ConfigPath = tuple[str | int, ...]


def format_path(path: ConfigPath) -> str:
    """Render ('machines', 3, 'profile') as machines[3].profile."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "<root>"


@dataclass(frozen=True, order=True)
class SourceMark:
    file: str
    line: int  # 1-based, as editors count
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class ConfigIssue:
    mark: SourceMark
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.mark}: {self.path}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a configuration, in file and line order."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(set(issues))
        super().__init__("\n".join(str(issue) for issue in self.issues))
