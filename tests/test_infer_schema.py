"""The schema inference (template/src/<package>/infer_schema.py, shared by `new --data-sample` and the project's
`infer-schema`): types, ranges, nullability, categories, left-out columns, renames and the problem type."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlscaffold.sample import SAMPLE_PATH, inference_module

infer_schema = inference_module()


def _csv(tmp_path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    path = tmp_path / "sample.csv"
    lines = [",".join(header)] + [",".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _table(tmp_path: Path) -> Path:
    header = ["id", "age", "income", "code", "colour", "note", "constant", "Pay Day", "label"]
    rows = [
        [
            i + 1,
            None if i % 10 == 0 else 20 + i % 50,
            round(1000.5 + i * 3.25, 2),
            i % 3,
            ["red", "green", "blue"][i % 3] if i % 7 else None,
            f"free text {i}",
            "same",
            i % 28 + 1 + 100 * (i % 5),
            int(i % 4 == 0),
        ]
        for i in range(60)
    ]
    return _csv(tmp_path, header, rows)


def test_types_ranges_nullability_and_categories(tmp_path: Path) -> None:
    contract = infer_schema.infer(_table(tmp_path), "label")
    features = {c.name: c for c in contract.features}
    assert list(features) == ["age", "income", "code", "colour", "pay_day"]
    age, income, code, colour = features["age"], features["income"], features["code"], features["colour"]
    assert (age.dtype, age.min, age.max, age.nullable) == ("int", 21, 69, True)
    assert (income.dtype, income.min, income.max, income.nullable) == ("float", 1000.5, 1192.25, False)
    assert (code.dtype, code.categories, code.nullable) == ("category", [0, 1, 2], False)
    assert (colour.dtype, colour.categories, colour.nullable) == ("category", ["blue", "green", "red"], True)


def test_columns_that_cannot_be_features_are_left_out_with_a_reason(tmp_path: Path) -> None:
    contract = infer_schema.infer(_table(tmp_path), "label")
    assert contract.excluded["id"] == "identifier (every value distinct)"
    assert "every value distinct" in contract.excluded["note"]
    assert contract.excluded["constant"] == "constant (always same)"
    assert contract.renamed == {"pay_day": "Pay Day"}
    schema = yaml.safe_load(contract.to_yaml())
    assert set(schema["excluded"]) == {"id", "note", "constant"}
    assert schema["renamed"] == {"pay_day": "Pay Day"}
    assert schema["features"]["colour"]["categories"] == ["blue", "green", "red"]
    assert schema["target"] == {
        "description": "the label: 1 for the positive class, else 0",
        "dtype": "int",
        "categories": [0, 1],
        "nullable": False,
    }


def test_the_problem_type_follows_the_target(tmp_path: Path) -> None:
    path = _table(tmp_path)
    binary = infer_schema.infer(path, "label")
    assert binary.problem_type == "classification"
    assert binary.thresholds == {"roc_auc": 0.6, "f1": 0.431, "accuracy": 0.763}  # 5% better than 0.4 and 0.75
    numeric = infer_schema.infer(path, "income")
    assert numeric.problem_type == "regression"
    assert (numeric.target.dtype, numeric.target.min, numeric.target.max) == ("float", 1000.5, 1192.25)
    assert numeric.thresholds["r2"] == 0.1
    assert 53.0 < numeric.thresholds["rmse"] < 54.0  # 5% under the standard deviation, what predicting the mean scores
    forced = infer_schema.infer(path, "label", "regression")
    assert forced.problem_type == "regression"
    assert "label" not in {c.name for c in forced.features}


@pytest.mark.parametrize("positives", [1, 6, 15, 20, 30, 45])
def test_a_constant_prediction_fails_every_inferred_threshold(tmp_path: Path, positives: int) -> None:
    """The gate asks for better than a model that learned nothing: the best constant prediction of each metric (the
    majority class for accuracy, always 1 for f1, the mean for rmse, the median for mae) must fail it."""
    labels = [1] * positives + [0] * (60 - positives)
    path = _csv(
        tmp_path, ["x", "label", "amount"], [[i, y, round(10 + (i * 37 % 60) ** 1.5, 1)] for i, y in enumerate(labels)]
    )
    share = positives / 60
    thresholds = infer_schema.infer(path, "label").thresholds
    assert max(share, 1 - share) < thresholds["accuracy"] <= 1
    assert 2 * share / (1 + share) < thresholds["f1"] <= 1
    assert thresholds["roc_auc"] > 0.5  # every constant scores 0.5
    amounts = [round(10 + (i * 37 % 60) ** 1.5, 1) for i in range(60)]
    mean, median = sum(amounts) / 60, sorted(amounts)[30]
    errors = infer_schema.infer(path, "amount").thresholds
    assert (sum((a - mean) ** 2 for a in amounts) / 60) ** 0.5 > errors["rmse"] > 0
    assert sum(abs(a - median) for a in amounts) / 60 > errors["mae"] > 0
    assert errors["r2"] > 0  # predicting the mean scores 0


def test_a_renamed_target_is_found_by_either_name(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["x", "Is Fraud"], [[i * 1.5, i % 2] for i in range(40)])
    assert infer_schema.infer(path, "Is Fraud").target.name == "is_fraud"
    assert infer_schema.infer(path, "is_fraud").target.name == "is_fraud"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("amount", "amount"), ("Mean Radius", "mean_radius"), ("2nd", "col_2nd"), ("class", "class_"), ("a.b", "a_b")],
)
def test_safe_names(name: str, expected: str) -> None:
    assert infer_schema.safe_name(name) == expected


def test_the_yaml_round_trips_odd_values(tmp_path: Path) -> None:
    path = _csv(tmp_path, ["kind", "y"], [[["yes", "no", "1st: a", "off"][i % 4], i % 2] for i in range(40)])
    contract = infer_schema.infer(path, "y")
    assert yaml.safe_load(contract.to_yaml())["features"]["kind"]["categories"] == ["1st: a", "no", "off", "yes"]


def test_the_sample_copy_renames_the_header(tmp_path: Path) -> None:
    path = _table(tmp_path)
    contract = infer_schema.infer(path, "label")
    dest = tmp_path / "out" / "sample.csv"
    infer_schema.write_sample(path, contract, dest)
    lines = dest.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,age,income,code,colour,note,constant,pay_day,label"
    assert lines[1:] == path.read_text(encoding="utf-8").splitlines()[1:]


def test_diff_shows_the_changed_lines() -> None:
    assert infer_schema.diff("a: 1\n", "a: 1\n") == ""
    assert "-a: 1\n+a: 2\n" in infer_schema.diff("a: 1\n", "a: 2\n")


# `mlscaffold new --data-sample`: the render follows the inferred contract (fast: no virtual environment).
def test_new_with_a_data_sample_renders_its_contract(cli: Any, tmp_path: Path) -> None:
    table = _table(tmp_path)
    dest = tmp_path / "proj"
    result = cli("new", dest, "--defaults", "--data-sample", table, "--target", "label", "-d", "primary_metric=f1")
    assert result.code == 0, result.err
    expected = infer_schema.infer(table, "label")
    assert (dest / "data" / "schema.yaml").read_text(encoding="utf-8") == expected.to_yaml()
    assert (dest / "data" / "sample.csv").read_text(encoding="utf-8").splitlines()[0].endswith(",pay_day,label")
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert (answers["data_sample"], answers["target"], answers["problem_type"]) == (
        "sample.csv",
        "label",
        "classification",
    )
    assert answers["metric_threshold"] == expected.thresholds["f1"]
    assert answers["data_contract"]["schema"] == expected.to_yaml()
    params = yaml.safe_load((dest / "params.yaml").read_text(encoding="utf-8"))
    assert params["data"]["target"] == "label" and params["data"]["sample_rows"] == 60
    # The drift check judges windows as large as make-data writes (of the sample's 60 rows), not only of 100.
    assert params["drift"]["min_current_rows"] == 60
    readme = (dest / "README.md").read_text(encoding="utf-8")
    assert "| `colour` | feature | category, nullable | blue, green, red |" in readme
    assert "| `note` | left out |" in readme
    assert '"amount"' not in readme  # the card-transaction example request is gone
    tracked = subprocess.run(["git", "ls-files", "data"], cwd=dest, capture_output=True, text=True, check=True)
    assert tracked.stdout.split() == ["data/sample.csv", "data/schema.yaml"]
    # The generator writes the sample where the project reads it (its config's one SAMPLE_PATH).
    config = next(dest.glob("src/*/config.py")).read_text(encoding="utf-8")
    assert f'SAMPLE_PATH: Final = "{SAMPLE_PATH.as_posix()}"' in config


def test_a_data_file_gives_the_sample_and_a_regression_target(cli: Any, tmp_path: Path) -> None:
    table = _table(tmp_path)
    answers = tmp_path / "answers.yml"
    answers.write_text(f"data_sample: {table}\ntarget: income\n", encoding="utf-8")
    dest = tmp_path / "proj"
    assert cli("new", dest, "--defaults", "--no-git", "--data-file", answers).code == 0
    recorded = yaml.safe_load((dest / ".copier-answers.yml").read_text(encoding="utf-8"))
    assert (recorded["problem_type"], recorded["primary_metric"]) == ("regression", "rmse")
    assert 53.0 < recorded["metric_threshold"] < 54.0
    assert "income" not in yaml.safe_load((dest / "data" / "schema.yaml").read_text(encoding="utf-8"))["features"]


def test_an_update_keeps_the_data_sample(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The template cannot render the sample again: an update must neither delete it nor see a change."""
    dest = tmp_path / "proj"
    assert cli("new", dest, "--defaults", "--data-sample", _table(tmp_path), "--target", "label").code == 0
    before = (dest / "data" / "sample.csv").read_bytes()
    monkeypatch.chdir(dest)
    pretend = cli("update", "--pretend")
    assert pretend.code == 0 and "already up to date" in pretend.out, pretend.out + pretend.err
    changed = cli("update", "-d", "deployment_strategy=rolling")
    assert changed.code == 0, changed.err
    assert "data/sample.csv" not in changed.out
    assert (dest / "data" / "sample.csv").read_bytes() == before
    assert (dest / "data" / "schema.yaml").is_file()


def test_parquet_is_read_with_pyarrow_or_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "sample.parquet"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        path.write_bytes(b"PAR1")
        with pytest.raises(infer_schema.SampleError, match=r"reading Parquet needs pyarrow, which is not installed"):
            infer_schema.infer(path, "y")
        return
    pq.write_table(pa.table({"x": [i * 0.5 for i in range(40)], "y": [i % 2 for i in range(40)]}), path)
    contract = infer_schema.infer(path, "y")
    assert [(c.name, c.dtype, c.min, c.max) for c in contract.features] == [("x", "float", 0.0, 19.5)]
    dest = tmp_path / "sample.csv"
    infer_schema.write_sample(path, contract, dest)
    assert dest.read_text(encoding="utf-8").splitlines()[:2] == ["x,y", "0.0,0"]


def test_a_sample_with_padded_values_is_copied_as_it_was_inferred(tmp_path: Path) -> None:
    """Inference reads ' red ' as 'red': the copy the project validates holds 'red' too (pandas keeps the spaces)."""
    path = tmp_path / "padded.csv"
    rows = [f"{i * 0.5:>6}, {['red', 'blue'][i % 2]} ,{i % 2}" for i in range(40)]
    path.write_text(" x , colour ,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    contract = infer_schema.infer(path, "label")
    assert [c.categories for c in contract.features] == [None, ["blue", "red"]]
    dest = tmp_path / "copy" / "sample.csv"
    infer_schema.write_sample(path, contract, dest)
    lines = dest.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == ["x,colour,label", "0.0,red,0", "0.5,blue,1"]
    assert infer_schema.infer(dest, "label").to_yaml() == contract.to_yaml()
    plain = tmp_path / "plain.csv"
    plain.write_bytes(dest.read_bytes().replace(b"\n", b"\r\n"))
    infer_schema.write_sample(plain, infer_schema.infer(plain, "label"), tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_bytes() == plain.read_bytes()  # nothing to change: byte for byte


def test_free_text_is_left_out_for_the_reason_that_holds(tmp_path: Path) -> None:
    """Few distinct values but hardly repeated is free text for that reason, not for having too many."""
    rows = [[f"word {i % 25}", i * 0.5, i % 2] for i in range(40)]  # 25 distinct values (<= 30) in 40 rows
    rows += [[f"note {i}", i * 0.5, i % 2] for i in range(40, 80)]
    many = infer_schema.infer(_csv(tmp_path, ["note", "x", "y"], rows), "y").excluded["note"]
    assert many == "free text (65 distinct values; at most 30 make a categorical column)"
    few = infer_schema.infer(_csv(tmp_path, ["note", "x", "y"], rows[:40]), "y").excluded["note"]
    assert few == (
        "free text (25 distinct values in 40 rows; a categorical column repeats its values: at most one distinct "
        "value for two rows)"
    )
