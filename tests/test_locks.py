"""The generated project's hash locks: `make install` refuses a tampered or stale lock; `tools/lock.py --check` names
a lock that no longer matches what the template declares.

The install tests run the generated Makefile's real `install` target (uv and pip, the real package registry) on a
render whose dependencies are cut down to one small package, `six`, plus the build backend: the same recipe and the
same kind of lock as a full render, in seconds rather than minutes. The lock entries are copied from the render's own
requirements/runtime.txt, so their hashes are the real ones.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, render

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]  # builds virtual environments; one worker

UV = shutil.which("uv", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
SMALL_SET = ("editables", "hatchling", "packaging", "pathspec", "pluggy", "six", "tomlkit", "trove-classifiers")
BOGUS = "sha256:" + "0" * 64


def entries(lock: str) -> dict[str, str]:
    """A compiled lock's entries by package name (the requirement line and its `--hash` lines)."""
    found: dict[str, str] = {}
    name = ""
    for line in lock.splitlines():
        if line.startswith((" ", "\t")) and name:
            found[name] += "\n" + line
        elif line and not line.startswith(("#", "-r ")):
            name = re.split(r"[=;\s]", line, maxsplit=1)[0].lower()
            found[name] = line
    return found


@pytest.fixture(scope="module")
def small_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A default render whose pyproject declares only `six`, its lock the real entries for six and hatchling."""
    project = render(tmp_path_factory.mktemp("locks") / "project")
    req = project / "requirements"
    locked = entries((req / "runtime.txt").read_text()) | entries((req / "dev.txt").read_text())
    (req / "runtime.txt").write_text("".join(locked[name] + "\n" for name in SMALL_SET))
    (req / "dev.txt").write_text("-r runtime.txt\n")
    pyproject = project / "pyproject.toml"
    text = re.sub(r"(?ms)^dependencies = \[.*?^\]", 'dependencies = ["six>=1.16"]', pyproject.read_text(), count=1)
    pyproject.write_text(re.sub(r"(?ms)^dev = \[.*?^\]", "dev = []", text, count=1))
    return project


def make_install(project: Path, installer: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    copy = tmp_path / "project"
    if not copy.exists():
        shutil.copytree(project, copy)
    args = ["make", "install", f"INSTALLER={installer}"] + ([f"UV={UV}"] if installer == "uv" else [])
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(args, cwd=copy, env=env, capture_output=True, text=True, timeout=600, check=False)


def edit(project: Path, tmp_path: Path, path: str, old: str, new: str) -> None:
    shutil.copytree(project, tmp_path / "project")
    file = tmp_path / "project" / path
    assert old in file.read_text()
    file.write_text(file.read_text().replace(old, new))


@pytest.fixture(params=["uv", "pip"])
def installer(request: pytest.FixtureRequest) -> str:
    if request.param == "uv" and UV is None and os.environ.get("CI"):
        pytest.fail("uv is not installed: .ci/run installs it into .venv")
    if request.param == "uv" and UV is None:
        pytest.skip("uv is not installed here (pip install uv); CI runs this case")
    return str(request.param)


def test_the_small_lock_installs_with_hashes_checked(small_project: Path, installer: str, tmp_path: Path) -> None:
    done = make_install(small_project, installer, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    said = {"uv": "uv pip install --require-hashes", "pip": "pip install --require-hashes"}[installer]
    assert done.stdout.startswith(said + " -r requirements/dev.txt"), done.stdout
    python = tmp_path / "project" / ".venv" / "bin" / "python"
    assert subprocess.run([str(python), "-c", "import six"], check=False).returncode == 0


def test_a_tampered_hash_stops_make_install_naming_the_file(
    small_project: Path, installer: str, tmp_path: Path
) -> None:
    six = entries((small_project / "requirements" / "runtime.txt").read_text())["six"]
    tampered = re.sub(r"sha256:[0-9a-f]{64}", BOGUS, six)
    edit(small_project, tmp_path, "requirements/runtime.txt", six, tampered)
    done = make_install(small_project, installer, tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert re.search(r"hash", out, re.I) and "six" in out, out[-3000:]
    assert not (tmp_path / "project" / ".venv" / ".installed").exists()


def test_a_lock_missing_a_declared_dependency_fails_make_install(
    small_project: Path, installer: str, tmp_path: Path
) -> None:
    edit(small_project, tmp_path, "pyproject.toml", '"six>=1.16"', '"six>=1.16", "idna>=3"')
    done = make_install(small_project, installer, tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "idna" in out and "not installed" in out, out[-3000:]


def test_an_unknown_installer_is_one_clear_line(small_project: Path, tmp_path: Path) -> None:
    done = make_install(small_project, "poetry", tmp_path)
    assert done.returncode != 0
    assert "INSTALLER='poetry' is not an installer; valid: uv, pip" in done.stderr
    assert "Traceback" not in done.stderr


def lock_check(locks: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(REPO / "tools" / "lock.py"), "--check", "--only", "sklearn-none", "--locks", str(locks)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.skipif(UV is None and not os.environ.get("CI"), reason="tools/lock.py needs uv (pip install uv)")
def test_lock_check_passes_on_the_committed_locks_and_names_a_stale_one(tmp_path: Path) -> None:
    locks = tmp_path / "locks"
    locks.mkdir()
    for name in ("sklearn-none.serve.txt", "sklearn-none.runtime.txt", "sklearn-none.dev.txt"):
        shutil.copy2(REPO / "template" / "_locks" / name, locks / name)
    done = lock_check(locks)
    assert done.returncode == 0, done.stderr
    assert "stale: none" in done.stdout

    # A lock that lacks a package the declared dependencies need (as after adding one to pyproject.toml).
    runtime = locks / "sklearn-none.runtime.txt"
    scipy = entries(runtime.read_text())["scipy"]
    runtime.write_text(runtime.read_text().replace(scipy + "\n", ""))
    done = lock_check(locks)
    assert done.returncode == 1
    assert "stale lock(s)" in done.stderr and "sklearn-none.runtime.txt" in done.stderr, done.stderr
    assert "+scipy==" in done.stderr


def test_the_serving_lock_is_the_runtime_lock_without_the_pipeline_libraries(tmp_path: Path) -> None:
    """requirements/serve.txt (the serve image): the same entries as runtime.txt, MLflow's client instead of its
    server, no pandera; runtime.txt (the pipeline image) has them all."""
    req = render(tmp_path / "project") / "requirements"
    serve, runtime = (entries((req / name).read_text()) for name in ("serve.txt", "runtime.txt"))
    assert all(runtime.get(name) == entry for name, entry in serve.items()), "serve.txt locks what runtime.txt locks"
    assert {"mlflow-skinny", "fastapi", "uvicorn", "scikit-learn"} <= set(serve)
    assert not {"mlflow", "pandera", "flask", "sqlalchemy"} & set(serve)
    assert {"mlflow", "pandera", "flask", "sqlalchemy"} <= set(runtime)


def test_the_render_installs_the_lock_of_its_framework(tmp_path: Path) -> None:
    """Each render carries its own set: the CPU torch build by default, PyPI's (CUDA) build with use_gpu."""
    cpu = entries((render(tmp_path / "cpu", {"ml_framework": "pytorch"}) / "requirements/runtime.txt").read_text())
    gpu_project = render(tmp_path / "gpu", {"ml_framework": "pytorch", "use_gpu": "true"})
    gpu = entries((gpu_project / "requirements/runtime.txt").read_text())
    sklearn = entries((render(tmp_path / "sk", {"model_registry": "none"}) / "requirements/runtime.txt").read_text())
    assert cpu["torch"].startswith("torch==") and "+cpu" in cpu["torch"].split()[0]
    assert not any(name.startswith("nvidia-") for name in cpu)
    assert "+cpu" not in gpu["torch"].split()[0] and any(name.startswith("nvidia-") for name in gpu)
    assert "torch" not in sklearn and "mlflow" not in sklearn and "scikit-learn" in sklearn
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in (tmp_path / "cpu" / "Makefile").read_text()
    assert "TORCH_INDEX ?=\n" in (gpu_project / "Makefile").read_text()
