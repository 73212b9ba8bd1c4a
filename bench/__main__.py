"""Benchmarks: `python -m bench NAME`. Not part of the test run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import board, checkpoint, compare, engine, opcua, planner, replay, sparkplug

BENCHMARKS: dict[str, Callable[[list[str]], Any]] = {
    "board": lambda _: board.main(),
    "checkpoint": checkpoint.main,  # takes options: --window S, --repetitions N, --in-process-only
    "compare": compare.main,  # takes options: --quick, --window S, --repetitions N, --only NAME
    "engine": lambda _: engine.main(),
    "opcua": lambda _: opcua.main(),
    "planner": lambda _: planner.main(),
    "replay": lambda _: replay.main(),
    "sparkplug": lambda _: sparkplug.main(),
}
RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", default=sorted(BENCHMARKS), choices=sorted(BENCHMARKS))
    args, options = parser.parse_known_args()
    RESULTS.mkdir(exist_ok=True)
    for name in args.names:
        print(f"== {name}")
        result = BENCHMARKS[name](options)
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


main()
