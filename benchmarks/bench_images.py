"""Image sizes and cold start of a generated project, next to MLServer's cold start, in one run.

One command (run by hand, not in CI; needs podman with runc, as .ci/run installs it; loopback only):

    .venv/bin/python benchmarks/bench_images.py [--runs 5]

What it does:
  1. renders a default project (sklearn, classification, MLflow registry) and builds its two images with the
     project's own `make image` (podman, runc, host network, the stand-in base image of .ci/build-base-image);
     prints the base, serve and pipeline image sizes and each one's own layers (size minus the base);
  2. starts a real `mlflow server` from the pipeline image and registers version 1 there by running the
     pipeline in the pipeline image (make-data, then pipeline);
  3. cold start, --runs times each, interleaved, median and range: process start to `/readyz` 200 for
       - the generated server as a process on this machine, from a venv of requirements/serve.txt (uv), pinned to
         version 1 of the MLflow server (what a pod does), and from the model file (MODEL_PATH);
       - the same in the serve image (`podman run` to `/readyz` 200: adds the container's start);
       - MLServer (mlserver + mlserver-sklearn in their own venv, see bench_serving.py) serving the same fitted
         estimator, to `/v2/models/model/ready` 200.
Target (issue 11): the default render's serve image adds at most 300 MB to its base; cold start <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import HOST, free_port, mlserver_bin, package_of, running

REPO = Path(__file__).resolve().parents[1]
PODMAN = ["podman", "--runtime", "/usr/sbin/runc"]
TAG = "bench"
MB = 1_000_000


def sh(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done  # type: ignore[no-any-return]


def size(image: str) -> int:
    return int(json.loads(sh([*PODMAN, "image", "inspect", image]).stdout)[0]["Size"])


def ready_after(url: str, started: float, timeout: float = 120.0) -> float:
    """Seconds from `started` (perf_counter) until `url` answers 200, polling every 20 ms."""
    deadline = started + timeout
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.02)
    raise SystemExit(f"not ready after {timeout:.0f}s: {url}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold starts of each kind (default 5)")
    parser.add_argument("--mlserver-venv", type=Path, default=Path(tempfile.gettempdir()) / "mlscaffold-mlserver")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlscaffold-bench-images-") as tmp_name:
        tmp = Path(tmp_name)
        project = tmp / "project"
        sh([str(REPO / ".venv" / "bin" / "mlscaffold"), "new", str(project), "--defaults", "--no-git"])
        package = package_of(project)
        prefix = package.upper() + "_"
        base = re.search(r"^FROM (\S+) AS", (project / "Dockerfile").read_text(), re.M).group(1)  # type: ignore[union-attr]
        qualified = base if "/" in base.split(":")[0] else f"docker.io/library/{base}"
        sh(["bash", str(REPO / ".ci" / "build-base-image"), qualified])
        print("building both images with `make image` (podman) ...", flush=True)
        started = time.perf_counter()
        sh(["make", "image", f"TAG={TAG}", f"CONTAINER={' '.join(PODMAN)}",
            "BUILD_ARGS=--format docker --network=host --pull=never"], cwd=project)  # fmt: skip
        built = time.perf_counter() - started
        image = re.search(r"^IMAGE \?= (\S+)", (project / "Makefile").read_text(), re.M).group(1)  # type: ignore[union-attr]
        serve, pipeline = f"{image}:{TAG}", f"{image}:{TAG}-pipeline"
        sizes = {"base": size(qualified), "serve": size(serve), "pipeline": size(pipeline)}

        store = tmp / "mlflow"
        out = tmp / "out"
        for folder in (store, out):
            folder.mkdir()
            folder.chmod(0o777)
        port = free_port()
        tracking = f"http://{HOST}:{port}"
        sh([*PODMAN, "run", "-d", "--name", f"bench-mlflow-{port}", "--network=host", "--user", "10001:10001",
            "--volume", f"{store}:/mlflow", "--entrypoint", "mlflow", pipeline, "server", "--host", HOST,
            "--port", str(port), "--backend-store-uri", "sqlite:////mlflow/mlflow.db",
            "--artifacts-destination", "/mlflow/artifacts", "--serve-artifacts", "--workers", "1"])  # fmt: skip
        containers = [f"bench-mlflow-{port}"]
        try:
            ready_after(f"{tracking}/health", time.perf_counter())
            print("training and registering version 1 in the pipeline image ...", flush=True)
            steps = f"python -m {package} make-data --out /out/sample.csv"
            steps += f" && python -m {package} pipeline --data /out/sample.csv"
            sh([*PODMAN, "run", "--rm", "--network=host", "--user", "10001:10001", "--volume", f"{out}:/out",
                "--env", f"MLFLOW_TRACKING_URI={tracking}", "--env", f"{prefix}ARTIFACTS_DIR=/out/artifacts",
                "--env", f"{prefix}MODELS_DIR=/out/models", "--entrypoint", "sh", pipeline, "-c", steps])  # fmt: skip
            bundle = out / "artifacts" / "model.joblib"  # Settings.bundle_path

            venv = tmp / "serve-venv"
            uv = str(REPO / ".venv" / "bin" / "uv")
            sh([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
            python = str(venv / "bin" / "python")
            # Compiled, as pip leaves a venv (uv does not by default; PYTHONDONTWRITEBYTECODE may be set here).
            sh([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, "--require-hashes", "-r",
                str(project / "requirements" / "serve.txt")])  # fmt: skip
            sh([uv, "pip", "install", "--quiet", "--python", python, "--no-deps", "--no-build-isolation", str(project)])
            estimator = tmp / "mlserver" / "model.joblib"
            estimator.parent.mkdir()
            sh([python, "-c", "import joblib, sys; from pathlib import Path; from " + package + ".model import "
                "ModelBundle; joblib.dump(ModelBundle.load(Path(sys.argv[1])).predictor.estimator, sys.argv[2])",
                str(bundle), str(estimator)])  # fmt: skip
            mlserver = mlserver_bin(args.mlserver_venv)
            version = subprocess.run([str(mlserver), "--version"], capture_output=True, text=True).stdout.strip()

            env = {k: v for k, v in os.environ.items() if not k.startswith(prefix)} | {f"{prefix}HOME": str(project)}
            registry_env = env | {"MLFLOW_TRACKING_URI": tracking, f"{prefix}MODEL_VERSION": "1"}
            file_env = env | {f"{prefix}MODEL_PATH": str(bundle)}

            def process(run_env: dict[str, str]) -> float:
                port = free_port()
                cmd = [python, "-m", package, "serve", "--host", HOST, "--port", str(port)]
                started = time.perf_counter()
                with running(cmd, run_env, tmp, tmp / "serve.log"):
                    return ready_after(f"http://{HOST}:{port}/readyz", started)

            def container() -> float:
                port = free_port()
                name = f"bench-serve-{port}"
                cmd = [*PODMAN, "run", "-d", "--name", name, "--network=host", "--read-only", "--tmpfs", "/tmp",
                       "--env", f"MLFLOW_TRACKING_URI={tracking}", "--env", f"{prefix}MODEL_VERSION=1", serve,
                       "python", "-m", package, "serve", "--host", HOST, "--port", str(port)]  # fmt: skip
                started = time.perf_counter()
                sh(cmd)
                try:
                    return ready_after(f"http://{HOST}:{port}/readyz", started)
                finally:
                    subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True, check=False)

            def mlserver_start() -> float:
                http, grpc, metrics = free_port(), free_port(), free_port()
                models = estimator.parent
                settings = {"host": HOST, "http_port": http, "grpc_port": grpc, "metrics_port": metrics,
                            "parallel_workers": 0, "debug": False}  # fmt: skip
                (models / "settings.json").write_text(json.dumps(settings))
                (models / "model-settings.json").write_text(json.dumps({
                    "name": "model", "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": "./model.joblib", "version": "v1"}}))  # fmt: skip
                started = time.perf_counter()
                with running([str(mlserver), "start", str(models)], dict(os.environ), models, tmp / "mlserver.log"):
                    return ready_after(f"http://{HOST}:{http}/v2/models/model/ready", started)

            kinds = {
                "generated server, pinned version from MLflow (process)": lambda: process(registry_env),
                "generated server, model file (process)": lambda: process(file_env),
                "generated server, pinned version (serve image, podman run)": container,
                f"MLServer {version.split()[-1] if version else ''}, model file (process)": mlserver_start,
            }
            process(file_env)  # warm the page cache once: every kind then starts warm
            times: dict[str, list[float]] = {kind: [] for kind in kinds}
            for _ in range(args.runs):
                for kind, start in kinds.items():
                    times[kind].append(start())
        finally:
            for name in containers:
                subprocess.run([*PODMAN, "rm", "-f", name], capture_output=True, check=False)

    print(f"\nimages (podman, built in {built:.0f} s):")
    for kind, value in sizes.items():
        own = "" if kind == "base" else f"  ({(value - sizes['base']) / MB:.0f} MB of its own)"
        print(f"  {kind:9} {value / MB:6.0f} MB{own}")
    print(f"\ncold start, process start to ready, {args.runs} runs each (median, min-max):")
    for kind, values in times.items():
        print(f"  {kind:62} {statistics.median(values):5.2f} s  ({min(values):.2f}-{max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
