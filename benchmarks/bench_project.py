"""Time a generated project's own `make pipeline` and `make test` (targets: <= 30 s and <= 60 s on 2 cores).

    python benchmarks/bench_project.py [-d ml_framework=xgboost ...] [--runs 3]

Renders a project with the answers given (defaults otherwise), runs `make install` once (not timed), then times
`make pipeline` from a clean state (`make clean`: no registry, no artifacts) and `make test`, `--runs` times each,
and prints the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def make(target: str, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["make", target], cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-d", "--data", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-project-") as tmp:
        project = Path(tmp) / "project"
        answers = [a for d in args.data for a in ("-d", d)]
        subprocess.run([str(BIN / "mlscaffold"), "new", str(project), "--defaults", *answers], check=True)
        print("make install (not timed) ...", flush=True)
        make("install", project)
        pipeline, tests = [], []
        for _ in range(args.runs):
            make("clean", project)
            pipeline.append(make("pipeline", project))
            tests.append(make("test", project))
    print(f"answers: {' '.join(args.data) or 'defaults'}; {args.runs} runs; median wall time")
    for name, values in (("make pipeline (clean state)", pipeline), ("make test", tests)):
        runs = ", ".join(f"{t:.1f}" for t in values)
        print(f"  {name:28s} {statistics.median(values):6.1f} s   (runs: {runs})")


if __name__ == "__main__":
    main()
