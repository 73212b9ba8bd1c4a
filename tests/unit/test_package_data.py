"""Every data file of the package (templates, scripts, styles, catalogues, profiles) is listed in
pyproject's package-data, so it ships in the wheel: a page without its script is a blank page on
the gateway."""

from __future__ import annotations

import hashlib
import re
import tomllib

from tests.conftest import REPO


def test_every_file_of_the_package_that_is_not_python_ships_in_the_wheel() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["agent"]
    package = REPO / "agent"
    data = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert len(data) > 20  # the walk still finds the package's data
    # as setuptools globs them: '*' never crosses a folder
    shipped = [
        re.compile("[^/]*".join(re.escape(part) for part in pattern.split("*")) + "$") for pattern in patterns
    ]
    missing = [name for name in data if not any(glob.match(name) for glob in shipped)]
    assert missing == []
    assert "web/static/vendor/echarts.min.js" in data
    assert "web/static/vendor/ECHARTS-LICENSE.txt" in data  # the licence travels with the library


def test_the_vendored_chart_library_is_the_version_and_file_recorded() -> None:
    vendor = REPO / "agent" / "web" / "static" / "vendor"
    record = (vendor / "ECHARTS-VERSION.txt").read_text(encoding="utf-8")
    version = re.search(r"Apache ECharts (\d+\.\d+\.\d+)", record)
    digest = re.search(r"sha256 of echarts.min.js: ([0-9a-f]{64})", record)
    assert version is not None
    assert digest is not None
    library = (vendor / "echarts.min.js").read_bytes()
    assert f'version:"{version.group(1)}"'.encode() in library
    assert hashlib.sha256(library).hexdigest() == digest.group(1)  # updated with its record, or not at all
    assert "Apache License" in (vendor / "ECHARTS-LICENSE.txt").read_text(encoding="utf-8")
