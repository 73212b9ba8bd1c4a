"""The package's data folders (configs/, i18n/, web/) on disk.

Wheels install as plain files (pip never installs a zipped package), so each is a real directory
that can be listed, read and copied; a missing one means a broken install, and says so.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def package_folder(name: str) -> Path:
    folder = importlib.resources.files("agent") / name
    if not isinstance(folder, Path) or not folder.is_dir():
        raise RuntimeError(f"the package data folder {folder} is missing: reinstall shopfloor-edge-agent")
    return folder
