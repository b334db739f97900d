"""Time `mlscaffold --help` and `--version` against `python -c "import typer"`, interleaved, in one run.

    python benchmarks/bench_cli.py [--runs 9]

Whole processes from this environment's Python. Reported: the median of each and its ratio to the bare Typer
import (target: <= 1.5x; copier is imported only by the commands that render).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    py = sys.executable
    cases = {
        "python -c 'import typer'": [py, "-c", "import typer"],
        "mlscaffold --version": [py, "-m", "mlscaffold", "--version"],
        "mlscaffold --help": [py, "-m", "mlscaffold", "--help"],
        "python -c pass": [py, "-c", "pass"],
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, cmd in cases.items():
            times[name].append(timed(cmd))
    base = statistics.median(times["python -c 'import typer'"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:28s} median {median:.3f} s  ({median / base:.2f}x import typer)")


if __name__ == "__main__":
    main()
