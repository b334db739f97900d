"""End to end, as a user: install the wheel, render offline, then run the generated project's own commands.

Slow (each generated project builds its own virtual environment from the package registry): marked `slow`, run in
CI. The renders come from the *installed wheel*, outside the source tree, with every proxy pointed at a closed port:
rendering needs no network and no checkout.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from helpers import REPO
from helpers import run_ok as run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

OFFLINE = {var: "http://127.0.0.1:9" for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}


@pytest.fixture(scope="module")
def user_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh user's environment: no git identity, no proxies from this machine, no VIRTUAL_ENV."""
    home = tmp_path_factory.mktemp("home")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH") and "proxy" not in k.lower()}
    env |= {"HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(home / ".gitconfig")}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    return env


@pytest.fixture(scope="module")
def mlscaffold_bin(tmp_path_factory: pytest.TempPathFactory, user_env: dict[str, str]) -> Path:
    """`mlscaffold` from a wheel built from this checkout and installed into a fresh virtual environment."""
    work = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(work), str(REPO)], cwd=work)
    wheel = next(work.glob("mlscaffold-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mlscaffold/_template/copier.yml" in names
    assert any(n.startswith("mlscaffold/_template/template/src/") for n in names)
    run([sys.executable, "-m", "venv", str(work / "venv")], cwd=work)
    run([str(work / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], cwd=work, env=user_env)
    return work / "venv" / "bin" / "mlscaffold"


def render_offline(mlscaffold_bin: Path, dest: Path, env: dict[str, str], *data: str) -> str:
    args = [str(mlscaffold_bin), "new", str(dest), "--defaults", *(a for d in data for a in ("-d", d))]
    return run(args, cwd=dest.parent, env=env | OFFLINE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(url: str, body: object | None = None, timeout: float = 10) -> tuple[int, dict[str, object] | str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as response:
            text = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        text, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def readme_predict_example(project: Path) -> dict[str, object]:
    """The JSON body of the README's curl /predict example: the claim under test."""
    readme = (project / "README.md").read_text()
    match = re.search(r"curl -s http://127\.0\.0\.1:8000/predict .*?-d '(\{.*?\})'", readme, re.S)
    assert match, "the README shows a curl /predict example"
    body = json.loads(match.group(1))
    assert isinstance(body, dict)
    return body


def test_default_project_from_the_wheel_works_on_day_one(
    mlscaffold_bin: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    project = tmp_path / "fraud-detector"
    render_offline(mlscaffold_bin, project, user_env)
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == "https://github.com/mlscaffold/mlscaffold.git"
    assert run(["git", "rev-list", "--count", "HEAD"], cwd=project).strip() == "1"
    assert run(["git", "status", "--porcelain"], cwd=project).strip() == ""

    # The README's two set-up commands, then the rest of what it claims. uv is not on this user's PATH: `make install`
    # bootstraps it from the render's requirements/uv.txt and installs the hash-locked requirements/dev.txt with it.
    installed = run(["make", "install", "pipeline"], cwd=project, env=user_env)
    assert "uv pip install --require-hashes -r requirements/dev.txt" in installed
    assert (project / ".venv" / "bin" / "uv").is_file()
    out = run(["make", "test", "test-integration"], cwd=project, env=user_env)
    assert len(re.findall(r"\b\d+ passed\b", out)) == 2, out[-2000:]  # the fast tests, then the integration tests
    run(["make", "lint"], cwd=project, env=user_env)
    run(["make", "help"], cwd=project, env=user_env)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(["make", "serve", f"PORT={port}"], project, user_env, ready=f"{base}/readyz", seconds=60):
        assert http(f"{base}/healthz")[0] == 200
        record = readme_predict_example(project)
        status, one = http(f"{base}/predict", record)
        assert status == 200, one
        assert isinstance(one, dict) and one["prediction"] in (0, 1) and 0.0 <= float(one["probability"]) <= 1.0
        assert one["model_version"] == "1"
        status, batch = http(f"{base}/predict", {"instances": [record, record]})
        assert status == 200 and isinstance(batch, dict) and len(batch["predictions"]) == 2
        status, bad = http(f"{base}/predict", {**record, "amount": "lots"})
        assert status == 422 and "amount" in json.dumps(bad)
        status, metrics = http(f"{base}/metrics")
        assert status == 200 and "predict_requests_total" in str(metrics)

    # The rest of what the README and `make help` claim.
    assert "roc_auc" in run(["make", "metrics"], cwd=project, env=user_env)
    assert re.search(r"SUCCESS|\bpassed\b", run(["make", "test-alerts"], cwd=project, env=user_env))
    run(["make", "data"], cwd=project, env=user_env)
    drift = subprocess.run(["make", "drift"], cwd=project, env=user_env, capture_output=True, text=True, timeout=300)
    assert drift.returncode != 0, "data/current.csv is the shifted sample: drift must be detected"
    assert json.loads((project / "artifacts" / "drift.json").read_text())["drift"] is True
    run(["make", "format"], cwd=project, env=user_env)
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project).strip() == ""
    mlflow_port = free_port()
    mlflow_ui = ["make", "mlflow-ui", f"MLFLOW_PORT={mlflow_port}"]
    with running(mlflow_ui, project, user_env, ready=f"http://127.0.0.1:{mlflow_port}/", seconds=180):
        pass


@contextlib.contextmanager
def running(cmd: list[str], cwd: Path, env: dict[str, str], ready: str, seconds: float) -> Iterator[None]:
    """Run a server with `cmd` until GET `ready` answers 200 (or fail, with its output), then stop it after."""
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + seconds
            while True:
                try:
                    if http(ready, timeout=5)[0] == 200:
                        break
                except OSError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    output.seek(0)
                    pytest.fail(f"{' '.join(cmd)}: {ready} not ready in {seconds} s\n{output.read().decode()[-3000:]}")
                time.sleep(0.5)
            yield
        finally:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


def torch_cpu_stand_in() -> list[str]:
    """Make arguments for PyTorch's CPU build on a machine that cannot reach download.pytorch.org.

    This machine has no route to PyTorch's CPU index, but keeps that index's torch 2.13.0+cpu wheel on disk
    (/opt/wheels, see the machine notes): `TORCH_INDEX=` drops the index and the folder stands in for it. The lock's
    sha256 of torch==2.13.0+cpu is checked against that file as it would be against the index's.
    """
    try:
        socket.getaddrinfo("download.pytorch.org", 443)
        return []
    except OSError:
        wheels = sorted(Path("/opt/wheels").glob("torch-*+cpu-*.whl"))
        assert wheels, "download.pytorch.org is unreachable and no CPU torch wheel lies in /opt/wheels"
        return ["TORCH_INDEX=", f"INSTALL_ARGS=--find-links {wheels[0].parent}"]


@pytest.mark.parametrize(
    ("answers", "installer"),
    [
        (("ml_framework=xgboost", "problem_type=regression", "model_registry=none"), "pip"),
        (("ml_framework=pytorch", "primary_metric=f1", "python_version=3.11"), "uv"),
    ],
    ids=["xgboost-regression-files-pip", "pytorch-classification-mlflow-uv"],
)
def test_other_frameworks_install_test_and_run_their_pipeline(
    mlscaffold_bin: Path, user_env: dict[str, str], tmp_path: Path, answers: tuple[str, ...], installer: str
) -> None:
    """The README's two commands: with the pip fallback (`make install INSTALLER=pip`) and with uv (bootstrapped);
    then the tests and the lint step (strict mypy) of a framework and problem type other than the default's."""
    project = tmp_path / "project"
    render_offline(mlscaffold_bin, project, user_env, *answers)
    extra = [] if installer == "uv" else ["INSTALLER=pip"]
    extra += torch_cpu_stand_in() if "ml_framework=pytorch" in answers else []
    installed = run(["make", "install", "pipeline", *extra], cwd=project, env=user_env)
    said = {"uv": "uv pip install --require-hashes", "pip": "\npip install --require-hashes"}[installer]
    assert said + " -r requirements/dev.txt" in "\n" + installed, installed[-3000:]
    assert (project / ".venv" / "bin" / "uv").exists() == (installer == "uv")
    if "ml_framework=pytorch" in answers:
        python = str(project / ".venv" / "bin" / "python")
        torch = run([python, "-c", "import torch; print(torch.__version__)"], cwd=project)
        assert torch.strip().endswith("+cpu"), torch
    out = run(["make", "test", "test-integration"], cwd=project, env=user_env)
    assert len(re.findall(r"\b\d+ passed\b", out)) == 2, out[-2000:]  # the fast tests, then the integration tests
    assert not re.search(r"\b\d+ failed\b", out), out[-2000:]
    run(["make", "lint"], cwd=project, env=user_env)  # ruff and strict mypy are clean on every framework


def build_newer_mlscaffold(tmp: Path, env: dict[str, str], version: str) -> Path:
    """A newer release of mlscaffold: this checkout with another version and a template change, wheel-installed."""
    src = tmp / "mlscaffold-newer"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "copier.yml"):
        shutil.copy2(REPO / name, src / name)
    for name in ("generator", "template"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    version_file = src / "generator" / "mlscaffold" / "_version.py"
    version_file.write_text(re.sub(r'__version__ = "[^"]+"', f'__version__ = "{version}"', version_file.read_text()))
    with (src / "template" / "Makefile.jinja").open("a") as makefile:
        makefile.write(f"\n# Added in mlscaffold {version}.\n")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp), str(src)], cwd=tmp)
    run([sys.executable, "-m", "venv", str(tmp / "venv-newer")], cwd=tmp)
    wheel = next(tmp.glob(f"mlscaffold-{version}-*.whl"))
    run([str(tmp / "venv-newer" / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp, env=env)
    return tmp / "venv-newer" / "bin" / "mlscaffold"


def test_newer_installed_mlscaffold_updates_an_older_project_offline(
    mlscaffold_bin: Path, user_env: dict[str, str], tmp_path: Path, schema_dir: Path
) -> None:
    env = user_env | {"MLSCAFFOLD_SCHEMA_LOCATION": str(schema_dir)}
    project = tmp_path / "project"
    render_offline(mlscaffold_bin, project, env)
    with (project / "README.md").open("a") as readme:
        readme.write("\nOur team's notes.\n")
    run(["git", "-c", "user.name=u", "-c", "user.email=u@example.org", "commit", "-qam", "notes"], cwd=project)
    newer = build_newer_mlscaffold(tmp_path, env, "99.0.0")

    def check(tool: Path) -> tuple[int, dict[str, object]]:
        done = subprocess.run(
            [str(tool), "check", str(project), "--json"], env=env | OFFLINE, capture_output=True, text=True
        )
        return done.returncode, json.loads(done.stdout)

    assert check(mlscaffold_bin)[0] == 0
    code, report = check(newer)
    assert (code, report["update_available"], report["latest_version"]) == (2, True, "v99.0.0")

    out = run([str(newer), "update", str(project)], cwd=tmp_path, env=env | OFFLINE)
    assert "updated       Makefile" in out
    assert "# Added in mlscaffold 99.0.0." in (project / "Makefile").read_text()
    assert "Our team's notes." in (project / "README.md").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v99.0.0"
    assert run(["git", "status", "--porcelain"], cwd=project).strip() == ""
    assert check(newer)[0] == 0
