"""The agent's few exception types; each names the endpoint or device it concerns."""

from __future__ import annotations


class AgentError(Exception):
    """Base of the agent's own errors."""


class OutputError(AgentError):
    def __init__(self, output: str, reason: str) -> None:
        self.output = output
        super().__init__(f"output={output} {reason}")
