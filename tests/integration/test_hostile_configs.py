"""Every hostile configuration file gets a clear answer in bounded time and memory: exit 2 with a
`FILE:LINE:COL: path: message` line from `validate` (and from `run`, which systemd's ExecStartPre
and a start both go through), and a logged rejection from a SIGHUP reload, while the running
agent keeps its configuration and keeps polling.

The corpus is tests/hostile/configs/<name>.yaml with <name>.error holding the expected lines (a
NUL byte, control characters, bytes that are not UTF-8, a date and a time that do not exist, a
5,000-digit number, deep nesting, alias and merge-key bombs, a sequence that contains itself, a
Python tag, a list as a key, secrets from /dev/zero, a FIFO, a directory and a 50 MB file, and
state rules that nest or format without bound). Files too large to keep in git, and paths that
are not files at all, are made by the tests below.

Time and memory are measured per child process (os.wait4) and held to generous bounds that a
correct implementation passes many times over: a hostile file may cost at most MAX_EXTRA_CPU_S
of CPU beyond validating a good file, and the process at most MAX_RSS_MB.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent.commands.status import fetch_health
from tests.conftest import CASES, free_port
from tests.integration.workshop_run import EDGE_AGENT, ENV, start_agent

pytestmark = pytest.mark.integration

HOSTILE = Path(__file__).resolve().parent.parent / "hostile"
CORPUS = sorted((HOSTILE / "configs").glob("*.yaml"))
VALID = CASES / "valid-minimal" / "workshop.yaml"
MAX_EXTRA_CPU_S = 2.0  # the issue's bound: any file answered within 2 s ...
MAX_RSS_MB = 200.0  # ... and 200 MB
HANG_S = 20.0  # a command still running after this has hung: killed, and the test fails
RELOAD_ANSWER_S = 10.0
BIG_BYTES = 50 * 2**20
POSITIONED = re.compile(r"^(?P<file>[^:]+\.yaml):(?P<line>\d+):(?P<column>\d+): \S+: .+$")


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


# A process started by fork or vfork from this test process inherits its memory high-water mark
# (pytest may hold a few hundred MB), so the command is started by a small Python process that
# forks it and reports its CPU time and peak memory from wait4.
MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(f"{usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(args: list[str], cwd: Path, env: dict[str, str]) -> Measured:
    """Run a command; its exit code, output, wall and CPU time and peak memory."""
    with tempfile.TemporaryDirectory() as where:
        report, out, err = (Path(where) / name for name in ("usage", "out", "err"))
        started = time.monotonic()
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", MEASURE, str(report), *args],
                cwd=cwd,
                env=env,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
            try:
                process.wait(timeout=HANG_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        wall = time.monotonic() - started
        cpu, peak = report.read_text(encoding="utf-8").split() if report.exists() else ("inf", "inf")
        return Measured(
            process.returncode,
            out.read_text(errors="replace"),
            err.read_text(errors="replace"),
            wall,
            float(cpu),
            float(peak) / 1024,  # ru_maxrss is in kilobytes on Linux
        )


@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A FIFO nobody writes to and a 50 MB file, for the corpus files that name them."""
    where = tmp_path_factory.mktemp("hostile")
    fifo = where / "password.fifo"
    os.mkfifo(fifo)
    big = where / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(BIG_BYTES)  # sparse: 50 MB to stat and read, no disk to fill
    return {**ENV, "HOSTILE_FIFO": str(fifo), "HOSTILE_BIG_FILE": str(big)}


@pytest.fixture(scope="module")
def baseline(hostile_env: dict[str, str]) -> Measured:
    """What validating a good file costs on this machine right now (the interpreter, the imports)."""
    measured = run_measured([*EDGE_AGENT, "validate", "-c", VALID.name], VALID.parent, hostile_env)
    assert measured.returncode == 0, measured.stderr
    return measured


def expected_lines(case: Path, env: dict[str, str]) -> list[str]:
    text = case.with_suffix(".error").read_text(encoding="utf-8")
    for name in ("HOSTILE_FIFO", "HOSTILE_BIG_FILE"):
        text = text.replace("{" + name + "}", env[name])
    return text.splitlines()


def assert_answered(measured: Measured, baseline: Measured, what: str) -> list[str]:
    """Exit 2, every error line positioned, within the bounds; returns the error lines."""
    assert measured.wall_s < HANG_S, f"{what}: still running after {HANG_S} s"
    assert measured.returncode == 2, f"{what}: exit {measured.returncode}\n{measured.stderr[-2000:]}"
    assert "Traceback" not in measured.stderr, f"{what}:\n{measured.stderr[-2000:]}"
    lines = measured.stderr.splitlines()
    assert lines, what
    assert re.fullmatch(r"\d+ error\(s\) in .+", lines[-1]), lines[-1]
    for line in lines[:-1]:
        assert POSITIONED.match(line), f"{what}: not FILE:LINE:COL: path: message: {line!r}"
    extra_cpu = measured.cpu_s - baseline.cpu_s
    assert extra_cpu < MAX_EXTRA_CPU_S, f"{what}: {extra_cpu:.2f} s of CPU beyond a good file"
    assert measured.peak_rss_mb < MAX_RSS_MB, f"{what}: {measured.peak_rss_mb:.0f} MB"
    return lines[:-1]


@pytest.mark.parametrize("case", CORPUS, ids=lambda p: p.stem)
@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_hostile_file_is_answered_with_its_position(
    case: Path, command: str, hostile_env: dict[str, str], baseline: Measured
) -> None:
    measured = run_measured([*EDGE_AGENT, command, "-c", case.name], case.parent, hostile_env)
    reported = assert_answered(measured, baseline, f"{command} {case.name}")
    assert reported == expected_lines(case, hostile_env)


def generated_case(name: str, where: Path) -> tuple[Path, str]:
    """A file too big for git, or a path that is not a file: (its path, the expected message)."""
    valid = VALID.read_text(encoding="utf-8").replace("../_devices", str(CASES / "_devices"))
    path = where / "workshop.yaml"
    if name == "50 MB file":
        with path.open("w", encoding="utf-8") as handle:
            handle.write(valid)
            line = "# " + "x" * 1021 + "\n"
            handle.write(line * (BIG_BYTES // len(line)))
        return path, "<file>: 50.0 MB, more than a configuration file can be (1.0 MB at most)"
    if name == "60,000 values":
        path.write_text(valid + "x-values: [" + "0, " * 60_000 + "0]\n", encoding="utf-8")
        return path, "<yaml>: YAML: more than 50000 values"
    if name == "a FIFO":
        os.mkfifo(path)
        return path, "<file>: a named pipe (FIFO), not a regular file"
    if name == "/dev/zero":
        path.symlink_to("/dev/zero")
        return path, "<file>: a character device, not a regular file"
    path.mkdir()
    return path, "<file>: a directory, not a regular file"


@pytest.mark.parametrize("name", ["50 MB file", "60,000 values", "a FIFO", "/dev/zero", "a directory"])
def test_a_file_that_is_too_big_or_not_a_file_is_refused_before_it_is_read(
    name: str, tmp_path: Path, hostile_env: dict[str, str], baseline: Measured
) -> None:
    path, message = generated_case(name, tmp_path)
    measured = run_measured([*EDGE_AGENT, "validate", "-c", str(path)], tmp_path, hostile_env)
    [line] = assert_answered(measured, baseline, name)
    assert line.startswith(f"{path}:")
    assert message in line


def test_a_file_just_under_the_size_bound_is_read(tmp_path: Path, baseline: Measured) -> None:
    valid = VALID.read_text(encoding="utf-8").replace("../_devices", str(CASES / "_devices"))
    line = "# " + "x" * 1021 + "\n"
    path = tmp_path / "commented.yaml"
    path.write_text(valid + line * (1000 - 2), encoding="utf-8")  # 1,000 KB: under the 1 MB bound
    measured = run_measured([*EDGE_AGENT, "validate", "-c", str(path)], tmp_path, ENV)
    assert measured.returncode == 0, measured.stderr
    assert measured.cpu_s - baseline.cpu_s < MAX_EXTRA_CPU_S


# -- SIGHUP to a running agent ---------------------------------------------------------------


def running_workshop(tmp_path: Path, modbus_port: int, health_port: int) -> Path:
    text = VALID.read_text(encoding="utf-8").replace("../_devices", str(CASES / "_devices"))
    text = text.replace("port: 15502}", f"port: {modbus_port}, interval_s: 0.2, timeout_s: 0.5}}")
    text += f"health: {{port: {health_port}}}\n"
    path = tmp_path / "workshop.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def reload_content(case: Path) -> bytes:
    """The corpus file as it would be at the running agent's path: its relative directories made absolute."""
    data = case.read_bytes()
    data = data.replace(b"profiles_dir: ../../cases/_devices", f"profiles_dir: {CASES / '_devices'}".encode())
    return data.replace(b"profiles_dir: ../devices", f"profiles_dir: {HOSTILE / 'devices'}".encode())


def logged_errors(log: Path, after: int) -> list[str]:
    """The config_error lines logged after the first `after` characters of the log."""
    issues = []
    for line in log.read_text(encoding="utf-8", errors="replace")[after:].splitlines():
        _, found, detail = line.partition("event=config_error detail=")
        if found:
            issues.append(ast.literal_eval(detail))
    return issues


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_sighup_with_every_hostile_file_rejects_it_and_keeps_polling(
    tmp_path: Path, hostile_env: dict[str, str]
) -> None:
    modbus_port, health_port = free_port(), free_port()
    simulator = subprocess.Popen(
        [*EDGE_AGENT[:1], str(Path(__file__).parent / "hostile_modbus.py"), "--port", str(modbus_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert simulator.stdout is not None
    assert "serving" in simulator.stdout.readline()
    workshop = running_workshop(tmp_path, modbus_port, health_port)
    log = tmp_path / "agent.log"
    agent = start_agent(workshop, log, **{k: v for k, v in hostile_env.items() if k.startswith("HOSTILE")})
    health_url = f"http://127.0.0.1:{health_port}"
    good = workshop.read_bytes()
    try:
        deadline = time.monotonic() + 30
        while True:
            assert agent.poll() is None, log.read_text()
            try:
                document = fetch_health(health_url)
            except Exception:  # noqa: BLE001 - not listening yet
                document = None
            if document and document["connections"].get("plc", {}).get("cycles", 0) > 2:
                break
            assert time.monotonic() < deadline, "the agent never polled"
            time.sleep(0.2)
        version = document["config"]["version"]
        rss_at_start = peak_rss_mb(agent.pid)
        started = time.monotonic()
        cycles_at_start = document["connections"]["plc"]["cycles"]

        cases: list[tuple[str, bytes | None, list[str]]] = [
            (case.stem, reload_content(case), expected_lines(case, hostile_env)) for case in CORPUS
        ]
        cases += [("fifo", None, ["a named pipe (FIFO), not a regular file"])]
        cases += [("dev-zero", None, ["a character device, not a regular file"])]
        cases += [("50 MB", None, ["50.0 MB, more than a configuration file can be"])]
        for name, content, expected in cases:
            workshop.unlink()
            if name == "fifo":
                os.mkfifo(workshop)
            elif name == "dev-zero":
                workshop.symlink_to("/dev/zero")
            elif name == "50 MB":
                with workshop.open("wb") as handle:
                    handle.truncate(BIG_BYTES)
            else:
                assert content is not None
                workshop.write_bytes(content)
            offset = len(log.read_text(encoding="utf-8", errors="replace"))
            before = fetch_health(health_url)["connections"]["plc"]["cycles"]
            sent = time.monotonic()
            agent.send_signal(signal.SIGHUP)
            while not logged_errors(log, offset):
                assert agent.poll() is None, f"the agent died on {name}:\n{log.read_text()[-3000:]}"
                assert time.monotonic() - sent < RELOAD_ANSWER_S, f"no rejection of {name}"
                time.sleep(0.05)
            time.sleep(0.3)  # every line of this rejection logged
            reported = logged_errors(log, offset)
            # the same LINE:COL: path: message lines validate prints (the file is named by its path)
            tails = [line.split(".yaml:", 1)[-1] for line in reported]
            for wanted in expected:
                tail = wanted.split(".yaml:", 1)[-1]
                assert any(tail in line for line in tails), f"{name}: {wanted!r} not in {reported}"
            assert all(POSITIONED.match(line) for line in reported), reported
            document = fetch_health(health_url)
            assert document["config"]["version"] == version, f"{name} replaced the running configuration"
            assert document["connections"]["plc"]["cycles"] > before, f"polling stalled during {name}"
            workshop.unlink()
            workshop.write_bytes(good)

        elapsed = time.monotonic() - started
        document = fetch_health(health_url)
        assert document["connections"]["plc"]["devices"]["grinder-01"]["connected"]
        polled = document["connections"]["plc"]["cycles"] - cycles_at_start
        assert polled >= 0.5 * elapsed / 0.2, f"{polled} cycles in {elapsed:.1f} s at 0.2 s"
        growth = peak_rss_mb(agent.pid) - rss_at_start
        assert growth < MAX_RSS_MB / 2, f"the reloads grew the agent by {growth:.0f} MB"
        assert agent.poll() is None
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        simulator.kill()
        simulator.wait()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert agent.returncode == 0, text[-3000:]
    assert "Task exception was never retrieved" not in text
    assert "Traceback" not in text
    assert text.count("event=config_reload_rejected") == len(cases)
