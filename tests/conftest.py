"""Fixtures: the offline schemas, the CLI run in-process, git as on a fresh machine, and a session cache of renders.
Plain helpers live in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import SCHEMA_ENV, V1, Invoke, Renders, Result, TemplateRepo, schema_location
from mlscaffold.cli import run


@pytest.fixture(scope="session")
def schema_dir() -> Path:
    """The offline custom-resource schemas (kubeconform layout): $MLSCAFFOLD_SCHEMA_LOCATION, set by .ci/run."""
    path = Path(schema_location())
    if not (path / "argoproj.io").is_dir():
        pytest.fail(f"{SCHEMA_ENV}={path} holds no CRD schemas: point it at shared/schemas/crds")
    return path


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


@pytest.fixture(scope="session")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    return Renders(tmp_path_factory.mktemp("renders"))


# The update tests' small tagged template (helpers.V1) and a project made from it with mlscaffold new.
@pytest.fixture
def tpl(tmp_path: Path) -> TemplateRepo:
    return TemplateRepo(tmp_path / "template-repo").write(V1).release("v1.0.0")


@pytest.fixture
def project(cli: Invoke, tpl: TemplateRepo, tmp_path: Path) -> Path:
    dest = tmp_path / "project"
    result = cli("new", dest, "--defaults", "--template", tpl.path)
    assert result.code == 0, result.err
    return dest
