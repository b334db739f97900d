"""Batch scoring on 1M rows, in one run: `predict-batch` next to the raw bundle predict on the same rows in memory,
its peak memory, and the default pipeline's time and peak memory on the same 1M rows (targets: predict-batch at
least 50 % of the raw predict's rows/s, at most 1 GiB peak RSS; 2 cores).

    python benchmarks/bench_batch.py [--rows 1000000] [--keep DIR]

The default render (`mlscaffold new --defaults`), `make install` (untimed), then in the project's venv, each a
child process whose peak RSS is its own (`os.wait4`): the project's `make-data --rows N` (the 1M-row CSV, its label
column included: predict-batch ignores it), a warm-up pipeline on the 2,000-row sample in a scratch state (Python
writes the bytecode a first run compiles), `pipeline --data` on the 1M rows from a clean state (registers v1),
`predict-batch` of the 1M rows to a CSV (the model as `serve` picks it: the newest version, from the MLflow
registry), and the raw predict: the bundle `register` registered, loaded with the CSV read into a DataFrame
untimed, then `bundle.predict_features(bundle.encoder.transform(frame))` timed. predict-batch's rows/s are given for
the whole process (start, imports, loading the model from MLflow, reading, checking, scoring, writing) and for its
own scoring loop (the time it reports: reading, checking, scoring and writing, after the model is loaded). The
predictions of both are compared: they must be equal.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
RAW = """
import sys, time
from pathlib import Path
import numpy as np, pandas as pd
from {package}.model import ModelBundle
bundle = ModelBundle.load(Path(sys.argv[1]))
frame = pd.read_csv(sys.argv[2])
started = time.perf_counter()
answer = bundle.predict_features(bundle.encoder.transform(frame))
seconds = time.perf_counter() - started
found = pd.read_csv(sys.argv[3])
columns = {{"predictions": "prediction", "probabilities": "probability"}}
same = all(np.array_equal(found[columns[key]].to_numpy(), values) for key, values in answer.items())
print(seconds, same)
"""


def env() -> dict[str, str]:
    """This user's environment, bytecode written (a second run starts as an installed project does)."""
    out = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    out["PATH"] = os.pathsep.join(p for p in out["PATH"].split(os.pathsep) if ".venv" not in p)
    return out


def measured(cmd: list[str], cwd: Path, extra: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MiB, output) of one child process; exits on failure."""
    started = time.perf_counter()
    process = subprocess.Popen(
        cmd, cwd=cwd, env=env() | (extra or {}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {process.returncode}:\n{output[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, output  # ru_maxrss: KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="render into this (new) folder and keep it")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    project = args.keep or tmp / "project"
    subprocess.run([str(BIN / "mlscaffold"), "new", str(project), "--defaults"], check=True, capture_output=True)
    package = next(p.name for p in (project / "src").iterdir() if p.is_dir())
    print(f"{project}: make install (untimed) ...", flush=True)
    subprocess.run(["make", "install"], cwd=project, env=env(), check=True, capture_output=True)
    python = str(project / ".venv" / "bin" / "python")
    step = [python, "-m", package]
    big = tmp / "records.csv"
    seconds, _, _ = measured([*step, "make-data", "--rows", str(args.rows), "--out", str(big)], project)
    print(f"make-data --rows {args.rows}: {seconds:.1f} s, {big.stat().st_size / MIB:.0f} MiB", flush=True)

    scratch = tmp / "scratch"
    warm = {f"{package.upper()}_ARTIFACTS_DIR": str(scratch / "artifacts"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{scratch / 'mlruns.db'}",
            f"{package.upper()}_MLFLOW_ARTIFACTS": str(scratch / "mlartifacts"),
            f"{package.upper()}_DATA_PATH": str(scratch / "sample.csv")}  # fmt: skip
    measured([*step, "make-data", "--out", str(scratch / "sample.csv")], project, warm)
    measured([*step, "pipeline"], project, warm)
    measured([*step, "predict-batch", "--input", str(scratch / "sample.csv"), "--output", str(scratch / "p.csv")],
             project, warm)  # fmt: skip

    load = os.getloadavg()[0]
    pipeline_s, pipeline_mib, _ = measured([*step, "pipeline", "--data", str(big)], project)
    print(f"pipeline on {args.rows} rows: {pipeline_s:.1f} s, peak {pipeline_mib:.0f} MiB", flush=True)
    out = tmp / "predictions.csv"
    batch_s, batch_mib, said = measured([*step, "predict-batch", "--input", str(big), "--output", str(out)], project)
    loop = re.search(r"scored (\d+) of (\d+) rows with model version (\S+) in ([\d.]+)s", said)
    assert loop, said
    scored, loop_s, version = int(loop.group(1)), float(loop.group(4)), loop.group(3)
    assert scored == args.rows, said
    code = RAW.format(package=package)
    _, _, raw_out = measured([python, "-c", code, str(project / "artifacts" / "model.joblib"),
                                             str(big), str(out)], project)  # fmt: skip
    raw_s, same = raw_out.split()[-2:]
    raw_rate = args.rows / float(raw_s)
    print()
    print(f"load average at the start: {load:.2f}; model version {version}; outputs equal: {same}")
    print(f"raw bundle predict (DataFrame in memory): {float(raw_s):.2f} s, {raw_rate:,.0f} rows/s")
    for what, seconds in (("whole process", batch_s), ("scoring loop", loop_s)):
        rate = args.rows / seconds
        print(f"predict-batch, {what}: {seconds:.2f} s, {rate:,.0f} rows/s = {100 * rate / raw_rate:.0f} % of raw")
    print(f"predict-batch peak RSS: {batch_mib:.0f} MiB (target <= 1024)")
    print(f"pipeline on {args.rows} rows: {pipeline_s:.1f} s, peak RSS {pipeline_mib:.0f} MiB")
    if args.keep is None:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


if __name__ == "__main__":
    main()
