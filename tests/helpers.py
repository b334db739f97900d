"""Helpers the tests share: the repository's paths, git and subprocess calls, renders of the bundled template, and
copier templates in git repositories of their own (copier's tests/helpers.py pattern). Fixtures live in conftest."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlscaffold.answers import parse_data_args
from mlscaffold.engine import new_project

REPO = Path(__file__).resolve().parents[1]
SCHEMA_ENV = "MLSCAFFOLD_SCHEMA_LOCATION"


@dataclass(frozen=True)
class Result:
    """What one in-process run of the CLI printed and returned."""

    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


Invoke = Callable[..., Result]


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A command's completed process, whatever its exit status."""
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=env)


def run_ok(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> str:
    """A command that must succeed: its stdout and stderr, or a failure showing both tails."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout + done.stderr


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def head(project: Path) -> str:
    return git(project, "rev-parse", "HEAD").strip()


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "-c", "user.name=u", "-c", "user.email=u@example.org", "commit", "-qm", message)


def tree_files(root: Path) -> set[str]:
    """Every file under ``root`` as a POSIX path, without the .git folder."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}


def answers_of(project: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def render(dest: Path, answers: Mapping[str, str] | None = None) -> Path:
    """Render the bundled template into ``dest`` with raw ``--data`` answers (others at their defaults), no git."""
    args = [f"{key}={value}" for key, value in (answers or {}).items()]
    new_project(dest, data=parse_data_args(args), defaults=True, git=False)
    return dest


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl is not on PATH: the manifests cannot be built")
        pytest.skip("kubectl is not on PATH: the manifests cannot be built")
    return path


def build_manifests(project: Path) -> Path:
    """`make manifests` in the render (the generated project's own target): every Kustomize folder, built."""
    kubectl()
    done = run(["make", "--no-print-directory", "manifests"], cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    return project / "build" / "manifests"


#: Named answer sets of the bundled template, rendered once per test session (conftest's ``renders`` fixture) and
#: shared by the render, scanner and pod-policy tests. Together: every deployment strategy, registry and CI provider,
#: GPU and drift on and off, environments with and without dev.
RENDERS: dict[str, dict[str, str]] = {
    "default": {},
    "github-rolling-none-gpu": {
        "ci_provider": "github", "deployment_strategy": "rolling", "model_registry": "none", "use_gpu": "true",
    },
    "github-canary-no-dev": {
        "ci_provider": "github", "deployment_strategy": "canary", "environments": "[staging, prod]",
        "ml_framework": "pytorch",
    },
    "gitlab-canary": {"ci_provider": "gitlab", "deployment_strategy": "canary", "problem_type": "regression"},
    "gitlab-bluegreen-prod": {"ci_provider": "gitlab", "deployment_strategy": "bluegreen", "environments": "[prod]"},
    "none-bluegreen": {
        "ci_provider": "none", "deployment_strategy": "bluegreen", "environments": "[dev]", "drift_detection": "false",
    },
    "xgboost-regression-rolling-gitlab": {
        "ml_framework": "xgboost", "problem_type": "regression", "deployment_strategy": "rolling",
        "ci_provider": "gitlab", "model_registry": "none", "environments": "[dev]",
    },
    "pytorch-bluegreen-gpu-no-drift": {
        "ml_framework": "pytorch", "deployment_strategy": "bluegreen", "use_gpu": "true", "drift_detection": "false",
        "ci_provider": "none", "environments": "[staging, prod]",
    },
}  # fmt: skip


class Renders:
    """Renders of the bundled template, made once per session per answer set and shared by every test that reads
    one. They are read-only: a test that changes files copies the render first (``shutil.copytree``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[tuple[tuple[str, str], ...], Path] = {}
        self._built: set[Path] = set()

    def __call__(self, answers: str | Mapping[str, str], *, manifests: bool = False) -> Path:
        """The render of a named answer set (``helpers.RENDERS``) or of raw answers; with ``manifests``, after the
        generated project's own ``make manifests``."""
        data = RENDERS[answers] if isinstance(answers, str) else dict(answers)
        key = tuple(sorted(data.items()))
        if key not in self._made:
            self._made[key] = render(self.root / f"render-{len(self._made):02d}", data)
        project = self._made[key]
        if manifests and project not in self._built:
            build_manifests(project)
            self._built.add(project)
        return project


class TemplateRepo:
    """A copier template in a git repository of its own, released by tags (copier's tests/helpers.py pattern)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")

    def write(self, files: dict[str, str]) -> TemplateRepo:
        for rel, text in files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return self

    def remove(self, *rels: str) -> TemplateRepo:
        for rel in rels:
            (self.path / rel).unlink()
        return self

    def release(self, tag: str) -> TemplateRepo:
        git(self.path, "add", "-A")
        git(self.path, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", f"release {tag}")
        git(self.path, "tag", tag)
        return self


#: A small template of the shape of the real one (an answers file, a conditional CI folder), for update tests.
A_LINES = "".join(f"line {i}\n" for i in range(1, 21))
V1 = {
    "copier.yml": (
        "_subdirectory: template\n"
        "name: {type: str, default: demo}\n"
        "ci_provider: {type: str, choices: [github, gitlab, none], default: github}\n"
    ),
    "template/{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers | to_nice_yaml }}",
    "template/a.txt": A_LINES,
    "template/README.md.jinja": "# {{ name }}\n",
    "template/old.txt": "to be removed by v2\n",
    "template/kept.txt": "the user deletes this\n",
    "template/{% if ci_provider == 'github' %}.github{% endif %}/workflows/ci.yml": (
        "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make test\n"
    ),
    "template/{% if ci_provider == 'gitlab' %}.gitlab-ci.yml{% endif %}": "test: {script: [make test]}\n",
}


def schema_location() -> str:
    return os.environ.get(SCHEMA_ENV) or str(REPO.parent / "shared" / "schemas" / "crds")
