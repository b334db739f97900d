"""Shared fixtures: the CLI run in-process, and renders of the bundled template."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlscaffold.cli import run

REPO = Path(__file__).resolve().parents[1]
SCHEMA_ENV = "MLSCAFFOLD_SCHEMA_LOCATION"


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    """The offline custom-resource schemas (kubeconform layout): $MLSCAFFOLD_SCHEMA_LOCATION, set by .ci/run."""
    location = os.environ.get(SCHEMA_ENV) or str(REPO.parent / "shared" / "schemas" / "crds")
    path = Path(location)
    if not (path / "argoproj.io").is_dir():
        pytest.fail(f"{SCHEMA_ENV}={location} holds no CRD schemas: point it at shared/schemas/crds")
    return path


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]


Invoke = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Invoke:
    """Run ``mlscaffold ARGS`` in-process; return its exit code, stdout and stderr."""

    def invoke(*args: str | os.PathLike[str]) -> Result:
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


@pytest.fixture(autouse=True)
def _no_user_git_config(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests see git as a fresh machine does: no global config, so no identity and no default branch."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var, raising=False)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def tree_files(root: Path) -> set[str]:
    """Every file under ``root`` as a POSIX path, without the .git folder."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}


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


def commit_all(project: Path, message: str) -> None:
    git(project, "add", "-A")
    git(project, "-c", "user.name=u", "-c", "user.email=u@example.org", "commit", "-qm", message)
