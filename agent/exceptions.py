"""The agent's few exception types; each names the endpoint or device it concerns."""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's own errors."""


class OutputError(AgentError):
    def __init__(self, output: str, reason: str) -> None:
        self.output = output
        super().__init__(f"output={output} {reason}")


def describe(error: BaseException) -> str:
    """An error in one line, as logs and statuses say it: its type, and its message if it has one."""
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
