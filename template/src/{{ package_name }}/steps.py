"""The pipeline steps as plain functions: the CLI, tests and other tools call these.

Each step returns a one-line summary (or a result object) and raises StepError (one line, no
traceback) on an expected failure. Heavy libraries are imported inside the steps that need them.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from .config import Params, Settings, StepError

DRIFT_EXIT_CODE = 3


class QualityGateError(StepError):
    """The model does not pass the quality gate."""

    label = "FAILED"


class DriftDetectedError(StepError):
    """The current data drifted from the reference data."""

    code = DRIFT_EXIT_CODE
    label = "DRIFT"


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def resolve_data(settings: Settings, params: Params, path: Path | None = None) -> Path:
    """The data file to use; the default sample is generated (seeded) when it does not exist yet."""
    path = path or settings.data_path
    default_sample = settings.project_dir / "data" / "sample.csv"
    if not path.exists() and path == settings.data_path == default_sample:
        make_data(settings, params)
        _note(f"generated the seeded sample data: {_show(path)} ({params.sample_rows} rows)")
    return path


def make_data(
    settings: Settings,
    params: Params,
    out: Path | None = None,
    rows: int | None = None,
    seed: int | None = None,
    shift: float = 0.0,
) -> str:
    from .data import write_sample

    path = write_sample(
        out or settings.data_path,
        rows or params.sample_rows,
        params.seed if seed is None else seed,
        shift=shift,
        target=params.target,
    )
    return f"wrote {rows or params.sample_rows} rows to {_show(path)}" + (f" (shift {shift})" if shift else "")


def _load_valid(settings: Settings, params: Params, data: Path | None) -> tuple[Any, Any, Path]:
    from .data import load_data
    from .schema import load_schema
    from .validation import validate

    path = resolve_data(settings, params, data)
    schema = load_schema(settings.schema_path, params.target)
    return validate(load_data(path), schema), schema, path


def validate_data(settings: Settings, params: Params, data: Path | None = None) -> str:
    frame, schema, path = _load_valid(settings, params, data)
    return f"{_show(path)}: {len(frame)} rows, {len(schema.features)} features + {schema.target.name!r} match {_show(settings.schema_path)}"


def train(settings: Settings, params: Params, data: Path | None = None) -> str:
    from .data import split
    from .train import train as train_model

    frame, schema, path = _load_valid(settings, params, data)
    train_frame, _ = split(frame, params)
    bundle = train_model(train_frame, schema, params)
    bundle.metadata["data_path"] = str(path)
    bundle.metadata["data_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    bundle.save(settings.bundle_path)
    seconds = bundle.metadata["train_seconds"]
    return f"trained {bundle.metadata['framework']} on {len(train_frame)} rows in {seconds:.1f}s -> {_show(settings.bundle_path)}"


def _load_bundle(settings: Settings) -> Any:
    from .model import ModelBundle

    if not settings.bundle_path.is_file():
        raise StepError(f"no trained model at {_show(settings.bundle_path)}: run the train step first")
    return ModelBundle.load(settings.bundle_path)


def evaluate(settings: Settings, params: Params, data: Path | None = None) -> dict[str, float]:
    from .data import split
    from .evaluate import compute_metrics

    bundle = _load_bundle(settings)
    frame, _, _ = _load_valid(settings, params, data)
    _, test_frame = split(frame, params)
    metrics = compute_metrics(bundle, test_frame, params.target)
    settings.metrics_path.parent.mkdir(parents=True, exist_ok=True)
    settings.metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def evaluate_summary(settings: Settings, params: Params, data: Path | None = None) -> str:
    metrics = evaluate(settings, params, data)
    values = ", ".join(f"{name}={value:.4f}" for name, value in metrics.items())
    return f"{values} -> {_show(settings.metrics_path)}"


def read_metrics(settings: Settings) -> dict[str, float]:
    try:
        metrics: dict[str, float] = json.loads(settings.metrics_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(f"no metrics at {_show(settings.metrics_path)}: run the evaluate step first") from None
    return metrics


def champion_on_same_data(
    settings: Settings, params: Params, data: Path | None = None
) -> tuple[Any, dict[str, float], str] | None:
    """The registered champion and its metrics on the challenger's evaluation data (the held-out split of the
    same data file), with where they come from. Falls back to the metrics recorded at registration when the
    champion cannot score this data (for example after a schema change). None when there is no champion."""
    from . import registry
    from .data import split
    from .evaluate import compute_metrics

    champion = registry.get_champion(settings)
    if champion is None:
        return None
    try:
        loaded = registry.load_champion(settings)
        if loaded is None:
            return None
        bundle, champion = loaded
        frame, _, _ = _load_valid(settings, params, data)
        _, test_frame = split(frame, params)
        return champion, compute_metrics(bundle, test_frame, params.target), "on the same data"
    except StepError:
        raise
    except Exception as exc:  # an old bundle that cannot score this data: compare with what was recorded
        _note(f"cannot score champion v{champion.version} on this data ({exc}): using its recorded metrics")
        return champion, dict(champion.metrics), "as recorded"


def gate(settings: Settings, params: Params, data: Path | None = None) -> str:
    """Pass when the primary metric meets the threshold and the challenger is not worse than the champion,
    both scored on the same evaluation data."""
    from .evaluate import is_worse, meets_threshold

    metric, threshold = params.primary_metric, params.metric_threshold
    metrics = read_metrics(settings)
    if metric not in metrics:
        raise StepError(f"{_show(settings.metrics_path)} has no {metric!r}: run the evaluate step again")
    value = metrics[metric]
    relation = ">=" if params.higher_is_better else "<="
    if not meets_threshold(metric, value, threshold):
        raise QualityGateError(f"{metric}={value:.4f} does not meet the threshold {relation} {threshold}")
    found = champion_on_same_data(settings, params, data)
    if found is not None and metric in found[1]:
        champion, champion_metrics, how = found
        best = champion_metrics[metric]
        if is_worse(metric, value, best):
            raise QualityGateError(
                f"{metric}={value:.4f} is worse than champion v{champion.version} ({best:.4f} {how})"
            )
        versus = f" and is not worse than champion v{champion.version} ({best:.4f} {how})"
    else:
        versus = " (no champion yet)"
    return f"passed: {metric}={value:.4f} meets the threshold {relation} {threshold}{versus}"


def register(settings: Settings, params: Params, data: Path | None = None) -> str:
    """Register the challenger; it becomes champion only when it beats the champion on the same data."""
    from . import registry

    if not settings.bundle_path.is_file():
        raise StepError(f"no trained model at {_show(settings.bundle_path)}: run the train step first")
    metrics = read_metrics(settings)
    found = champion_on_same_data(settings, params, data)
    champion_metrics = found[1] if found is not None else None
    result = registry.register(settings.bundle_path, metrics, params, settings, champion_metrics=champion_metrics)
    version = result.version
    if result.promoted:
        role = (
            "champion"
            if result.previous_champion is None
            else f"champion, replacing v{result.previous_champion.version}"
        )
    else:
        previous = result.previous_champion
        role = f"challenger; champion stays v{previous.version if previous else '?'}"
    return f"registered {version.name} v{version.version} ({role}) in the {registry.location(settings)}"


def promote(settings: Settings, version: str) -> str:
    """Make a registered version the champion (the old one becomes `previous-champion`)."""
    from . import registry

    try:
        champion, previous = registry.promote(version, settings)
    except registry.RegistryError as exc:
        raise StepError(str(exc)) from None
    was = f" (was v{previous.version})" if previous is not None else ""
    return f"champion is now {champion.name} v{champion.version}{was}: restart the servers to load it"


def rollback(settings: Settings) -> str:
    """Move the champion alias back to the previous champion."""
    from . import registry

    try:
        restored, demoted = registry.rollback(settings)
    except registry.RegistryError as exc:
        raise StepError(str(exc)) from None
    return (
        f"rolled back: champion is {restored.name} v{restored.version} again (was v{demoted.version}): "
        "restart the servers to load it"
    )


def current_window(settings: Settings, params: Params, current: Path | None) -> tuple[Any, Path]:
    """The current data: a CSV, a prediction log (JSONL file or a folder of them), or by default the
    serving prediction log when it exists, else the training data itself."""
    from .data import load_data
    from .prediction_log import read_window

    if current is None:
        log = settings.prediction_log_path
        if log is not None and (log.is_file() or log.with_name(log.name + ".1").is_file()):
            current = log
        else:
            current = resolve_data(settings, params)
    if current.is_dir() or current.suffix in (".jsonl", ".ndjson"):
        if not (current.exists() or current.with_name(current.name + ".1").exists()):
            raise StepError(f"prediction log not found: {_show(current)}")
        window_rows = int(params.drift.get("window_rows", 0)) or None
        return read_window(current, window_rows), current
    return load_data(current), current


def drift(
    settings: Settings,
    params: Params,
    current: Path | None = None,
    reference: Path | None = None,
    pushgateway: str | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """Write the drift report (JSON) and its metrics (Prometheus text); push them to a Pushgateway when one is
    given; raise DriftDetectedError (exit code 3) when the data drifted."""
    from .data import load_data
    from .drift import detect_drift, push, to_prometheus
    from .schema import load_schema

    reference_path = resolve_data(settings, params, reference)
    current_frame, current_path = current_window(settings, params, current)
    schema = load_schema(settings.schema_path, params.target)
    report = detect_drift(load_data(reference_path), current_frame, schema, params.drift)
    report |= {"reference": str(reference_path), "current": str(current_path)}
    settings.drift_report_path.parent.mkdir(parents=True, exist_ok=True)
    settings.drift_report_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    settings.drift_metrics_path.write_bytes(to_prometheus(report))
    where = f"report: {_show(settings.drift_report_path)}"
    if pushgateway:
        try:
            push(report, pushgateway, labels or {})
            where += f", pushed to {pushgateway}"
        except OSError as exc:
            _note(f"[drift] could not push the metrics to {pushgateway}: {exc}")
    if report["drift"]:
        drifted = ", ".join(report["drifted_features"])
        raise DriftDetectedError(f"{len(report['drifted_features'])} feature(s) drifted: {drifted} ({where})")
    if report["status"] == "insufficient_data":
        minimum = report["thresholds"]["min_current_rows"]
        return f"not judged: {report['current_rows']} rows in {_show(current_path)} < {minimum} ({where})"
    return f"no drift: {_show(current_path)} vs {_show(reference_path)} ({where})"
