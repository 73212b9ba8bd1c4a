"""What ships inside the package: the sample workshops and the device profiles.

They are package data (agent/configs/), found through importlib.resources, so `edge-agent demo`
and `edge-agent init` work from any install and any working directory, and a workshop finds the
shipped profiles without copying them.

    agent/configs/<name>-workshop.yaml     a sample workshop; `init --example <name>` writes it
    agent/configs/devices/<profile>.yaml   device profiles, the last place a profile is looked up
    agent/configs/tables/grid-factors.yaml the published grid emission factors (site.grid)
"""

from __future__ import annotations

from pathlib import Path

from agent.package_data import package_folder

WORKSHOP_SUFFIX = "-workshop.yaml"
DEFAULT_EXAMPLE = "grinding"
SHIPPED_PROFILES_LABEL = "profiles shipped with edge-agent"


def shipped_dir() -> Path:
    """The package's configs/ folder on disk. Wheels install as plain files (pip never installs a
    zipped package), so this is a real directory that can be listed, read and copied."""
    return package_folder("configs")


def shipped_profiles_dir() -> Path:
    return shipped_dir() / "devices"


def examples() -> dict[str, Path]:
    """Sample workshops by name: grinding -> .../grinding-workshop.yaml."""
    return {
        path.name.removesuffix(WORKSHOP_SUFFIX): path
        for path in sorted(shipped_dir().glob(f"*{WORKSHOP_SUFFIX}"))
    }


def example(name: str = DEFAULT_EXAMPLE) -> Path:
    found = examples()
    if name not in found:
        raise KeyError(f"no example workshop '{name}'; there are: {', '.join(found)}")
    return found[name]
