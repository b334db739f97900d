"""The `mlscaffold` CLI contract (SPEC §1): version, help, `new` and its options."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from helpers import REPO, Invoke, git, tree_files
from mlscaffold import __version__
from mlscaffold.template import TEMPLATE_REPOSITORY


def answers_of(project: Path) -> dict[str, object]:
    text = (project / ".copier-answers.yml").read_text()
    assert text.startswith("# Changes here will be overwritten by Copier")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def test_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"mlscaffold {__version__}"


def test_help_lists_new_and_every_spec_option(cli: Invoke) -> None:
    top = cli("--help")
    assert top.code == 0
    assert "new" in top.out
    sub = cli("new", "--help")
    assert sub.code == 0
    for option in ("--defaults", "--data", "-d", "--data-file", "--template", "--vcs-ref", "--no-git"):
        assert option in sub.out, option


def test_usage_error_exits_1_without_traceback(cli: Invoke) -> None:
    result = cli("new", "x", "--no-such-flag")
    assert result.code == 1
    assert "No such option" in result.err
    assert "Traceback" not in result.err


def test_new_defaults_is_one_commit_holding_the_whole_render(cli: Invoke, tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    result = cli("new", dest, "--defaults")
    assert result.code == 0, result.err
    assert f"Created {dest}" in result.out
    assert "make install pipeline" in result.out
    assert git(dest, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(dest, "status", "--porcelain") == ""
    tracked = set(git(dest, "ls-files").split())
    assert tracked == tree_files(dest)
    # No git identity on this machine: the commit falls back to the project's author.
    assert git(dest, "log", "-1", "--format=%an <%ae>").strip() == "ML Team <ml-team@example.org>"
    assert git(dest, "branch", "--show-current").strip() == "main"
    answers = answers_of(dest)
    assert answers["_commit"] == f"v{__version__}"
    assert answers["_src_path"] == TEMPLATE_REPOSITORY
    assert answers["project_slug"] == "fraud-detector"
    assert answers["package_name"] == "fraud_detector"


def test_new_no_git(cli: Invoke, tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    assert cli("new", dest, "--defaults", "--no-git").code == 0
    assert not (dest / ".git").exists()
    assert (dest / ".copier-answers.yml").is_file()


def test_new_into_an_existing_empty_directory(cli: Invoke, tmp_path: Path) -> None:
    dest = tmp_path / "empty"
    dest.mkdir()
    assert cli("new", dest, "--defaults").code == 0
    assert (dest / ".git").is_dir()


def test_data_wins_over_data_file_and_values_are_typed(cli: Invoke, tmp_path: Path) -> None:
    data_file = tmp_path / "answers.yml"
    data_file.write_text(
        "project_name: Churn Model\nml_framework: xgboost\nuse_gpu: true\nenvironments: [dev]\nmetric_threshold: 0.7\n"
    )
    dest = tmp_path / "proj"
    result = cli(
        "new", dest, "--defaults", "--data-file", data_file,
        "-d", "ml_framework=pytorch", "--data", "environments=[dev, prod]", "-d", "metric_threshold=0.85",
    )  # fmt: skip
    assert result.code == 0, result.err
    answers = answers_of(dest)
    assert answers["project_name"] == "Churn Model"
    assert answers["project_slug"] == "churn-model"
    assert answers["ml_framework"] == "pytorch"
    assert answers["use_gpu"] is True
    assert answers["environments"] == ["dev", "prod"]
    assert answers["metric_threshold"] == 0.85


def test_str_answers_keep_the_text_as_typed(cli: Invoke, tmp_path: Path) -> None:
    dest = tmp_path / "proj"
    result = cli(
        "new", dest, "--defaults", "-d", "project_name=2024", "-d", "project_slug=y2024", "-d", "python_version=3.12"
    )
    assert result.code == 0, result.err
    answers = answers_of(dest)
    assert answers["project_name"] == "2024"
    assert answers["python_version"] == "3.12"


def test_template_option_renders_a_tagged_checkout_and_records_it(cli: Invoke, tmp_path: Path) -> None:
    checkout = tmp_path / "tpl"
    checkout.mkdir()
    for name in ("copier.yml", "template"):
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, checkout / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (checkout / name).write_bytes(src.read_bytes())
    git(checkout, "init", "-q", "-b", "main")
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "template")
    git(checkout, "tag", "v9.9.9")
    dest = tmp_path / "proj"
    result = cli("new", dest, "--defaults", "--template", checkout, "--vcs-ref", "v9.9.9")
    assert result.code == 0, result.err
    answers = answers_of(dest)
    assert answers["_commit"] == "v9.9.9"
    assert answers["_src_path"] == str(checkout)
