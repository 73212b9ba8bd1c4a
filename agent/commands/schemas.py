"""`edge-agent schemas`: where the published payload schemas are, which topic uses which, and a
copy of them for a consumer (an MES, a SCADA, a UNS validator) to load."""

from __future__ import annotations

import shutil
from pathlib import Path

from agent.schemas.catalogue import topic_shapes
from agent.schemas.files import schemas_dir


def shape_lines(style: str | None = None) -> list[str]:
    shapes = [s for s in topic_shapes() if style is None or s.style == style]
    width = max(len(s.topic) for s in shapes)
    return [f"{s.style:<6} {s.topic:<{width}}  {s.schema}" for s in shapes]


def copy_schemas(target: Path) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted(schemas_dir().glob("*.json"))
    return [Path(shutil.copy2(source, target / source.name)) for source in sources]
