"""The shipped Grafana files: the dashboards' JSON and their generator, for the tests that check them."""

from __future__ import annotations

import importlib.util
import json
import sys
from types import ModuleType
from typing import Any

from agent.i18n import DEFAULT_LANGUAGE
from tests.conftest import REPO

GRAFANA = REPO / "deploy" / "grafana"
GENERATOR_MODULE = "grafana_generate"


def load_generator() -> ModuleType:
    """deploy/grafana/generate.py as a module (it is a script, not part of the package)."""
    if GENERATOR_MODULE in sys.modules:
        return sys.modules[GENERATOR_MODULE]
    spec = importlib.util.spec_from_file_location(GENERATOR_MODULE, GRAFANA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[GENERATOR_MODULE] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def dashboards(language: str = DEFAULT_LANGUAGE) -> dict[str, dict[str, Any]]:
    """One language's dashboards by file name."""
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((GRAFANA / "dashboards" / language).glob("*.json"))
    }


def every_dashboard() -> dict[str, dict[str, Any]]:
    """Every language's dashboards, by <language>/<file>."""
    return {
        f"{p.parent.name}/{p.name}": json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((GRAFANA / "dashboards").glob("*/*.json"))
    }
