"""`python -m agent.schemas`: regenerate the shipped schema files from the code's definitions."""

from __future__ import annotations

from pathlib import Path

from agent.schemas.files import write_all

if __name__ == "__main__":
    for path in write_all(Path(__file__).parent / "json"):
        print(path)
