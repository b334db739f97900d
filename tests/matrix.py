"""A pairwise covering set of answer combinations: every pair of values of any two keys appears in some render.

The keys and their values come from copier.yml itself: every asked question with choices (a multiselect gives its
first choice alone, its last alone, all of them, and all but the first), every bool question (true, false). A
combination is dropped when a question's own validator rejects it (a metric of the other problem type), as copier
would. Built greedily
and deterministically (seeded), after cookiecutter-data-science's `config_generator`, with pairwise coverage
instead of the full product.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import jinja2

from mlscaffold.template import bundled_template, questions, read_config

CONFIG = read_config(str(bundled_template())) or {}
QUESTIONS = questions(CONFIG)
ANSWER_KEYS = sorted(QUESTIONS)


def _values(name: str) -> list[Any] | None:
    question = QUESTIONS[name]
    if not question.asked:
        return None
    if question.multiselect and question.choices:
        every = list(question.choices)
        return [every[:1], every[-1:], every, every[1:]]
    if question.choices:
        return list(question.choices)
    return [True, False] if question.type == "bool" else None


CHOICES: dict[str, list[Any]] = {name: values for name in QUESTIONS if (values := _values(name))}
_VALIDATORS = {
    name: jinja2.Environment().from_string(str(spec["validator"]))
    for name, spec in CONFIG.items()
    if name in CHOICES and isinstance(spec, dict) and spec.get("validator")
}


def _valid(combo: dict[str, Any]) -> bool:
    """No validator of a question in the combination rejects it (validators read only answers in CHOICES here)."""
    return all(not template.render(combo).strip() for template in _VALIDATORS.values())


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


def as_answers(combo: dict[str, Any]) -> dict[str, str]:
    """The combination as raw ``--data`` values (``[dev, prod]``, ``true``)."""
    out = {}
    for key, value in combo.items():
        if isinstance(value, list):
            out[key] = f"[{', '.join(value)}]"
        else:
            out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


if __name__ == "__main__":
    combos = pairwise()
    print(len(combos))
    for c in combos:
        print(c)
