"""Serving throughput of a generated project, next to MLServer and a raw in-process predict loop.

One command (run by hand, not in CI; loopback only, bounded duration):

    .venv/bin/python benchmarks/bench_serving.py --python /path/to/venv-with-the-project-deps/bin/python

What it does:
  1. renders a default project (sklearn, classification) with mlscaffold into a temp dir (or takes --project),
     and trains it (`python -m <package> pipeline`);
  2. starts the generated service on 127.0.0.1 (one uvicorn worker, Prometheus metrics and sampled prediction
     logging ON, as deployed) and drives POST /predict with `wrk` (a Lua script posts one record) from a second
     process, for --duration seconds after a short warm-up;
  3. starts MLServer (mlserver + mlserver-sklearn in their own venv: --mlserver-venv, created with pip when
     missing) serving the same fitted estimator, extracted from the project's model bundle, with
     `parallel_workers: 0` (its inference worker crashes under uvloop 0.23 otherwise), and drives its V2
     endpoint the same way (one pre-encoded row: less work than the generated service's validation + encoding);
  4. times the raw predict in-process, one row a call: scikit-learn's estimator.predict_proba on a pre-encoded
     row (the raw predict the targets refer to), and the bundle's predict_records([record]) (the service's own
     model call: encoding plus the generated code's numpy path for linear models, much faster than sklearn's);
  5. prints req/s and the ratios. Targets: service >= 2x MLServer and >= 40% of the raw estimator predict.

Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"not ready after {timeout:.0f}s: {url}")


@contextlib.contextmanager
def running(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            for sig, wait in ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                if proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)  # MLServer sometimes ignores SIGTERM: SIGINT first
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(wait)


def wrk(url: str, body: str, duration: int, connections: int, workdir: Path) -> dict[str, float]:
    script = workdir / f"post-{abs(hash(url))}.lua"
    script.write_text(
        textwrap.dedent(
            f"""\
            wrk.method = "POST"
            wrk.headers["Content-Type"] = "application/json"
            wrk.body = {json.dumps(body)}
            """
        )
    )
    base = ["wrk", "-t1", f"-c{connections}", "--latency", "-s", str(script)]
    subprocess.run([*base, "-d2s", url], capture_output=True, check=True)  # warm-up
    done = subprocess.run([*base, f"-d{duration}s", url], capture_output=True, text=True, check=True)
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = 0.0
    if p99:
        p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {"rps": rps, "non_2xx": float(errors.group(1)) if errors else 0.0, "p99_ms": p99_ms}


def render(dest: Path) -> Path:
    cli = REPO / ".venv" / "bin" / "mlscaffold"
    cmd = [str(cli)] if cli.exists() else [sys.executable, "-m", "mlscaffold"]
    subprocess.run([*cmd, "new", str(dest), "--defaults", "--no-git"], check=True, capture_output=True)
    return dest


def package_of(project: Path) -> str:
    answers = (project / ".copier-answers.yml").read_text()
    return re.search(r"^package_name:\s*(\S+)", answers, re.M).group(1)  # type: ignore[union-attr]


def mlserver_bin(venv: Path) -> Path:
    binary = venv / "bin" / "mlserver"
    if not binary.exists():
        print(f"creating the MLServer venv {venv} (mlserver, mlserver-sklearn) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "mlserver", "mlserver-sklearn"], check=True)
    return binary


HELPER = """
import json, sys, time
from pathlib import Path
import joblib, numpy as np
from {package}.model import ModelBundle
bundle = ModelBundle.load(Path(sys.argv[1]))
record = json.loads(sys.argv[2])
seconds = float(sys.argv[3])
estimator = bundle.predictor.estimator
joblib.dump(estimator, sys.argv[4])
row = bundle.encoder.transform_records([record])
def loop(fn):
    for _ in range(200):
        fn()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            fn()
        n += 100
    return n / elapsed
out = {{
    "predict_records": loop(lambda: bundle.predict_records([record])),
    "estimator_predict_proba": loop(lambda: estimator.predict_proba(row)),
    "encoded_row": row[0].tolist(),
}}
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="a generated sklearn project (default: render one)")
    parser.add_argument("--python", default=sys.executable, help="Python with the project's dependencies")
    parser.add_argument("--mlserver-venv", type=Path, default=Path(tempfile.gettempdir()) / "mlscaffold-mlserver")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server (default: 10)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default: 16)")
    parser.add_argument("--skip-mlserver", action="store_true")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH (Debian: apt-get install wrk)")

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp_name:
        tmp = Path(tmp_name)
        project = args.project.resolve() if args.project else render(tmp / "project")
        package = package_of(project)
        prefix = package.upper() + "_"
        env = os.environ | {
            "PYTHONPATH": str(project / "src"),
            f"{prefix}HOME": str(project),
            f"{prefix}ARTIFACTS_DIR": str(tmp / "artifacts"),
            f"{prefix}MODELS_DIR": str(tmp / "models"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlruns.db'}",
            f"{prefix}MLFLOW_ARTIFACTS": str(tmp / "mlartifacts"),
            f"{prefix}DATA_PATH": str(tmp / "sample.csv"),
        }
        print(f"project: {project} (package {package}); training ...", flush=True)
        for step in ("make-data", "pipeline"):
            done = subprocess.run(
                [args.python, "-m", package, step], env=env, cwd=project, capture_output=True, text=True
            )
            if done.returncode:
                raise SystemExit(f"{step} failed:\n{done.stdout}{done.stderr}")
        bundle_path = tmp / "artifacts" / "model.joblib"
        import csv

        with (tmp / "sample.csv").open() as handle:
            row = next(csv.DictReader(handle))
        target = re.search(r"^\s*target:\s*(\S+)", (project / "params.yaml").read_text(), re.M).group(1)  # type: ignore[union-attr]
        fields = [name for name in row if name != target]
        record: dict[str, object] = {}
        for name in fields:
            value = row[name]
            try:
                record[name] = int(value)
            except ValueError:
                try:
                    record[name] = float(value)
                except ValueError:
                    record[name] = value if value != "" else None
        estimator_path = tmp / "mlserver" / "model.joblib"
        estimator_path.parent.mkdir()

        print("raw in-process predict loop ...", flush=True)
        raw = json.loads(
            subprocess.run(
                [
                    args.python,
                    "-c",
                    HELPER.format(package=package),
                    str(bundle_path),
                    json.dumps(record),
                    str(min(args.duration, 5)),
                    str(estimator_path),
                ],
                env=env,
                cwd=project,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )

        port = free_port()
        log_path = tmp / "predictions.jsonl"
        serve_env = env | {f"{prefix}MODEL_PATH": str(bundle_path), f"{prefix}PREDICTION_LOG": str(log_path)}
        print(f"generated service on {HOST}:{port} (metrics + prediction log on) ...", flush=True)
        with running(
            [args.python, "-m", package, "serve", "--host", HOST, "--port", str(port)],
            serve_env,
            project,
            tmp / "serve.log",
        ):
            wait_ready(f"http://{HOST}:{port}/readyz")
            ours = wrk(f"http://{HOST}:{port}/predict", json.dumps(record), args.duration, args.connections, tmp)
            with urllib.request.urlopen(f"http://{HOST}:{port}/metrics") as response:
                metrics = response.read().decode()
        logged = sum(1 for _ in log_path.open()) if log_path.exists() else 0
        ok = re.search(r'predict_requests_total\{outcome="ok"\} ([\d.e+]+)', metrics)
        print(f"  served ok={float(ok.group(1)) if ok else 0:.0f} requests, logged {logged} sampled records")

        theirs: dict[str, float] | None = None
        if not args.skip_mlserver:
            binary = mlserver_bin(args.mlserver_venv)
            http, grpc, metrics_port = free_port(), free_port(), free_port()
            models = tmp / "mlserver"
            (models / "settings.json").write_text(
                json.dumps(
                    {
                        "host": HOST,
                        "http_port": http,
                        "grpc_port": grpc,
                        "metrics_port": metrics_port,
                        "parallel_workers": 0,
                        "debug": False,
                    }
                )
            )
            (models / "model-settings.json").write_text(
                json.dumps(
                    {
                        "name": "model",
                        "implementation": "mlserver_sklearn.SKLearnModel",
                        "parameters": {"uri": "./model.joblib", "version": "v1"},
                    }
                )
            )
            body = json.dumps(
                {
                    "inputs": [
                        {
                            "name": "input-0",
                            "shape": [1, len(raw["encoded_row"])],
                            "datatype": "FP64",
                            "data": raw["encoded_row"],
                        }
                    ],
                    "outputs": [{"name": "predict_proba"}],
                }
            )
            print(f"MLServer on {HOST}:{http} (parallel_workers 0) ...", flush=True)
            with running([str(binary), "start", str(models)], dict(os.environ), models, tmp / "mlserver.log"):
                wait_ready(f"http://{HOST}:{http}/v2/models/model/ready", timeout=120)
                theirs = wrk(f"http://{HOST}:{http}/v2/models/model/infer", body, args.duration, args.connections, tmp)

    print()
    print(f"{'':38} {'req/s':>9} {'p99 ms':>8} {'non-2xx':>8}")
    print(f"{'generated service (metrics+log on)':38} {ours['rps']:9.0f} {ours['p99_ms']:8.1f} {ours['non_2xx']:8.0f}")
    if theirs:
        print(
            f"{'MLServer 1 worker (parallel_workers 0)':38} {theirs['rps']:9.0f} {theirs['p99_ms']:8.1f} "
            f"{theirs['non_2xx']:8.0f}"
        )
    print(f"{'raw bundle.predict_records (1 row)':38} {raw['predict_records']:9.0f}")
    print(f"{'raw estimator.predict_proba (encoded)':38} {raw['estimator_predict_proba']:9.0f}")
    print()
    verdicts = []
    if theirs:
        ratio = ours["rps"] / theirs["rps"]
        verdicts.append(ratio >= 2)
        print(f"service / MLServer:                 {ratio:5.2f}x   (target >= 2x)")
    share = ours["rps"] / raw["estimator_predict_proba"]
    verdicts.append(share >= 0.4)
    print(f"service / raw estimator predict:    {share:5.0%}    (target >= 40%)")
    own = ours["rps"] / raw["predict_records"]
    print(f"service / raw predict_records:      {own:5.0%}    (the service's own model call)")
    if ours["non_2xx"] or (theirs and theirs["non_2xx"]):
        print("warning: some responses were not 2xx")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
