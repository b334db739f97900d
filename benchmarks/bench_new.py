"""Time `mlscaffold new` against plain `copier copy` of the same template, interleaved, in one run.

    python benchmarks/bench_new.py [--runs 7]

Both are run as the CLIs users run, from this environment, rendering the same template directory with defaults.
Reported: the median wall time of each and the ratios to `copier copy` (target for the same work: <= 1.10).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="bench-new-") as tmp:
        work = Path(tmp)
        template = work / "template-src"
        template.mkdir()
        shutil.copy2(REPO / "copier.yml", template / "copier.yml")
        shutil.copytree(REPO / "template", template / "template", ignore=shutil.ignore_patterns("__pycache__"))
        cases = {
            "copier copy --defaults": lambda out: [
                str(BIN / "copier"), "copy", "--quiet", "--defaults", str(template), out,
            ],
            "mlscaffold new --defaults --no-git --template": lambda out: [
                str(BIN / "mlscaffold"), "new", out, "--defaults", "--no-git", "--template", str(template),
            ],
            "mlscaffold new --defaults (bundled, with git commit)": lambda out: [
                str(BIN / "mlscaffold"), "new", out, "--defaults",
            ],
        }  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(runs + 1):  # the first round warms the caches and is dropped
            for j, (name, cmd) in enumerate(cases.items()):
                elapsed = timed(cmd(str(work / f"out-{i}-{j}")))
                if i:
                    times[name].append(elapsed)
    base = statistics.median(times["copier copy --defaults"])
    print(f"{runs} runs each, interleaved; median wall time")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:55s} {median:6.3f} s   ratio {median / base:.2f}")


if __name__ == "__main__":
    main()
