"""Feature drift between reference (training) data and current data.

Numeric features: two-sample Kolmogorov-Smirnov test (drift when p-value < `drift.ks_pvalue`).
Categorical features: population stability index (drift when PSI > `drift.psi_threshold`), with
the chi-square test's p-value reported alongside. The data set drifts when more than
`drift.max_drifted_features` features drift. All thresholds come from params.yaml.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .schema import DataSchema

EPSILON = 1e-4


def psi(reference: pd.Series, current: pd.Series, categories: list[Any]) -> float:
    """Population stability index of a categorical feature over `categories`."""
    ref = reference.value_counts(normalize=True).reindex(categories, fill_value=0.0).to_numpy()
    cur = current.value_counts(normalize=True).reindex(categories, fill_value=0.0).to_numpy()
    ref, cur = np.clip(ref, EPSILON, None), np.clip(cur, EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _numeric(reference: pd.Series, current: pd.Series, thresholds: dict[str, Any]) -> dict[str, Any]:
    from scipy import stats

    result = stats.ks_2samp(reference.dropna().to_numpy(), current.dropna().to_numpy())
    p_value = float(result.pvalue)
    return {
        "kind": "numeric",
        "test": "ks",
        "statistic": round(float(result.statistic), 6),
        "p_value": p_value,
        "threshold": float(thresholds["ks_pvalue"]),
        "drift": p_value < float(thresholds["ks_pvalue"]),
    }


def _categorical(
    reference: pd.Series, current: pd.Series, categories: list[Any], thresholds: dict[str, Any]
) -> dict[str, Any]:
    from scipy import stats

    value = psi(reference, current, categories)
    table = np.array(
        [
            reference.value_counts().reindex(categories, fill_value=0).to_numpy(),
            current.value_counts().reindex(categories, fill_value=0).to_numpy(),
        ]
    )
    table = table[:, table.sum(axis=0) > 0]
    p_value = float(stats.chi2_contingency(table).pvalue) if table.shape[1] > 1 else 1.0
    return {
        "kind": "categorical",
        "test": "psi",
        "statistic": round(value, 6),
        "chi2_p_value": p_value,
        "threshold": float(thresholds["psi_threshold"]),
        "drift": value > float(thresholds["psi_threshold"]),
    }


def detect_drift(
    reference: pd.DataFrame, current: pd.DataFrame, schema: DataSchema, thresholds: dict[str, Any]
) -> dict[str, Any]:
    """Per-feature tests and the overall verdict, as a JSON-ready dict."""
    features: dict[str, Any] = {}
    for column in schema.features:
        if column.name not in current.columns:
            features[column.name] = {"kind": "missing", "drift": True}
        elif column.is_categorical:
            categories = list(column.categories or ())
            features[column.name] = _categorical(reference[column.name], current[column.name], categories, thresholds)
        else:
            features[column.name] = _numeric(reference[column.name], current[column.name], thresholds)
    drifted = sorted(name for name, result in features.items() if result["drift"])
    allowed = int(thresholds.get("max_drifted_features", 0))
    return {
        "drift": len(drifted) > allowed,
        "drifted_features": drifted,
        "max_drifted_features": allowed,
        "reference_rows": len(reference),
        "current_rows": len(current),
        "features": features,
    }
