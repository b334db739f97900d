"""The data contract of data/schema.yaml as plain Python objects (no pandas, no pandera)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .config import StepError

DType = Literal["float", "int", "category"]
DTYPES: tuple[DType, ...] = ("float", "int", "category")


@dataclass(frozen=True)
class Column:
    """One declared column: type, range, nullability and allowed categories."""

    name: str
    dtype: DType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[Any, ...] | None = None
    description: str = ""

    @property
    def is_categorical(self) -> bool:
        return self.dtype == "category"


@dataclass(frozen=True)
class DataSchema:
    """Feature columns in declared order, plus the label column."""

    features: tuple[Column, ...]
    target: Column
    excluded: tuple[str, ...] = ()  # columns of the data that are not features (identifiers, free text...)

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.features]

    @property
    def numeric(self) -> list[Column]:
        return [c for c in self.features if not c.is_categorical]

    @property
    def categorical(self) -> list[Column]:
        return [c for c in self.features if c.is_categorical]


def _column(name: str, spec: Any, where: Path) -> Column:
    if not isinstance(spec, dict):
        raise StepError(f"{where}: column {name!r} must be a mapping")
    dtype = spec.get("dtype")
    if dtype not in DTYPES:
        raise StepError(f"{where}: column {name!r} has dtype {dtype!r}; use one of {', '.join(DTYPES)}")
    categories = spec.get("categories")
    if dtype == "category" and not categories:
        raise StepError(f"{where}: categorical column {name!r} needs a non-empty 'categories' list")
    return Column(
        name=name,
        dtype=dtype,
        nullable=bool(spec.get("nullable", False)),
        min=spec.get("min"),
        max=spec.get("max"),
        categories=tuple(categories) if categories else None,
        description=str(spec.get("description", "")),
    )


def load_schema(path: Path, target: str) -> DataSchema:
    """Read data/schema.yaml; `target` (from params.yaml) names the label column."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise StepError(f"schema file not found: {path}") from None
    features = raw.get("features")
    if not isinstance(features, dict) or not features:
        raise StepError(f"{path}: 'features' must map column names to their specs")
    if target in features:
        raise StepError(f"{path}: the label column {target!r} must not be listed under 'features'")
    excluded = raw.get("excluded") or {}
    if not isinstance(excluded, dict):
        raise StepError(f"{path}: 'excluded' must map column names to the reason they are not features")
    return DataSchema(
        features=tuple(_column(name, spec, path) for name, spec in features.items()),
        target=_column(target, raw.get("target"), path),
        excluded=tuple(str(name) for name in excluded),
    )
