"""Bad input never gets a traceback and never writes: one `error:` line naming the value, exit 1 (SPEC §1, §2)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from helpers import Invoke
from mlscaffold.sample import inference_module

MAX_SAMPLE_BYTES = inference_module().MAX_SAMPLE_BYTES  # the one limit, in the template's infer_schema.py

# (answers, the key the error must name, a text the error must contain: the bad value or what is wrong)
INVALID = [
    ({"project_name": ""}, "project_name", "1 to 60"),
    ({"project_name": "x" * 61}, "project_name", "x" * 61),
    ({"project_slug": "Bad_Slug"}, "project_slug", "'Bad_Slug'"),
    ({"project_slug": "1abc"}, "project_slug", "'1abc'"),
    ({"project_slug": "abc-"}, "project_slug", "'abc-'"),
    ({"project_slug": "a" * 41}, "project_slug", "a" * 41),
    ({"package_name": "1pkg"}, "package_name", "'1pkg'"),
    ({"package_name": "my-pkg"}, "package_name", "'my-pkg'"),
    ({"package_name": "json"}, "package_name", "standard-library"),
    ({"package_name": "class"}, "package_name", "keyword"),
    ({"description": "two\nlines"}, "description", "single line"),
    ({"author_email": "not-an-email"}, "author_email", "'not-an-email'"),
    ({"python_version": "3.10"}, "python_version", "'3.10'"),
    ({"ml_framework": "tensorflow"}, "ml_framework", "'tensorflow'"),
    ({"problem_type": "clustering"}, "problem_type", "'clustering'"),
    ({"primary_metric": "mape"}, "primary_metric", "'mape'"),
    ({"primary_metric": "rmse"}, "primary_metric", "'rmse' is not a classification metric"),
    ({"problem_type": "regression", "primary_metric": "f1"}, "primary_metric", "'f1' is not a regression metric"),
    ({"metric_threshold": "1.5"}, "metric_threshold", "1.5"),
    ({"metric_threshold": "0"}, "metric_threshold", "0"),
    ({"metric_threshold": "abc"}, "metric_threshold", "'abc'"),
    ({"problem_type": "regression", "metric_threshold": "-1"}, "metric_threshold", "-1"),
    ({"model_registry": "wandb"}, "model_registry", "'wandb'"),
    ({"ci_provider": "jenkins"}, "ci_provider", "'jenkins'"),
    ({"container_registry": "https://ghcr.io/org"}, "container_registry", "'https://ghcr.io/org'"),
    ({"container_registry": "ghcr.io/org:latest"}, "container_registry", "'ghcr.io/org:latest'"),
    ({"gitops_repo_url": "ftp://example.org/x.git"}, "gitops_repo_url", "'ftp://example.org/x.git'"),
    ({"environments": "[]"}, "environments", "at least one"),
    ({"environments": "[dev, qa]"}, "environments", "'qa'"),
    ({"deployment_strategy": "recreate"}, "deployment_strategy", "'recreate'"),
    ({"drift_detection": "maybe"}, "drift_detection", "'maybe'"),
    ({"retrain_schedule": "61 3 * * 1"}, "retrain_schedule", "'61 3 * * 1'"),
    ({"retrain_schedule": "0 3 * *"}, "retrain_schedule", "'0 3 * *'"),
    ({"retrain_schedule": "every day"}, "retrain_schedule", "'every day'"),
    ({"use_gpu": "2"}, "use_gpu", "2"),
    ({"k8s_namespace": "Prod"}, "k8s_namespace", "'Prod'"),
    ({"k8s_namespace": "-ns"}, "k8s_namespace", "'-ns'"),
    ({"no_such_key": "1"}, "no_such_key", "valid keys are project_name"),
    ({"reserved_package_names": "[]"}, "reserved_package_names", "unknown answer key"),
]


def assert_one_clean_error(result_err: str, *needles: str) -> str:
    assert "Traceback" not in result_err
    errors = [line for line in result_err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result_err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(("answers", "key", "needle"), INVALID, ids=[f"{k}-{i}" for i, (_, k, _) in enumerate(INVALID)])
def test_invalid_answer_exits_1_names_it_and_writes_nothing(
    cli: Invoke, tmp_path: Path, answers: dict[str, str], key: str, needle: str
) -> None:
    dest = tmp_path / "proj"
    args = [arg for k, v in answers.items() for arg in ("-d", f"{k}={v}")]
    result = cli("new", dest, "--defaults", *args)
    assert result.code == 1
    assert_one_clean_error(result.err, key, needle)
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


def snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in root.rglob("*")
    }


def test_non_empty_destination_is_left_untouched(cli: Invoke, tmp_path: Path) -> None:
    dest = tmp_path / "existing"
    (dest / "src").mkdir(parents=True)
    (dest / "src" / "mine.py").write_text("print('keep me')\n")
    (dest / "README.md").write_text("mine\n")
    before = snapshot(dest)
    result = cli("new", dest, "--defaults")
    assert result.code == 1
    assert_one_clean_error(result.err, str(dest), "not empty")
    assert snapshot(dest) == before


def test_destination_that_is_a_file(cli: Invoke, tmp_path: Path) -> None:
    dest = tmp_path / "file.txt"
    dest.write_text("data\n")
    result = cli("new", dest, "--defaults")
    assert result.code == 1
    assert_one_clean_error(result.err, "is a file")
    assert dest.read_text() == "data\n"


@pytest.mark.parametrize(
    ("content", "needle"),
    [("- a\n- b\n", "expected a mapping"), ("key: [unclosed\n", "not valid YAML"), (None, "cannot read it")],
)
def test_bad_data_file(cli: Invoke, tmp_path: Path, content: str | None, needle: str) -> None:
    data_file = tmp_path / "answers.yml"
    if content is not None:
        data_file.write_text(content)
    dest = tmp_path / "proj"
    result = cli("new", dest, "--defaults", "--data-file", data_file)
    assert result.code == 1
    assert_one_clean_error(result.err, "--data-file", needle)
    assert not dest.exists()


def test_data_file_values_are_checked_too(cli: Invoke, tmp_path: Path) -> None:
    data_file = tmp_path / "answers.yml"
    data_file.write_text("ml_framework: jax\n")
    result = cli("new", tmp_path / "proj", "--defaults", "--data-file", data_file)
    assert result.code == 1
    assert_one_clean_error(result.err, "ml_framework", "'jax'", "sklearn, xgboost, pytorch")


def test_malformed_data_argument(cli: Invoke, tmp_path: Path) -> None:
    result = cli("new", tmp_path / "proj", "--defaults", "-d", "ml_framework")
    assert result.code == 1
    assert_one_clean_error(result.err, "'ml_framework'", "KEY=VALUE")


def test_no_terminal_and_no_defaults_is_a_clear_error(cli: Invoke, tmp_path: Path) -> None:
    result = cli("new", tmp_path / "proj", "-d", "ml_framework=xgboost")
    assert result.code == 1
    assert_one_clean_error(result.err, "not a terminal", "--defaults")
    assert not (tmp_path / "proj").exists()


def test_missing_template_source(cli: Invoke, tmp_path: Path) -> None:
    result = cli("new", tmp_path / "proj", "--defaults", "--template", tmp_path / "nowhere")
    assert result.code == 1
    assert_one_clean_error(result.err, "--template", "nowhere")


def test_debug_env_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlscaffold.cli import run
    from mlscaffold.errors import UserError

    monkeypatch.setenv("MLSCAFFOLD_DEBUG", "1")
    with pytest.raises(UserError, match="ml_framework"):
        run(["new", str(tmp_path / "proj"), "--defaults", "-d", "ml_framework=tf"])


# --data-sample FILE --target COL: every bad file or target is one line naming it, before anything is written.
def _table(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _good_rows(n: int = 40) -> list[str]:
    return [f"{i % 7},{i * 1.5},{'ab'[i % 2]},{i % 2}" for i in range(n)]


def _bad_samples(tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments after `new DEST --defaults`, the text the error must contain)."""
    good = _table(tmp / "good.csv", "a,b,c,label", _good_rows())
    big = tmp / "big.csv"
    with big.open("wb") as handle:  # sparse: the size check reads the size, not the bytes
        handle.truncate(MAX_SAMPLE_BYTES + 1)
    unreadable = _table(tmp / "unreadable.csv", "a,label", _good_rows())
    unreadable.chmod(0)
    return [
        (["--data-sample", str(tmp / "missing.csv"), "--target", "label"], "missing.csv': no such file"),
        (["--data-sample", str(tmp)], "is a directory"),
        (["--data-sample", str(_table(tmp / "empty.csv", "", []))], "empty.csv' is empty"),
        (["--data-sample", str(_table(tmp / "header.csv", "a,label", []))], "has a header but no data rows"),
        (["--data-sample", str(big), "--target", "label"], f"at most {MAX_SAMPLE_BYTES // 2**20} MiB"),
        (["--data-sample", str(good), "--target", "nope"], "target 'nope' is not a column"),
        (["--data-sample", str(good), "--target", "nope"], "choose one of a, b, c, label"),
        (
            [
                "--data-sample",
                str(_table(tmp / "one.csv", "a,b,label", [f"{i},{i},1" for i in range(40)])),
                "--target",
                "label",
            ],
            "target 'label' has one class (1)",
        ),
        (
            ["--data-sample", str(_table(tmp / "clash.csv", "a b,a-b,label", [f"{i},{i},{i % 2}" for i in range(40)]))],
            "columns 'a b' and 'a-b' would both be named 'a_b'",
        ),
        (
            ["--data-sample", str(_table(tmp / "few.csv", "a,label", ["1,0", "2,1"]))],
            "has 2 rows: a sample needs at least 30",
        ),
        (["--data-sample", str(good), "--target", "c"], "target 'c' has 2 classes (a, b)"),
        (  # true/false equal 1/0 in Python: still not the 0/1 labels the template trains
            [
                "--data-sample",
                str(_table(tmp / "bools.csv", "a,label", [f"{i},{'true' if i % 2 else 'false'}" for i in range(40)])),
                "--target",
                "label",
            ],
            "target 'label' has 2 classes",
        ),
        (
            ["--data-sample", str(good), "--target", "label", "-d", "problem_type=regression", "-d", "ml_framework=x"],
            "ml_framework",
        ),
        (["--target", "label"], "target 'label' needs a data sample: pass --data-sample FILE"),
        (["--data-sample", str(_table(tmp / "bad.csv", "a,label", ["1,0", "2"] * 20))], "line 3 has 1 fields"),
    ] + ([] if os.geteuid() == 0 else [(["--data-sample", str(unreadable)], "cannot read it")])


def test_bad_data_samples_exit_1_with_one_line_and_write_nothing(cli: Invoke, tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    samples.mkdir()
    for args, needle in _bad_samples(samples):
        dest = tmp_path / "proj"
        result = cli("new", dest, "--defaults", *args)
        assert result.code == 1, (args, result.out, result.err)
        assert_one_clean_error(result.err, needle)
        assert not dest.exists(), args


def test_bad_data_sample_from_a_data_file(cli: Invoke, tmp_path: Path) -> None:
    data_file = tmp_path / "answers.yml"
    data_file.write_text(f"data_sample: {tmp_path / 'absent.csv'}\ntarget: y\n", encoding="utf-8")
    result = cli("new", tmp_path / "proj", "--defaults", "--data-file", data_file)
    assert result.code == 1
    assert_one_clean_error(result.err, "absent.csv': no such file")
    assert not (tmp_path / "proj").exists()


def test_the_default_target_alone_needs_no_data_sample(cli: Invoke, tmp_path: Path) -> None:
    """An answers file that repeats the default `target` (as one written from another project may) still renders."""
    result = cli("new", tmp_path / "proj", "--defaults", "--no-git", "--data", "target=target")
    assert result.code == 0, result.err
    assert (tmp_path / "proj" / "data" / "schema.yaml").exists()
