"""The feature encoder: records or a DataFrame in, a float numpy matrix out.

Fit on the training split only. Numeric columns are imputed with the training median (for
nullable columns) and standardised; categorical columns are one-hot encoded (a category unseen
in training encodes as all zeros). `transform_records` needs no pandas, so serving stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .schema import DataSchema

if TYPE_CHECKING:  # pandas is not imported on the serving path (it is most of a cold start's import time)
    import pandas as pd


class FeatureEncoder:
    """One-hot for categoricals, median-impute + standard scaling for numerics."""

    def __init__(self, schema: DataSchema) -> None:
        self.numeric: list[str] = [c.name for c in schema.numeric]
        self.categorical: list[str] = [c.name for c in schema.categorical]
        self.medians = np.zeros(len(self.numeric))
        self.means = np.zeros(len(self.numeric))
        self.scales = np.ones(len(self.numeric))
        self.categories: dict[str, list[Any]] = {}
        self._offsets: dict[str, dict[Any, int]] = {}
        self.fitted = False

    @property
    def feature_names(self) -> list[str]:
        """Names of the output columns, in order."""
        one_hot = [f"{col}={value}" for col in self.categorical for value in self.categories[col]]
        return [*self.numeric, *one_hot]

    @property
    def n_features(self) -> int:
        return len(self.numeric) + sum(len(v) for v in self.categories.values())

    def fit(self, frame: pd.DataFrame) -> FeatureEncoder:
        values = frame[self.numeric].to_numpy(dtype=float)
        self.medians = np.nanmedian(values, axis=0)
        filled = np.where(np.isnan(values), self.medians, values)
        self.means = filled.mean(axis=0)
        std = filled.std(axis=0)
        self.scales = np.where(std > 0, std, 1.0)
        self.categories = {col: sorted(frame[col].dropna().unique().tolist()) for col in self.categorical}
        self._build_offsets()
        self.fitted = True
        return self

    def _build_offsets(self) -> None:
        offset = len(self.numeric)
        self._offsets = {}
        for col in self.categorical:
            self._offsets[col] = {value: offset + i for i, value in enumerate(self.categories[col])}
            offset += len(self.categories[col])

    def transform(self, data: pd.DataFrame | Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode a DataFrame or a list of records (dicts) into a float64 matrix."""
        pandas = sys.modules.get("pandas")  # no DataFrame can exist before pandas is imported
        if pandas is not None and isinstance(data, pandas.DataFrame):
            return self.transform_frame(data)
        return self.transform_records(data)

    def transform_frame(self, frame: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        out = np.zeros((len(frame), self.n_features))
        values = frame[self.numeric].to_numpy(dtype=float)
        out[:, : len(self.numeric)] = np.where(np.isnan(values), self.medians, values)
        for col in self.categorical:
            offsets = self._offsets[col]
            for row, value in enumerate(frame[col].tolist()):
                if (index := offsets.get(value)) is not None:
                    out[row, index] = 1.0
        return self._scale(out)

    def transform_records(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The serving path: plain dicts to numpy, no pandas."""
        self._check_fitted()
        n_numeric = len(self.numeric)
        out = np.zeros((len(records), self.n_features))
        for row, record in enumerate(records):
            for j, col in enumerate(self.numeric):
                value = record.get(col)
                out[row, j] = self.medians[j] if value is None else value
            for col in self.categorical:
                if (index := self._offsets[col].get(record.get(col))) is not None:
                    out[row, index] = 1.0
        return self._scale(out, n_numeric)

    def _scale(self, out: np.ndarray, n_numeric: int | None = None) -> np.ndarray:
        n = len(self.numeric) if n_numeric is None else n_numeric
        out[:, :n] = (out[:, :n] - self.means) / self.scales
        return out

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("FeatureEncoder is not fitted: call fit() on the training data first")

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build_offsets()
