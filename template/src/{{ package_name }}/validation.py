"""validate-data: a pandera schema built from data/schema.yaml, and a readable failure report."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from .config import StepError
from .schema import Column, DataSchema

PANDAS_DTYPES = {"float": "float64", "int": "int64", "category": None}


class DataValidationError(StepError):
    """The data breaks its contract; the message is a multi-line report."""


def _pandera_column(column: Column) -> pa.Column:
    checks = []
    if column.min is not None and column.max is not None:
        checks.append(pa.Check.in_range(column.min, column.max))
    elif column.min is not None:
        checks.append(pa.Check.ge(column.min))
    elif column.max is not None:
        checks.append(pa.Check.le(column.max))
    if column.categories:
        checks.append(pa.Check.isin(list(column.categories)))
    dtype = PANDAS_DTYPES[column.dtype]
    if column.dtype == "int" and column.nullable:
        dtype = "Int64"
    return pa.Column(
        dtype,
        checks=checks,
        nullable=column.nullable,
        coerce=dtype is not None,
        required=True,
        description=column.description or None,
    )


def build_schema(schema: DataSchema) -> pa.DataFrameSchema:
    """The pandera schema of the declared contract: features and label, no other columns than the excluded ones."""
    columns = {c.name: _pandera_column(c) for c in (*schema.features, schema.target)}
    columns |= {name: pa.Column(None, nullable=True, required=False) for name in schema.excluded}
    return pa.DataFrameSchema(columns, strict=True, name="data/schema.yaml")


def validate(frame: pd.DataFrame, schema: DataSchema) -> pd.DataFrame:
    """Return the validated (type-coerced) frame, or raise DataValidationError with a report."""
    try:
        return build_schema(schema).validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise DataValidationError(format_report(exc.failure_cases, len(frame))) from None


def format_report(failures: pd.DataFrame, n_rows: int, max_values: int = 5) -> str:
    """One line per problem: the column, the check, how many values fail and a few of them."""
    lines = [f"data validation failed ({n_rows} rows checked):"]
    table = failures[failures["schema_context"] == "DataFrameSchema"]
    for check, value in zip(table["check"], table["failure_case"], strict=True):
        if check == "column_in_dataframe":
            lines.append(f"  - column {value!r}: missing (declared in the schema)")
        elif check == "column_in_schema":
            lines.append(f"  - column {value!r}: unexpected (not declared in the schema)")
        else:
            lines.append(f"  - table: check {check} failed: {value!r}")
    columns = failures[failures["schema_context"] != "DataFrameSchema"]
    wrong_type = set(columns.loc[columns["check"].astype(str).str.contains("dtype"), "column"])
    for (column, check), group in columns.groupby(["column", "check"], sort=False):
        check = str(check)
        if column in wrong_type and "dtype" not in check:
            continue  # a value of the wrong type also fails the range checks: report it once
        if check.startswith("dtype"):
            continue  # coerce_dtype already reported these values
        if check == "not_nullable":
            what = "null values are not allowed"
        elif check.startswith("coerce_dtype("):
            what = f"wrong type, expected {check.removeprefix('coerce_dtype(').rstrip(')')}"
        else:
            what = f"check {check} failed"
        examples = [
            f"{value!r}" + ("" if pd.isna(index) else f" (row {int(index)})")
            for value, index in zip(group["failure_case"], group["index"], strict=True)
        ]
        shown = ", ".join(examples[:max_values]) + (", ..." if len(examples) > max_values else "")
        lines.append(f"  - column {column!r}: {what}: {len(group)} value(s): {shown}")
    return "\n".join(lines)
