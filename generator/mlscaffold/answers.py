"""Answers: from the command line (``--data KEY=VALUE``, ``--data-file``), checked before anything is rendered, and
the answers file a render records (``.copier-answers.yml``).

copier ignores an unknown key silently and reports a bad type with a bare Python error; here every such mistake
becomes a :class:`UserError` naming the key, the bad value and what would be valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlscaffold.errors import UserError
from mlscaffold.template import Question

ANSWERS_FILE = ".copier-answers.yml"
ANSWERS_HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def parse_data_args(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings into a mapping of raw strings; typing happens in :func:`coerce`."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--data '{item}': expected KEY=VALUE, e.g. --data ml_framework=xgboost")
        result[key] = value
    return result


def load_data_file(path: Path) -> dict[str, Any]:
    """A YAML mapping of answers."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--data-file '{path}': cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"--data-file '{path}': not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"--data-file '{path}': expected a mapping of answer keys to values, got a {_kind(data)}")
    return {str(k): v for k, v in data.items()}


def coerce(raw: Mapping[str, Any], questions: Mapping[str, Question]) -> dict[str, Any]:
    """Check the keys, types and choices of ``raw`` against the questions, and return typed answers.

    Strings (from ``--data``) are read as YAML scalars or lists, except for ``str`` questions, which keep the text
    as typed. Values from a data file are already typed.
    """
    asked = {name: q for name, q in questions.items() if q.asked}
    result: dict[str, Any] = {}
    for key, value in raw.items():
        question = asked.get(key)
        if question is None:
            raise UserError(f"unknown answer key '{key}': valid keys are {', '.join(asked)}")
        result[key] = _coerce_one(question, value)
    return result


def _coerce_one(q: Question, value: Any) -> Any:
    if q.multiselect:
        items = _as_list(q, value)
        for item in items:
            _check_choice(q, item)
        return items
    if q.type == "bool":
        return _as_bool(q, value)
    if q.type in ("int", "float"):
        return _as_number(q, value)
    if q.type in ("yaml", "json"):
        return _yaml(value) if isinstance(value, str) else value
    if isinstance(value, (dict, list)):
        raise UserError(f"{q.name}: expected a single value, got a {_kind(value)} {value!r}")
    text = value if isinstance(value, str) else _scalar_text(value)
    _check_choice(q, text)
    return text


def _check_choice(q: Question, value: str) -> None:
    if q.choices is not None and value not in q.choices:
        raise UserError(f"{q.name}: '{value}' is not a valid choice: choose one of {', '.join(q.choices)}")


def _as_list(q: Question, value: Any) -> list[str]:
    if isinstance(value, str):
        parsed = _yaml(value)
        # `dev,prod` and `[dev, prod]` both mean a list; a bare `dev` is a list of one.
        value = parsed if isinstance(parsed, list) else [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
        raise UserError(f"{q.name}: {value!r} is not a list: expected e.g. [{', '.join(q.choices or ())}]")
    return [_scalar_text(v) for v in value]


def _as_bool(q: Question, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise UserError(f"{q.name}: {value!r} is not a boolean: use true or false")


def _as_number(q: Question, value: Any) -> int | float:
    parsed = _yaml(value) if isinstance(value, str) else value
    if isinstance(parsed, bool) or not isinstance(parsed, (int, float)):
        raise UserError(f"{q.name}: {value!r} is not a number: expected e.g. {'0.85' if q.type == 'float' else '3'}")
    if q.type == "int":
        if isinstance(parsed, float) and not parsed.is_integer():
            raise UserError(f"{q.name}: {value!r} is not a whole number")
        return int(parsed)
    return float(parsed)


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "mapping"
    return "list" if isinstance(value, list) else type(value).__name__


def parse_answers(text: str) -> dict[str, Any]:
    """The mapping an answers file holds (empty when it holds none)."""
    import yaml

    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return dict(loaded) if isinstance(loaded, dict) else {}


def read_answers(project: Path) -> dict[str, Any]:
    """The answers recorded in ``project`` (empty when it has no answers file)."""
    path = project / ANSWERS_FILE
    return parse_answers(path.read_text(encoding="utf-8")) if path.is_file() else {}


def write_answers(project: Path, answers: Mapping[str, Any]) -> None:
    import yaml

    body = yaml.safe_dump(dict(answers), sort_keys=False, default_flow_style=False, allow_unicode=True)
    (project / ANSWERS_FILE).write_text(ANSWERS_HEADER + body, encoding="utf-8")


def version_of(answers: Mapping[str, Any]) -> str | None:
    """The template version the answers record (``_commit``)."""
    commit = answers.get("_commit")
    return str(commit) if commit is not None else None
