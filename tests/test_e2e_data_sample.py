"""End to end with real public tables: `mlscaffold new --data-sample FILE --target COL` from the installed wheel,
then the generated project's own `make install pipeline`, `make test`, drift and `infer-schema` on it.

The tables ship inside packages on the package registry (read out of their wheels, nothing installed, nothing
downloaded from elsewhere): scikit-learn's breast cancer table (569 rows, 30 float features whose names need
renaming, binary target) and diabetes table (442 rows, regression, integer codes), and palmerpenguins' penguins
table (344 rows, string categoricals and missing values; its binary target `adelie` is derived from `species`,
which is then dropped, since the project trains 0/1 labels).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from helpers import run_ok as run
from test_e2e import OFFLINE, mlscaffold_bin, user_env

__all__ = ["mlscaffold_bin", "user_env"]  # fixtures shared with test_e2e.py

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

MEASURES = [
    "radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity", "concave points",
    "symmetry", "fractal dimension",
]  # fmt: skip
BREAST_CANCER_NAMES = (
    [f"mean {m}" for m in MEASURES] + [f"{m} error" for m in MEASURES] + [f"worst {m}" for m in MEASURES]
)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheels the tables ship in, fetched with pip (no dependencies, nothing installed)."""
    folder = tmp_path_factory.mktemp("wheels")
    run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(folder),
         "scikit-learn", "palmerpenguins"],
        cwd=folder,
    )  # fmt: skip
    return folder


def _member(wheels: Path, prefix: str, name: str) -> bytes:
    wheel = next(wheels.glob(f"{prefix}-*.whl"))
    return zipfile.ZipFile(wheel).read(name)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def breast_cancer(wheels: Path, folder: Path) -> Path:
    rows = list(
        csv.reader(io.StringIO(_member(wheels, "scikit_learn", "sklearn/datasets/data/breast_cancer.csv").decode()))
    )
    return _write(folder / "breast_cancer.csv", [*BREAST_CANCER_NAMES, "benign"], rows[1:])


def diabetes(wheels: Path, folder: Path) -> Path:
    data = gzip.decompress(_member(wheels, "scikit_learn", "sklearn/datasets/data/diabetes_data_raw.csv.gz"))
    target = gzip.decompress(_member(wheels, "scikit_learn", "sklearn/datasets/data/diabetes_target.csv.gz"))
    features = [line.split() for line in data.decode().splitlines() if line.strip()]
    labels = [f"{float(v):g}" for v in target.decode().split()]
    header = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "progression"]
    return _write(folder / "diabetes.csv", header, [[*f, y] for f, y in zip(features, labels, strict=True)])


def penguins(wheels: Path, folder: Path) -> Path:
    text = _member(wheels, "palmerpenguins", "palmerpenguins/data/penguins.csv").decode()
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    species = header.index("species")
    body = [[v for i, v in enumerate(r) if i != species] + [str(int(r[species] == "Adelie"))] for r in rows[1:]]
    # Padded cells, as spreadsheets export them: the contract reads ' Biscoe ' as 'Biscoe', so must the project.
    body = [[f" {v} " if n % 3 == 0 and v != "NA" else v for v in r] for n, r in enumerate(body)]
    return _write(folder / "penguins.csv", [h for h in header if h != "species"] + ["adelie"], body)


def penguins_categorical(wheels: Path, folder: Path) -> Path:
    """Categorical features only (no numeric one): island, sex and year as codes 0-2."""
    rows = list(
        csv.DictReader(io.StringIO(_member(wheels, "palmerpenguins", "palmerpenguins/data/penguins.csv").decode()))
    )
    body = [[r["island"], r["sex"], str(int(r["year"]) - 2007), str(int(r["species"] == "Adelie"))] for r in rows]
    return _write(folder / "penguin_islands.csv", ["island", "sex", "year_code", "adelie"], body)


TABLES = {
    "breast-cancer": (breast_cancer, "benign", "classification"),
    "diabetes-regression": (diabetes, "progression", "regression"),
    "penguins-categoricals-missing": (penguins, "adelie", "classification"),
    "penguins-categorical-only": (penguins_categorical, "adelie", "classification"),
}


@pytest.mark.parametrize("name", list(TABLES))
def test_a_project_from_a_real_table_tests_and_runs_its_pipeline(
    mlscaffold_bin: Path, user_env: dict[str, str], wheels: Path, tmp_path: Path, name: str
) -> None:
    make_table, target, problem_type = TABLES[name]
    table = make_table(wheels, tmp_path)
    project = tmp_path / name
    run([str(mlscaffold_bin), "new", str(project), "--defaults", "--data-sample", str(table), "--target", target],
        cwd=tmp_path, env=user_env | OFFLINE)  # fmt: skip

    schema = yaml.safe_load((project / "data" / "schema.yaml").read_text())
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["problem_type"] == problem_type
    assert answers["data_sample"] == table.name
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["data"]["target"] == target
    readme = (project / "README.md").read_text()
    for feature in schema["features"]:
        assert f"| `{feature}` | feature |" in readme
    sample_rows = (project / "data" / "sample.csv").read_text().splitlines()
    assert len(sample_rows) == len(table.read_text().splitlines())
    assert run(["git", "status", "--porcelain"], cwd=project).strip() == ""  # the sample is committed
    if name == "breast-cancer":
        assert len(schema["features"]) == 30
        assert schema["renamed"]["mean_concave_points"] == "mean concave points"
        assert all(spec["dtype"] == "float" for spec in schema["features"].values())
    elif name == "diabetes-regression":
        assert schema["features"]["sex"] == {
            "description": "inferred: 2 integer codes", "dtype": "category", "categories": [1, 2], "nullable": False,
        }  # fmt: skip
        assert schema["features"]["age"]["dtype"] == "int"
        assert answers["primary_metric"] == "rmse"
    elif name == "penguins-categorical-only":
        assert {spec["dtype"] for spec in schema["features"].values()} == {"category"}
        assert schema["features"]["year_code"]["categories"] == [0, 1, 2]
    else:
        assert schema["features"]["island"]["categories"] == ["Biscoe", "Dream", "Torgersen"]
        assert " Biscoe " in table.read_text()
        assert " Biscoe " not in "\n".join(sample_rows)  # copied as inferred: validate-data (the pipeline) passes
        assert schema["features"]["sex"]["nullable"] is True
        assert schema["features"]["bill_length_mm"]["nullable"] is True

    out = run(["make", "install", "pipeline"], cwd=project, env=user_env)
    assert "pipeline done" in out, out[-2000:]
    metrics = json.loads((project / "artifacts" / "metrics.json").read_text())
    assert metrics[answers["primary_metric"]] is not None
    tests = run(["make", "test", "test-integration"], cwd=project, env=user_env)
    assert len(re.findall(r"\b\d+ passed\b", tests)) == 2, tests[-2000:]  # the fast tests, then the integration tests
    assert not re.search(r"\b\d+ failed\b", tests), tests[-2000:]
    run(["make", "lint"], cwd=project, env=user_env)  # ruff and strict mypy, whatever the contract

    run(["make", "data"], cwd=project, env=user_env)
    drift = subprocess.run(["make", "drift"], cwd=project, env=user_env, capture_output=True, text=True, timeout=300)
    assert drift.returncode != 0, "data/current.csv is the shifted resample: drift must be detected"
    assert json.loads((project / "artifacts" / "drift.json").read_text())["drift"] is True

    python = str(project / ".venv" / "bin" / "python")
    package = answers["package_name"]
    same = run([python, "-m", package, "infer-schema", "data/sample.csv"], cwd=project, env=user_env)
    assert "already matches" in same, same
    fewer = tmp_path / "fewer.csv"
    fewer.write_text("\n".join(sample_rows[: len(sample_rows) // 2]) + "\n")
    changed = run([python, "-m", package, "infer-schema", str(fewer), "--dry-run"], cwd=project, env=user_env)
    assert "--- data/schema.yaml" in changed and "dry run" in changed, changed
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project).strip() == ""
