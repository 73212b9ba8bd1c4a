"""The schema files shipped in the package (agent/schemas/json/), and the index of topics."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

from agent.schemas.catalogue import STATUS_FILE, record_schema_file, topic_shapes, umh_schema_file
from agent.schemas.records import STATUS_SCHEMA, record_schemas
from agent.schemas.umh import historian_schemas

INDEX_FILE = "topics.json"


def schemas_dir() -> Path:
    """The package's schemas/json/ folder on disk (wheels install as plain files)."""
    folder = importlib.resources.files("agent") / "schemas" / "json"
    if not isinstance(folder, Path) or not folder.is_dir():
        raise RuntimeError(f"the package data folder {folder} is missing: reinstall shopfloor-edge-agent")
    return folder


def generated() -> dict[str, Any]:
    """Every file by name, as the code defines it now."""
    files: dict[str, Any] = {record_schema_file(k): s for k, s in record_schemas().items()}
    files |= {umh_schema_file(k): s for k, s in historian_schemas().items()}
    files[STATUS_FILE] = STATUS_SCHEMA
    files[INDEX_FILE] = {
        "description": "every MQTT topic shape of the agent, with the schema of its payloads",
        "topics": [
            {
                "style": shape.style,
                "topic": shape.topic,
                "kind": shape.kind.value if shape.kind else "status",
                "schema": shape.schema,
            }
            for shape in topic_shapes()
        ],
    }
    return files


def render(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in sorted(generated().items()):
        path = folder / name
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    return written


def load(name: str) -> Any:
    return json.loads((schemas_dir() / name).read_text(encoding="utf-8"))
