"""Time a generated project's first day: `make install` (uv, and pip), `make pipeline` and `make test`, next to
copier-uv's and fmind's templates doing their own set-up and checks (targets, default render: `make install` <= 15 s
with warm caches, `make test` <= 20 s; 2 cores).

    python benchmarks/bench_project.py [--runs 1] [--copier-uv DIR] [--fmind DIR] [--only default,pytorch]

For mlscaffold, the default render and a PyTorch render (`-d ml_framework=pytorch`), each in a fresh folder: `make
install` once untimed (fills the caches), then from an empty `.venv` each time: `make install` with uv not on PATH
(bootstrapped from requirements/uv.txt), with uv on PATH (`UV=...`), and `make install INSTALLER=pip`; then `make
pipeline` from a clean state, `make test` and `make test-integration`, `--runs` times each (medians). uv's and pip's
caches are the user's own (warm after the untimed install). This machine cannot reach download.pytorch.org: the
PyTorch render installs its locked CPU torch from the wheel on disk (`TORCH_INDEX= INSTALL_ARGS=--find-links
/opt/wheels`), hash checked as from the index.

The competitors, from git checkouts given as folders (the search tool's `fetch` of github:pawamoy/copier-uv and
github:fmind/mlops-python-package; their code is run here, never committed):
- copier-uv: rendered with copier (+ copier-templates-extensions, in a tools venv) with its defaults, then its own
  `make setup` (uv sync; PYTHON_VERSIONS=3.11, the only CPython here its default list would have) and `make test`
  and `make check`, as its README says.
- fmind's mlops-python-package (a project, rendered from his cookiecutter): its own set-up, `uv sync --all-groups
  --locked` (mise.toml's install:python), then `uv run pytest`; reported with its error when it cannot run here.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
UV = shutil.which("uv", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
TORCH_STAND_IN = ["TORCH_INDEX=", "INSTALL_ARGS=--find-links /opt/wheels"]
MIRRORS = Path("/work/.mirror")


def user_env(**extra: str) -> dict[str, str]:
    """This user's environment without any virtual environment on PATH (so no uv unless it is installed), and
    Python's default of caching bytecode (this machine sets PYTHONDONTWRITEBYTECODE: every import would compile)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    return env | extra


def timed(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env or user_env(), capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done.returncode, (done.stdout + done.stderr).strip()


def why(out: str) -> str:
    """The last line of a failure's output that says what went wrong (colours stripped)."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in out.splitlines()]
    said = [line for line in lines if re.search(r"error|failed", line, re.I) and not line.startswith("make: ***")]
    return " ".join((said or lines or [""])[-1].split())[:220]


def must(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    seconds, code, out = timed(cmd, cwd, env)
    if code != 0:
        sys.exit(f"{' '.join(cmd)} (in {cwd}) exited {code}:\n{out[-3000:]}")
    return seconds


Row = tuple[str, str, str]


def bench_mlscaffold(name: str, answers: list[str], tmp: Path, runs: int) -> list[Row]:
    project = tmp / name.replace(" ", "-")  # no space: a path with one breaks make's recipes
    must([str(BIN / "mlscaffold"), "new", str(project), "--defaults", *(a for d in answers for a in ("-d", d))], tmp)
    extra = TORCH_STAND_IN if any("pytorch" in a for a in answers) else []
    print(f"{name}: make install (untimed, fills the caches) ...", flush=True)
    must(["make", "install", *extra], project)
    rows: list[Row] = []
    installs = [("make install (uv bootstrapped)", []), ("make install INSTALLER=pip", ["INSTALLER=pip"])]
    if UV:
        installs.insert(1, ("make install (uv on PATH)", [f"UV={UV}"]))
    for label, args in installs:
        shutil.rmtree(project / ".venv")
        seconds = must(["make", "install", *extra, *args], project)
        rows.append((name, label, f"{seconds:.1f}"))
        print(f"  {label}: {seconds:.1f} s", flush=True)
    pipeline, tests, integration = [], [], []
    for _ in range(runs):
        must(["make", "clean"], project)
        pipeline.append(must(["make", "pipeline"], project))
        tests.append(must(["make", "test"], project))
        integration.append(must(["make", "test-integration"], project))
    timed = [("make pipeline (clean state)", pipeline), ("make test", tests), ("make test-integration", integration)]
    for label, values in timed:
        rows.append((name, label, " / ".join(f"{v:.1f}" for v in values) if runs > 1 else f"{values[0]:.1f}"))
        print(f"  {label}: {statistics.median(values):.1f} s", flush=True)
    return rows


def checkout(mirror: Path, dest: Path) -> Path:
    must(["git", "clone", "--quiet", str(mirror), str(dest)], dest.parent)
    return dest


def bench_copier_uv(src: Path, tmp: Path) -> list[Row]:
    if not UV:
        return [("copier-uv", "not run", "uv is not installed")]
    template = checkout(src, tmp / "copier-uv-template")
    tools = tmp / "copier-tools"
    must([UV, "venv", "--quiet", "--python", sys.executable, str(tools)], tmp)
    must(
        [UV, "pip", "install", "--quiet", "-p", str(tools / "bin" / "python"), "copier", "copier-templates-extensions"],
        tmp,
    )
    project = tmp / "copier-uv-project"
    data = ["project_name=bench", "project_description=bench", "author_fullname=A", "author_email=a@example.org"]
    data += ["author_username=a", "repository_namespace=a", "repository_name=bench"]
    must(
        [
            str(tools / "bin" / "copier"),
            "copy",
            "--trust",
            "--defaults",
            "--vcs-ref",
            "HEAD",
            *(a for d in data for a in ("-d", d)),
            str(template),
            str(project),
        ],
        tmp,
    )
    env = user_env(PYTHON_VERSIONS="3.11", PATH=f"{Path(UV).parent}{os.pathsep}{user_env()['PATH']}")
    must(["git", "init", "-q"], project)
    must(["git", "add", "-A"], project)
    rows = []
    for label, cmd in (
        ("make setup (uv sync)", ["make", "setup"]),
        ("make test", ["make", "test"]),
        ("make check", ["make", "check"]),
    ):
        seconds, code, out = timed(cmd, project, env)
        result = f"{seconds:.1f}" if code == 0 else f"failed after {seconds:.1f} s: {why(out)}"
        rows.append(("copier-uv", label, result))
        print(f"  copier-uv {label}: {result}", flush=True)
    return rows


def bench_fmind(src: Path, tmp: Path) -> list[Row]:
    if not UV:
        return [("fmind", "not run", "uv is not installed")]
    project = checkout(src, tmp / "fmind")
    env = user_env()
    rows = []
    for label, cmd in (
        ("uv sync --all-groups --locked", [UV, "sync", "--all-groups", "--locked"]),
        ("uv run pytest", [UV, "run", "--no-sync", "pytest", "-q"]),
    ):
        seconds, code, out = timed(cmd, project, env)
        result = f"{seconds:.1f}" if code == 0 else f"failed after {seconds:.1f} s: {why(out)}"
        rows.append(("fmind", label, result))
        print(f"  fmind {label}: {result}", flush=True)
        if code != 0:
            break
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--only", default="default,pytorch,copier-uv,fmind")
    parser.add_argument("--copier-uv", type=Path, default=MIRRORS / "pawamoy+copier-uv" / "repo")
    parser.add_argument("--fmind", type=Path, default=MIRRORS / "fmind+mlops-python-package" / "repo")
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"load average at the start: {' / '.join(f'{x:.1f}' for x in os.getloadavg())} (1, 5, 15 min)", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-project-") as tmp:
        if "default" in only:
            rows += bench_mlscaffold("mlscaffold default", [], Path(tmp), args.runs)
        if "pytorch" in only:
            rows += bench_mlscaffold("mlscaffold pytorch", ["ml_framework=pytorch"], Path(tmp), args.runs)
        if "copier-uv" in only:
            rows += (
                bench_copier_uv(args.copier_uv, Path(tmp))
                if args.copier_uv.exists()
                else [("copier-uv", "not run", f"no checkout at {args.copier_uv}")]
            )
        if "fmind" in only:
            rows += (
                bench_fmind(args.fmind, Path(tmp))
                if args.fmind.exists()
                else [("fmind", "not run", f"no checkout at {args.fmind}")]
            )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.runs} run(s) of make pipeline / make test; wall seconds; load average at the end {load} (2 cores)")
    print("| project | command | seconds |\n|---|---|---|")
    for row in rows:
        print(f"| {' | '.join(row)} |")


if __name__ == "__main__":
    main()
