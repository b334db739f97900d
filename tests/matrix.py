"""A pairwise covering set of answer combinations: every pair of values of any two keys appears in some render.

Built greedily and deterministically (seeded), dropping invalid combinations (a metric of the other problem type),
after cookiecutter-data-science's `config_generator`, with pairwise coverage instead of the full product.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

METRICS = {"classification": ["roc_auc", "f1", "accuracy"], "regression": ["rmse", "mae", "r2"]}
CHOICES: dict[str, list[Any]] = {
    "python_version": ["3.11", "3.12", "3.13"],
    "ml_framework": ["sklearn", "xgboost", "pytorch"],
    "problem_type": ["classification", "regression"],
    "primary_metric": [m for ms in METRICS.values() for m in ms],
    "model_registry": ["mlflow", "none"],
    "ci_provider": ["github", "gitlab", "none"],
    "environments": [["dev"], ["prod"], ["dev", "staging", "prod"], ["staging", "prod"]],
    "deployment_strategy": ["rolling", "canary", "bluegreen"],
    "drift_detection": [True, False],
    "use_gpu": [True, False],
}


def _valid(combo: dict[str, Any]) -> bool:
    return combo["primary_metric"] in METRICS[combo["problem_type"]]


def _pairs(combo: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    items = sorted((k, repr(v)) for k, v in combo.items())
    return {(a, av, b, bv) for (a, av), (b, bv) in itertools.combinations(items, 2)}


def pairwise(seed: int = 7, candidates: int = 60) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    full = [dict(zip(CHOICES, values, strict=True)) for values in itertools.product(*CHOICES.values())]
    valid = [c for c in full if _valid(c)]
    uncovered = set().union(*(_pairs(c) for c in valid))
    chosen: list[dict[str, Any]] = []
    while uncovered:
        pool = rng.sample(valid, candidates)
        # Seed the pool with a combination that covers one specific uncovered pair, so the loop always progresses.
        a, av, b, bv = min(uncovered)
        pool += [c for c in valid if repr(c[a]) == av and repr(c[b]) == bv][:1]
        best = max(pool, key=lambda c: len(_pairs(c) & uncovered))
        chosen.append(best)
        uncovered -= _pairs(best)
    return chosen


def as_data_args(combo: dict[str, Any]) -> list[str]:
    out = []
    for key, value in combo.items():
        text = (
            f"[{', '.join(value)}]"
            if isinstance(value, list)
            else str(value).lower()
            if isinstance(value, bool)
            else value
        )
        out += ["-d", f"{key}={text}"]
    return out


if __name__ == "__main__":
    combos = pairwise()
    print(len(combos))
    for c in combos:
        print(c)
