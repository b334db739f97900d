"""End to end, offline: a default render trains twice against a real `mlflow server`, and each model reaches dev,
staging and prod only through git, with the generated project's own commands (issue 9).

Stand-ins, because they cannot exist here: the git server is a bare repository on disk, and the GitHub pull-request
API is a local HTTP server that records what it is sent and answers as GitHub does (201 with the request's URL).
Slow (the project builds its own virtual environment): marked `slow`, run in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import run_ok

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

MLSCAFFOLD = Path(sys.executable).with_name("mlscaffold")
PACKAGE = "fraud_detector"
ORDER = ("dev", "staging", "prod")


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 1200) -> str:
    return run_ok(cmd, cwd, env, timeout)


def git(*args: str, cwd: Path) -> str:
    command = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@localhost", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            status, text = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def wait_for(check: Any, seconds: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.5)
    pytest.fail(f"{what} within {seconds} s" + (f"\n{log.read_text()[-3000:]}" if log and log.is_file() else ""))


@contextlib.contextmanager
def background(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            process.wait(timeout=60)


class PullRequestAPI(ThreadingHTTPServer):
    """Stands in for GitHub's REST API: records each call, answers a new pull request."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: PullRequestAPI

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        reply = json.dumps({"number": len(self.server.calls), "html_url": f"http://pulls/{len(self.server.calls)}"})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *_: Any) -> None:
        pass


def model_version(bare: Path, env: str, ref: str = "main") -> str:
    text = git("show", f"{ref}:deploy/k8s/overlays/{env}/kustomization.yaml", cwd=bare)
    lines = text.splitlines()
    index = next(i for i, line in enumerate(lines) if line.strip() == "name: FRAUD_DETECTOR_MODEL_VERSION")
    return lines[index + 1].split("value:")[1].strip().strip('"')


def merge(bare: Path, branch: str) -> None:
    """Merge a pull request (its branch was made from main): main becomes the branch."""
    git("update-ref", "refs/heads/main", f"refs/heads/{branch}", cwd=bare)


def test_two_trainings_reach_prod_only_through_git(tmp_path: Path) -> None:
    if shutil.which("git") is None or not MLSCAFFOLD.is_file():
        pytest.fail("git and mlscaffold (this checkout's venv) are needed")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    project = tmp_path / "fraud-detector"
    run([str(MLSCAFFOLD), "new", str(project), "--defaults"], cwd=tmp_path, env=env)
    run(["make", "install"], cwd=project, env=env)
    python = str(project / ".venv" / "bin" / "python")

    # The GitOps repository (a bare repository standing in for GitHub) holds the project as rendered.
    bare = tmp_path / "gitops.git"
    git("init", "--quiet", "--bare", "--initial-branch", "main", str(bare), cwd=tmp_path)
    git("push", "--quiet", str(bare), "HEAD:main", cwd=project)
    api = PullRequestAPI()
    threading.Thread(target=api.serve_forever, daemon=True).start()

    mlflow_port = free_port()
    store = tmp_path / "mlflow"
    store.mkdir()
    mlflow_uri = f"http://127.0.0.1:{mlflow_port}"
    env |= {
        "MLFLOW_TRACKING_URI": mlflow_uri,
        "FRAUD_DETECTOR_GITOPS_REPO": str(bare),
        "FRAUD_DETECTOR_GIT_API_URL": f"http://127.0.0.1:{api.server_address[1]}",
        "FRAUD_DETECTOR_GIT_REPOSITORY": "example-org/fraud-detector",
        "FRAUD_DETECTOR_GIT_TOKEN": "e2e-token",
    }
    mlflow_server = [
        str(project / ".venv" / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
        "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}", "--artifacts-destination", str(store / "artifacts"),
        "--workers", "1",
    ]  # fmt: skip
    with background(mlflow_server, tmp_path, env, tmp_path / "mlflow.log"):
        wait_for(lambda: get(f"{mlflow_uri}/health")[0] == 200, 240, "MLflow up", tmp_path / "mlflow.log")

        def train_and_propose() -> str:
            assert "make set-model VERSION=" in run([python, "-m", PACKAGE, "pipeline"], cwd=project, env=env)
            return run([python, "-m", PACKAGE, "propose"], cwd=project, env=env)

        def chain() -> None:
            """What CI runs after each merge: the promotion chain, in a fresh checkout, with the runner's python3."""
            checkout = Path(tempfile.mkdtemp(dir=tmp_path))
            git("clone", "--quiet", str(bare), str(checkout / "repo"), cwd=tmp_path)
            repo = checkout / "repo"
            for key, value in (("user.name", "ci"), ("user.email", "ci@localhost")):
                git("config", key, value, cwd=repo)
            run(["python3", f"src/{PACKAGE}/gitops.py", "chain"], cwd=repo, env=env)

        # Training 1: v1 is registered; nothing serves it until its pull request pins it in dev.
        assert "proposed fraud-detector v1 for dev" in train_and_propose()
        assert [model_version(bare, e) for e in ORDER] == ["none"] * 3
        assert model_version(bare, "dev", "model/dev") == "1"
        merge(bare, "model/dev")
        for env_name in ORDER[1:]:
            chain()
            assert model_version(bare, env_name, f"promote/{env_name}") == "1"
            merge(bare, f"promote/{env_name}")
        assert [model_version(bare, e) for e in ORDER] == ["1"] * 3

        # Training 2: its pull request compares v2 with what dev runs (v1), on the same data, with the lineage.
        assert "proposed fraud-detector v2 for dev" in train_and_propose()
        body = api.calls[-1]["body"]
        assert body["head"] == "model/dev"
        assert "v2 (new)" in body["body"]
        assert "v1 (dev now, on the same data)" in body["body"]
        assert "git_commit: `" in body["body"]
        assert "data_sha256: `" in body["body"]
        merge(bare, "model/dev")
        for env_name in ORDER[1:]:
            chain()
            merge(bare, f"promote/{env_name}")
        assert [model_version(bare, e) for e in ORDER] == ["2"] * 3
        titles = [call["body"]["title"] for call in api.calls]
        assert titles == [
            "Serve fraud-detector v1 in dev", "Promote model v1 to staging", "Promote model v1 to prod",
            "Serve fraud-detector v2 in dev", "Promote model v2 to staging", "Promote model v2 to prod",
        ]  # fmt: skip
        assert {call["path"] for call in api.calls} == {"/repos/example-org/fraud-detector/pulls"}
        assert {call["auth"] for call in api.calls} == {"Bearer e2e-token"}

        # Rollback of prod is `git revert` of its promotion commit: prod pins v1 again.
        checkout = tmp_path / "rollback"
        git("clone", "--quiet", str(bare), str(checkout), cwd=tmp_path)
        git("revert", "--no-edit", "HEAD", cwd=checkout)
        git("push", "--quiet", "origin", "HEAD:main", cwd=checkout)
        assert model_version(bare, "prod") == "1"
        assert model_version(bare, "staging") == "2"

        # A server serves exactly what its environment pins, while a newer version exists.
        port = free_port()
        serve_env = env | {"FRAUD_DETECTOR_MODEL_VERSION": model_version(bare, "prod")}
        serve = [python, "-m", PACKAGE, "serve", "--port", str(port)]
        with background(serve, project, serve_env, tmp_path / "serve.log"):
            ready = f"http://127.0.0.1:{port}/readyz"
            wait_for(lambda: get(ready)[0] == 200, 180, "the prod server ready", tmp_path / "serve.log")
            assert get(ready)[1]["model_version"] == "1"
