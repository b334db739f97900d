"""Infer a data contract (data/schema.yaml) from a sample table: the one place this inference lives.

`python -m <package> infer-schema FILE` runs it in the project; `mlscaffold new --data-sample FILE` loads this
same file from the template to infer the contract of a new project. So it needs nothing but the standard library
(pyarrow, when installed, for Parquet) and must not import the rest of the package.

Rules, per column of the file (missing: an empty cell or one of pandas' NA spellings):
    int / float   numeric, with the observed min and max; nullable when a value is missing
    category      strings with few distinct values, booleans, and small integer codes (at most
                  MAX_CODES distinct integers in 0..MAX_CODE_VALUE), with their categories
    left out      constant or always-missing columns, identifiers (every value distinct: strings, or
                  consecutive integers) and free text (too many distinct strings): listed under
                  `excluded:` with the reason, never features
Column names must be identifiers (they are JSON keys of the API and Python names): other names are renamed
(lower-case, `_` for anything else) and the new name is noted under `renamed:`.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import keyword
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The largest file accepted as a sample (it is copied into the repository and read in memory).
MAX_SAMPLE_BYTES = 20 * 1024 * 1024
#: A data sample needs at least this many rows (the split, the gate and the tests need both sides).
MIN_ROWS = 30
#: A string column with at most this many distinct values (and repeats) is categorical.
MAX_CATEGORIES = 30
#: An integer column with at most this many distinct values in 0..MAX_CODE_VALUE is a categorical code.
MAX_CODES = 10
MAX_CODE_VALUE = 20
#: pandas' default NA spellings, so the project's reader and this inference agree on what is missing.
NA_VALUES = frozenset(
    {
        *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>"),
        *("N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
    }
)
_INT = re.compile(r"^[+-]?\d+$")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_BOOLS = {"true": True, "false": False}


class SampleError(ValueError):
    """The file cannot be a data sample: the message names the bad value and what would be valid."""


@dataclass
class Column:
    name: str
    dtype: str  # float | int | category
    nullable: bool
    min: float | int | None = None
    max: float | int | None = None
    categories: list[Any] | None = None
    description: str = ""

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description, "dtype": self.dtype}
        if self.categories is not None:
            out["categories"] = self.categories
        else:
            out["min"], out["max"] = self.min, self.max
        out["nullable"] = self.nullable
        return out


@dataclass
class Contract:
    """What the inference found: the contract, and what the project's answers take from it."""

    source: str
    rows: int
    features: list[Column]
    target: Column
    problem_type: str
    excluded: dict[str, str] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # new name -> name in the file
    thresholds: dict[str, float] = field(default_factory=dict)
    example: dict[str, Any] = field(default_factory=dict)  # one record of features, as the API takes it

    def to_yaml(self) -> str:
        return render(self)

    def table(self) -> list[dict[str, str]]:
        """One row per column for a README table: name, role, type, values."""
        rows = [_table_row(c, "feature") for c in self.features]
        rows.append(_table_row(self.target, "target"))
        rows += [{"name": n, "role": "left out", "type": "", "values": why} for n, why in self.excluded.items()]
        return rows


def _table_row(column: Column, role: str) -> dict[str, str]:
    if column.categories is not None:
        values = ", ".join(_scalar(c) for c in column.categories)
    else:
        values = f"{_scalar(column.min)} .. {_scalar(column.max)}"
    kind = column.dtype + (", nullable" if column.nullable else "")
    return {"name": column.name, "role": role, "type": kind, "values": values}


# --------------------------------------------------------------------------------------------------------------
# Reading


def read_table(path: Path) -> tuple[list[str], list[list[str | None]]]:
    """The header and rows of a CSV (or Parquet, with pyarrow) file; cells are text, None when missing."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SampleError(f"data sample '{path}': no such file; pass a CSV (or Parquet) file") from None
    except OSError as exc:
        raise SampleError(f"data sample '{path}': cannot read it ({exc.strerror})") from None
    if path.is_dir():
        raise SampleError(f"data sample '{path}' is a directory; pass a CSV (or Parquet) file")
    if size > MAX_SAMPLE_BYTES:
        raise SampleError(
            f"data sample '{path}' is {size / 2**20:.1f} MiB: a sample is copied into the repository, so at most "
            f"{MAX_SAMPLE_BYTES // 2**20} MiB; pass a sample of the rows (e.g. the first 50,000)"
        )
    if size == 0:
        raise SampleError(f"data sample '{path}' is empty; pass a CSV file with a header row and data rows")
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise SampleError(f"data sample '{path}' is not UTF-8 text; pass a UTF-8 CSV (or a .parquet file)") from None
    except OSError as exc:
        raise SampleError(f"data sample '{path}': cannot read it ({exc.strerror})") from None
    try:
        records = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise SampleError(f"data sample '{path}' is not a readable CSV file: {exc}") from None
    records = [r for r in records if r]
    if not records:
        raise SampleError(f"data sample '{path}' is empty; pass a CSV file with a header row and data rows")
    header, body = [h.strip() for h in records[0]], records[1:]
    for number, record in enumerate(body, start=2):
        if len(record) != len(header):
            raise SampleError(
                f"data sample '{path}': line {number} has {len(record)} fields, the header has {len(header)}"
            )
    return header, [[_text(cell) for cell in record] for record in body]


def _text(cell: str) -> str | None:
    """A CSV cell as the contract reads it: without surrounding spaces (the copied sample is written so too)."""
    cell = cell.strip()
    return None if cell in NA_VALUES else cell


def _read_parquet(path: Path) -> tuple[list[str], list[list[str | None]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SampleError(
            f"data sample '{path}': reading Parquet needs pyarrow, which is not installed; "
            "install it (pip install pyarrow) or pass a CSV file"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise SampleError(f"data sample '{path}' is not a readable Parquet file: {exc}") from None
    header = [str(n) for n in table.column_names]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [[_cell(col[i]) for col in columns] for i in range(table.num_rows)]
    return header, rows


def _cell(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def safe_name(name: str) -> str:
    """``name`` as an identifier usable as a JSON key and a Python name: kept when it is one, else renamed."""
    if _IDENTIFIER.match(name) and not keyword.iskeyword(name):
        return name
    new = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not new or not new[0].isalpha():
        new = f"col_{new}".rstrip("_")
    return f"{new}_" if keyword.iskeyword(new) else new


# --------------------------------------------------------------------------------------------------------------
# Inference


def infer(path: Path, target: str, problem_type: str | None = None) -> Contract:
    """Infer the contract of the table in ``path``; ``target`` names the label column (as in the file or renamed)."""
    header, rows = read_table(path)
    if not rows:
        raise SampleError(f"data sample '{path}' has a header but no data rows; pass a file with at least {MIN_ROWS}")
    if len(rows) < MIN_ROWS:
        raise SampleError(f"data sample '{path}' has {len(rows)} rows: a sample needs at least {MIN_ROWS}")
    names, renamed = _names(path, header)
    if target not in names:
        target = renamed_of(target, renamed) or target
    if target not in names:
        raise SampleError(f"target '{target}' is not a column of '{path}': choose one of {', '.join(header)}")
    index = names.index(target)
    label = _target(path, target, [r[index] for r in rows], problem_type)
    features: list[Column] = []
    excluded: dict[str, str] = {}
    for i, name in enumerate(names):
        if i == index:
            continue
        column, reason = _feature(name, [r[i] for r in rows])
        if column is None:
            excluded[name] = reason
        else:
            features.append(column)
    if not features:
        raise SampleError(
            f"data sample '{path}': no column can be a feature (left out: "
            + "; ".join(f"{n}: {why}" for n, why in excluded.items())
            + "); add numeric or categorical columns"
        )
    contract = Contract(
        source=path.name,
        rows=len(rows),
        features=features,
        target=label,
        problem_type="classification" if label.categories is not None else "regression",
        excluded=excluded,
        renamed=renamed,
    )
    contract.thresholds = _thresholds(label, [r[index] for r in rows])
    positions = {name: i for i, name in enumerate(names)}
    complete = next((r for r in rows if all(r[positions[c.name]] not in (None, "") for c in features)), rows[0])
    contract.example = {c.name: _typed(c, complete[positions[c.name]]) for c in features}
    return contract


def _typed(column: Column, cell: str | None) -> Any:
    if cell is None or cell.strip() == "":
        return None
    _, values = _parse([cell])
    if column.dtype == "float":
        return float(values[0])
    return values[0]


def renamed_of(name: str, renamed: dict[str, str]) -> str | None:
    return next((new for new, old in renamed.items() if old == name), None)


def _names(path: Path, header: list[str]) -> tuple[list[str], dict[str, str]]:
    names: list[str] = []
    renamed: dict[str, str] = {}
    seen: dict[str, str] = {}
    for original in header:
        if not original:
            raise SampleError(f"data sample '{path}': column {len(names) + 1} has no name; name every column")
        name = safe_name(original)
        if name in seen:
            raise SampleError(
                f"data sample '{path}': columns '{seen[name]}' and '{original}' would both be named '{name}' "
                "(names must be distinct identifiers); rename one of them"
            )
        seen[name] = original
        if name != original:
            renamed[name] = original
        names.append(name)
    return names, renamed


def _parse(values: list[str | None]) -> tuple[str, list[Any]]:
    """The kind of the present values (int, float, bool, str) and the values as that kind."""
    present = [v.strip() for v in values if v is not None and v.strip() != ""]
    if not present:
        return "empty", []
    if all(_INT.match(v) for v in present):
        return "int", [int(v) for v in present]
    try:
        floats = [float(v) for v in present]
    except ValueError:
        pass
    else:
        if all(math.isfinite(f) for f in floats):
            return "float", floats
        return "str", present
    if all(v.lower() in _BOOLS for v in present):
        return "bool", [_BOOLS[v.lower()] for v in present]
    return "str", present


def _feature(name: str, values: list[str | None]) -> tuple[Column | None, str]:
    kind, present = _parse(values)
    nullable = len(present) < len(values)
    distinct = sorted(set(present))
    if not present:
        return None, "always missing"
    if len(distinct) == 1:
        return None, f"constant (always {_scalar(distinct[0])})"
    if kind == "int":
        consecutive = distinct[-1] - distinct[0] + 1 == len(present)
        if len(distinct) == len(values) and (
            consecutive or name.lower() in ("id", "index") or name.lower().endswith("_id")
        ):
            return None, "identifier (every value distinct)"
        if len(distinct) <= MAX_CODES and distinct[0] >= 0 and distinct[-1] <= MAX_CODE_VALUE:
            return _column(name, "category", nullable, categories=distinct, note="code"), ""
        return _column(name, "int", nullable, lo=distinct[0], hi=distinct[-1]), ""
    if kind == "float":
        return _column(name, "float", nullable, lo=distinct[0], hi=distinct[-1]), ""
    if kind == "bool":
        return _column(name, "category", nullable, categories=distinct), ""
    if len(distinct) == len(present):
        return None, "identifier or free text (every value distinct)"
    if len(distinct) <= MAX_CATEGORIES and len(distinct) <= len(present) // 2:
        return _column(name, "category", nullable, categories=distinct), ""
    if len(distinct) > MAX_CATEGORIES:
        return None, f"free text ({len(distinct)} distinct values; at most {MAX_CATEGORIES} make a categorical column)"
    return None, (
        f"free text ({len(distinct)} distinct values in {len(present)} rows; a categorical column repeats its "
        "values: at most one distinct value for two rows)"
    )


def _column(
    name: str,
    dtype: str,
    nullable: bool,
    *,
    lo: float | None = None,
    hi: float | None = None,
    categories: list[Any] | None = None,
    note: str = "",
) -> Column:
    if categories is not None:
        what = f"{len(categories)} {'integer codes' if note == 'code' else 'categories'}"
    else:
        what = f"{dtype}, observed {_scalar(lo)} .. {_scalar(hi)}"
    missing = ", has missing values" if nullable else ""
    return Column(name, dtype, nullable, lo, hi, categories, f"inferred: {what}{missing}")


def _target(path: Path, name: str, values: list[str | None], problem_type: str | None) -> Column:
    kind, present = _parse(values)
    if len(present) < len(values):
        raise SampleError(
            f"target '{name}' has {len(values) - len(present)} missing values in '{path}': a label is needed on "
            "every row; drop those rows"
        )
    distinct = sorted(set(present))
    if len(distinct) < 2:
        raise SampleError(
            f"target '{name}' has one class ({_scalar(distinct[0])}) in '{path}': a model needs at least two "
            "different labels; choose another target column"
        )
    if problem_type not in (None, "classification", "regression"):
        raise SampleError(f"problem_type '{problem_type}': choose classification or regression")
    if problem_type is None:
        problem_type = "classification" if len(distinct) == 2 else "regression"
    if problem_type == "regression":
        if kind not in ("int", "float"):
            raise SampleError(
                f"target '{name}' is not numeric ({', '.join(map(_scalar, distinct[:3]))}, ...): regression needs "
                "a numeric target; choose another column or problem_type=classification"
            )
        return Column(name, "float", False, float(distinct[0]), float(distinct[-1]), None, "the label (inferred)")
    if kind != "int" or distinct != [0, 1]:  # False/True and 0.0/1.0 equal 0/1 in Python
        shown = ", ".join(_scalar(v) for v in distinct[:5]) + (", ..." if len(distinct) > 5 else "")
        raise SampleError(
            f"target '{name}' has {len(distinct)} classes ({shown}): classification here is binary with labels "
            "0 and 1; recode the column to 0/1, or use problem_type=regression for a numeric target"
        )
    return Column(name, "int", False, None, None, [0, 1], "the label: 1 for the positive class, else 0")


def _thresholds(label: Column, values: list[str | None]) -> dict[str, float]:
    """Per metric, a quality-gate threshold a useful model passes on this data: a little better than the best
    constant prediction would score (the mean or the median; the majority class, or always 1 for f1), never equal
    to it, so that a model which learned nothing fails the gate."""
    numbers = [float(v) for v in values if v is not None]
    if label.categories is not None:
        positives = sum(1 for v in numbers if v == 1.0) / len(numbers)
        majority = max(positives, 1 - positives)
        always_one = 2 * positives / (1 + positives)  # f1 of predicting 1 for every row
        return {"roc_auc": 0.6, "f1": _better(always_one, 1.0), "accuracy": _better(majority, 1.0)}
    mean = sum(numbers) / len(numbers)
    median = sorted(numbers)[len(numbers) // 2]
    std = math.sqrt(sum((v - mean) ** 2 for v in numbers) / len(numbers))
    mad = sum(abs(v - median) for v in numbers) / len(numbers)
    return {"rmse": _better(std, 0.0), "mae": _better(mad, 0.0), "r2": 0.1}


#: The share of the way from the constant prediction's score to a perfect one a threshold asks for.
MARGIN = 0.05


def _better(constant: float, perfect: float) -> float:
    """A threshold MARGIN of the way from ``constant`` towards ``perfect`` (1 for a score, 0 for an error), at three
    significant digits, rounded away from the constant: strictly better than it."""
    goal = constant + MARGIN * (perfect - constant)
    if goal <= 0:
        return 1e-6
    scale = 10 ** (math.floor(math.log10(goal)) - 2)
    rounded = (math.ceil if perfect > constant else math.floor)(goal / scale) * scale
    if rounded == constant:  # a constant that is already a round number
        rounded += scale if perfect > constant else -scale
    return float(f"{rounded:.6g}")


# --------------------------------------------------------------------------------------------------------------
# Writing


def _scalar(value: Any) -> str:
    """A YAML flow scalar: numbers and booleans plain, strings JSON-quoted (valid YAML) unless plainly safe."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e16 else f"{value:.1f}"
    text = str(value)
    return (
        text
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_ .-]*[A-Za-z0-9_.]|[A-Za-z_]", text) and not _looks_special(text)
        else json.dumps(text)
    )


def _looks_special(text: str) -> bool:
    return text.lower() in ("true", "false", "yes", "no", "on", "off", "null", "none", "y", "n", "~")


HEADER = """\
# The declared data contract: one source of truth for
#   - validate-data (a pandera schema is built from this file),
#   - the encoder (numeric vs categorical columns, in this order),
#   - the API (the /predict request model is built from this file).
#
# Per column: dtype (float | int | category), min/max (inclusive), nullable, categories (category only).
# The label column's name lives in params.yaml (data.target); its contract is under `target:` below.
"""


def render(contract: Contract) -> str:
    """The contract as data/schema.yaml text."""
    lines = [
        HEADER.rstrip("\n"),
        f"# Inferred by infer-schema from a sample of {contract.rows} rows: check the ranges and categories, they",
        "# are what the sample shows, and every later file must fit them.",
        "features:",
    ]
    for column in contract.features:
        lines += _column_lines(column, "  ")
    lines.append("target:")
    lines += _column_lines(contract.target, "", nested=False)
    if contract.excluded:
        lines.append("# Columns of the file that are not features (validate-data accepts and ignores them):")
        lines.append("excluded:")
        lines += [f"  {name}: {_scalar(why)}" for name, why in contract.excluded.items()]
    if contract.renamed:
        lines.append("# Columns renamed to identifiers (the file's header uses the names on the right):")
        lines.append("renamed:")
        lines += [f"  {new}: {_scalar(old)}" for new, old in contract.renamed.items()]
    return "\n".join(lines) + "\n"


def _column_lines(column: Column, indent: str, nested: bool = True) -> list[str]:
    head = [f"{indent}{column.name}:"] if nested else []
    body = indent + "  "
    out = [f"{body}description: {_scalar(column.description)}", f"{body}dtype: {column.dtype}"]
    if column.categories is not None:
        out.append(f"{body}categories: [{', '.join(_scalar(c) for c in column.categories)}]")
    else:
        out += [f"{body}min: {_scalar(column.min)}", f"{body}max: {_scalar(column.max)}"]
    out.append(f"{body}nullable: {_scalar(column.nullable)}")
    return head + out


def write_sample(path: Path, contract: Contract, dest: Path) -> None:
    """Copy the sample to ``dest`` as CSV, as the contract read it (header renamed, cells without surrounding
    spaces), so that the project's validate-data reads what was inferred; byte for byte when that changes nothing."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() not in (".parquet", ".pq") and not contract.renamed and not _padded(path):
        dest.write_bytes(path.read_bytes())
        return
    header, rows = read_table(path)
    names = [renamed_of(h, contract.renamed) or h for h in header]
    with dest.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([["" if cell is None else cell for cell in row] for row in rows])


def _padded(path: Path) -> bool:
    """Whether a CSV file has a cell (or header name) with surrounding spaces."""
    text = path.read_text(encoding="utf-8-sig")
    return any(cell != cell.strip() for record in csv.reader(io.StringIO(text)) for cell in record)


def diff(old: str, new: str, old_name: str = "data/schema.yaml", new_name: str = "inferred") -> str:
    """A unified diff of two contracts' text (empty when equal)."""
    return "".join(
        difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True), old_name, new_name)
    )
