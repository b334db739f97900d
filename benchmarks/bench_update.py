"""Time `mlscaffold update` against `copier update` on the same project and the same version bump, in one run.

    python benchmarks/bench_update.py [--runs 5]

The real template is released twice in a scratch git repository (v1.0.0, then v1.1.0 with a changed file); a project
rendered from v1.0.0 gets a user edit and a commit; each run updates a fresh clone of it with each tool.
copier re-renders both versions; mlscaffold renders the new one and lets git merge it. Target: ratio <= 0.7.
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
GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@example.org"]


def sh(*cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory(prefix="bench-update-") as tmp:
        work = Path(tmp)
        tpl = work / "template-repo"
        tpl.mkdir()
        shutil.copy2(REPO / "copier.yml", tpl / "copier.yml")
        shutil.copytree(REPO / "template", tpl / "template", ignore=shutil.ignore_patterns("__pycache__"))
        sh("git", "init", "-q", "-b", "main", cwd=tpl)
        sh("git", "add", "-A", cwd=tpl)
        sh("git", *GIT_ID, "commit", "-qm", "v1", cwd=tpl)
        sh("git", "tag", "v1.0.0", cwd=tpl)
        project = work / "project"
        sh(str(BIN / "mlscaffold"), "new", str(project), "--defaults", "--template", str(tpl), cwd=work)
        with (project / "README.md").open("a") as readme:
            readme.write("\nA note of the user's.\n")
        sh("git", "add", "-A", cwd=project)
        sh("git", *GIT_ID, "commit", "-qm", "user edit", cwd=project)
        with (tpl / "template" / "Makefile.jinja").open("a") as makefile:
            makefile.write("\n# v1.1.0: a template change\n")
        sh("git", "add", "-A", cwd=tpl)
        sh("git", *GIT_ID, "commit", "-qm", "v1.1", cwd=tpl)
        sh("git", "tag", "v1.1.0", cwd=tpl)

        cases = {
            "copier update --defaults": [str(BIN / "copier"), "update", "--quiet", "--trust", "--defaults"],
            "mlscaffold update --defaults": [str(BIN / "mlscaffold"), "update", "--defaults"],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for i in range(runs + 1):  # the first round warms the caches and is dropped
            for j, (name, cmd) in enumerate(cases.items()):
                clone = work / f"clone-{i}-{j}"
                sh("git", "clone", "-q", str(project), str(clone), cwd=work)
                started = time.perf_counter()
                sh(*cmd, cwd=clone)
                elapsed = time.perf_counter() - started
                assert "v1.1.0: a template change" in (clone / "Makefile").read_text()
                assert "A note of the user's." in (clone / "README.md").read_text()
                if i:
                    times[name].append(elapsed)
    base = statistics.median(times["copier update --defaults"])
    print(f"{runs} runs each, interleaved; median wall time")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:32s} {median:6.3f} s   ratio {median / base:.2f}")


if __name__ == "__main__":
    main()
