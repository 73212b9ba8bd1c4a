"""deploy/install.sh staged into a temporary root: install, upgrade in place, a failed upgrade,
uninstall; and the unit file as systemd itself judges it."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration
INSTALL = REPO / "deploy" / "install.sh"
MAX_EXPOSURE_TENTHS = 15  # systemd-analyze security: 1.5 or less


def install(root: Path, *options: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["bash", str(INSTALL), "--destdir", str(root), *options],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def staged_unit(root: Path, tmp_path: Path) -> Path:
    """The installed unit with its paths pointing into the staged root, as systemd would see them."""
    text = (root / "etc/systemd/system/edge-agent.service").read_text(encoding="utf-8")
    unit = tmp_path / "edge-agent.service"
    unit.write_text(text.replace("/opt/edge-agent/", f"{root}/opt/edge-agent/"), encoding="utf-8")
    return unit


def test_help_lists_every_option_the_script_takes() -> None:
    done = subprocess.run(["bash", str(INSTALL), "--help"], capture_output=True, text=True, check=True)
    script = INSTALL.read_text(encoding="utf-8")
    options = set(re.findall(r"^\s+(--[a-z-]+)\)", script, flags=re.MULTILINE))
    assert options >= {
        "--bundle",
        "--wheelhouse",
        "--start",
        "--no-start",
        "--uninstall",
        "--purge",
        "--destdir",
    }
    for option in options:
        assert re.search(rf"^\s+{option}\b", done.stdout, flags=re.MULTILINE), option
    assert "set -euo" not in done.stdout
    assert "PIP_INDEX_URL" in done.stdout


@pytest.mark.timeout(360)  # three installs from wheels: about a minute alone, over two on a loaded machine
def test_install_upgrade_and_uninstall_keep_the_plants_config_and_data(tmp_path: Path) -> None:
    root = tmp_path / "root"
    fresh = install(root)
    # the sample still points at its simulators: not started, and told what to do next
    assert "not started" in fresh.stdout
    assert "edge-agent validate -c /etc/edge-agent/workshop.yaml" in fresh.stdout
    venv = root / "opt/edge-agent/venv"
    first = venv.resolve()
    config = root / "etc/edge-agent/workshop.yaml"
    validated = subprocess.run(
        [str(venv / "bin/edge-agent"), "validate", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert validated.returncode == 0, validated.stderr
    schemas = tmp_path / "schemas"  # the published payload schemas ship in the wheel
    copied = subprocess.run(
        [str(venv / "bin/edge-agent"), "schemas", "--out", str(schemas)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert copied.returncode == 0, copied.stderr
    shipped = Path(__file__).parents[2] / "agent" / "schemas" / "json"
    assert sorted(p.name for p in schemas.iterdir()) == sorted(p.name for p in shipped.glob("*.json"))
    assert "state_dir: /var/lib/edge-agent" in config.read_text(encoding="utf-8")
    assert stat.S_IMODE((root / "etc/edge-agent/credentials").stat().st_mode) == 0o700

    if shutil.which("systemd-analyze"):
        unit = staged_unit(root, tmp_path)
        verify = subprocess.run(
            ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False
        )
        assert verify.returncode == 0, verify.stderr
        security = subprocess.run(
            [
                "systemd-analyze",
                "security",
                "--offline=true",
                f"--threshold={MAX_EXPOSURE_TENTHS}",
                str(unit),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert security.returncode == 0, security.stdout[-400:]

    # the plant edits its config and a profile, and the agent has written data
    config.write_text(config.read_text(encoding="utf-8") + "# tuned for line 3\n", encoding="utf-8")
    profile = root / "etc/edge-agent/devices/sim-grinder.yaml"
    profile.write_text(profile.read_text(encoding="utf-8") + "# local register fix\n", encoding="utf-8")
    outbox = root / "var/lib/edge-agent/outbox.db"
    outbox.write_bytes(b"records not yet delivered")

    # the plant's own addresses: the workshop is ready for the service
    text = config.read_text(encoding="utf-8").replace(
        "host: 127.0.0.1, port: 150", "host: 10.0.1.20, port: 150"
    )
    config.write_text(text.replace("opc.tcp://127.0.0.1:", "opc.tcp://10.0.1.50:"), encoding="utf-8")
    upgraded = install(root)
    assert "workshop.yaml is ready" in upgraded.stdout
    second = venv.resolve()
    assert second != first
    assert first.exists()  # the previous release stays for a rollback
    assert "# tuned for line 3\n" in config.read_text(encoding="utf-8")
    assert profile.read_text(encoding="utf-8").endswith("# local register fix\n")
    assert (profile.parent / "sim-grinder.yaml.dist").exists()
    assert "kept your" in upgraded.stdout
    assert outbox.read_bytes() == b"records not yet delivered"

    # an upgrade that cannot install (no wheels offline) leaves the running release alone
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    failed = install(root, "--wheelhouse", str(empty), check=False)
    assert failed.returncode != 0
    assert "running release is unchanged" in failed.stderr
    assert venv.resolve() == second
    assert sorted(p.name for p in (root / "opt/edge-agent/releases").iterdir()) == sorted(
        [first.name, second.name]
    )

    install(root, "--uninstall")
    assert not (root / "opt/edge-agent").exists()
    assert not (root / "etc/systemd/system/edge-agent.service").exists()
    assert config.exists()
    assert outbox.exists()

    install(root, "--uninstall", "--purge")
    assert not (root / "etc/edge-agent").exists()
    assert not (root / "var/lib/edge-agent").exists()
