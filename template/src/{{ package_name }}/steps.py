"""The pipeline steps as plain functions: the CLI, tests and other tools call these.

Each step returns a one-line summary (or a result object) and raises StepError (one line, no
traceback) on an expected failure. Heavy libraries are imported inside the steps that need them.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .config import ENV_PREFIX, PROBLEM_TYPE, SAMPLE_PATH, Params, Settings, StepError

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
    default_sample = settings.project_dir / SAMPLE_PATH
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


def infer_schema(settings: Settings, params: Params, file: Path, target: str | None, *, write: bool = True) -> str:
    """Infer the contract of `file` (infer_schema.py), print its diff to data/schema.yaml, and write it."""
    import yaml

    from . import infer_schema as inference

    try:
        contract = inference.infer(file, target or params.target, PROBLEM_TYPE)
    except inference.SampleError as exc:
        raise StepError(str(exc)) from None
    path = settings.schema_path
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    # Renames recorded when the project was made (the data sample's header was renamed) stay recorded.
    recorded = (yaml.safe_load(old) or {}).get("renamed") if old else None
    if isinstance(recorded, dict):
        names = {c.name for c in contract.features} | {contract.target.name} | set(contract.excluded)
        kept = {str(k): str(v) for k, v in recorded.items() if k in names and k not in contract.renamed}
        contract.renamed = {**kept, **contract.renamed}
    new = contract.to_yaml()
    changes = inference.diff(old, new, _show(path), f"inferred from {file}")
    if changes:
        print(changes, end="" if changes.endswith("\n") else "\n")
    notes = [f"{len(contract.features)} features, target {contract.target.name!r} ({contract.problem_type})"]
    if contract.excluded:
        notes.append(f"left out: {', '.join(contract.excluded)}")
    if contract.renamed:
        notes.append(
            f"renamed: {', '.join(f'{o!r} -> {n}' for n, o in contract.renamed.items())} (rename them in the data too)"
        )
    if contract.target.name != params.target:
        notes.append(f"set data.target: {contract.target.name} in params.yaml")
    if not changes:
        return f"[infer-schema] {_show(path)} already matches {file}: " + "; ".join(notes)
    if not write:
        return f"[infer-schema] dry run, {_show(path)} not written: " + "; ".join(notes)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new, encoding="utf-8")
    return f"[infer-schema] wrote {_show(path)}: " + "; ".join(notes)


def fingerprint(path: Path, rows: int) -> dict[str, Any]:
    """What identifies the data: its path, SHA-256 (of a folder: of its CSV files' names and contents) and rows."""
    from .data import data_files

    digest = hashlib.sha256()
    files = data_files(path)
    for file in files:
        if len(files) > 1:
            digest.update(file.name.encode() + b"\0")
        digest.update(file.read_bytes())
    return {"path": str(path), "sha256": digest.hexdigest(), "rows": rows}


def _check_same_data(settings: Settings, found: dict[str, Any], record: bool) -> None:
    """Every step after validate-data reads the data validate-data read (its fingerprint in artifacts/data.json):
    a different file or content is an error, never a silent mix of two data sets between the splits."""
    path = settings.data_fingerprint_path
    try:
        expected = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not record:
            raise StepError(f"no {_show(path)}: run validate-data (or train) first, on the same data") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
        return
    if expected.get("sha256") != found["sha256"]:
        raise StepError(
            f"{_show(Path(found['path']))} is not the data validate-data checked "
            f"(sha256 {found['sha256'][:12]} != {str(expected.get('sha256'))[:12]}, {expected.get('rows')} rows, "
            f"{_show(Path(str(expected.get('path'))))}): run the pipeline again from validate-data"
        )


def _load_valid(
    settings: Settings, params: Params, data: Path | None, *, record: bool = False
) -> tuple[Any, Any, Path]:
    from .data import load_data
    from .schema import load_schema
    from .validation import validate

    path = resolve_data(settings, params, data)
    schema = load_schema(settings.schema_path, params.target)
    frame = validate(load_data(path), schema)
    _check_same_data(settings, fingerprint(path, len(frame)), record)
    return frame, schema, path


def validate_data(settings: Settings, params: Params, data: Path | None = None) -> str:
    from .data import load_data
    from .schema import load_schema
    from .validation import validate

    path = resolve_data(settings, params, data)
    schema = load_schema(settings.schema_path, params.target)
    frame = validate(load_data(path), schema)
    settings.data_fingerprint_path.parent.mkdir(parents=True, exist_ok=True)
    settings.data_fingerprint_path.write_text(
        json.dumps(fingerprint(path, len(frame)), indent=2) + "\n", encoding="utf-8"
    )
    return f"{_show(path)}: {len(frame)} rows, {len(schema.features)} features + {schema.target.name!r} match {_show(settings.schema_path)}"


def train(settings: Settings, params: Params, data: Path | None = None) -> str:
    from .data import split
    from .train import train as train_model

    frame, schema, path = _load_valid(settings, params, data, record=True)
    train_frame, _ = split(frame, params)
    bundle = train_model(train_frame, schema, params)
    data_record = fingerprint(path, len(frame))
    bundle.metadata["data_path"] = str(path)
    bundle.metadata["data_sha256"] = data_record["sha256"]
    bundle.metadata["data_rows"] = data_record["rows"]
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


def score_on_same_data(
    settings: Settings, params: Params, version: Any, data: Path | None = None
) -> tuple[dict[str, float], str]:
    """A registered version's metrics on this run's evaluation data (the held-out split of the same data file),
    and how they were obtained. Falls back to the metrics recorded at registration when the version cannot score
    this data (for example after a schema change)."""
    from . import registry
    from .data import split
    from .evaluate import compute_metrics

    try:
        bundle, _ = registry.load_version(version.version, settings)
        frame, _, _ = _load_valid(settings, params, data)
        _, test_frame = split(frame, params)
        return compute_metrics(bundle, test_frame, params.target), "on the same data"
    except StepError:
        raise
    except Exception as exc:  # an old bundle that cannot score this data: compare with what was recorded
        _note(f"cannot score v{version.version} on this data ({exc}): using its recorded metrics")
        return dict(version.metrics), "as recorded"


def baseline_on_same_data(
    settings: Settings, params: Params, data: Path | None = None
) -> tuple[Any, dict[str, float], str] | None:
    """The version a new one competes against (the champion, what prod runs, else the newest registered) and its
    metrics on the challenger's evaluation data. None when nothing is registered yet."""
    from . import registry

    try:
        baseline = registry.baseline(settings)
    except registry.RegistryUnavailable as exc:
        raise StepError(f"registry unreachable: {exc}") from None
    if baseline is None:
        return None
    metrics, how = score_on_same_data(settings, params, baseline, data)
    return baseline, metrics, how


def gate(settings: Settings, params: Params, data: Path | None = None) -> str:
    """Pass when the primary metric meets the threshold and the challenger is not worse than the baseline (the
    champion, else the newest registered version), both scored on the same evaluation data."""
    from .evaluate import is_worse, meets_threshold

    metric, threshold = params.primary_metric, params.metric_threshold
    metrics = read_metrics(settings)
    _load_valid(settings, params, data)  # the data the metrics came from
    if metric not in metrics:
        raise StepError(f"{_show(settings.metrics_path)} has no {metric!r}: run the evaluate step again")
    value = metrics[metric]
    relation = ">=" if params.higher_is_better else "<="
    if not meets_threshold(metric, value, threshold):
        raise QualityGateError(f"{metric}={value:.4f} does not meet the threshold {relation} {threshold}")
    found = baseline_on_same_data(settings, params, data)
    if found is not None and metric in found[1]:
        baseline, baseline_metrics, how = found
        best = baseline_metrics[metric]
        role = "champion" if "champion" in baseline.aliases else "newest"
        if is_worse(metric, value, best):
            raise QualityGateError(f"{metric}={value:.4f} is worse than {role} v{baseline.version} ({best:.4f} {how})")
        versus = f" and is not worse than {role} v{baseline.version} ({best:.4f} {how})"
    else:
        versus = " (nothing registered yet)"
    return f"passed: {metric}={value:.4f} meets the threshold {relation} {threshold}{versus}"


_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def git_commit(settings: Settings) -> str | None:
    """The commit the code comes from: <PACKAGE>_GIT_COMMIT when it is a full SHA (the workflows pass the image tag,
    which CD sets to the commit it built), else `git rev-parse HEAD` of the project; None when unknown."""
    if settings.git_commit and _COMMIT.match(settings.git_commit.lower()):
        return settings.git_commit.lower()
    try:
        done = subprocess.run(
            ["git", "-C", str(settings.project_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and _COMMIT.match(commit) else None


def lineage(settings: Settings, params: Params, data: Path | None = None) -> dict[str, Any]:
    """Where a version comes from: git commit, image, the data file's SHA-256, rows and path."""
    frame, _, path = _load_valid(settings, params, data)
    record = fingerprint(path, len(frame))
    commit = git_commit(settings)
    if commit is None:
        _note(f"the git commit of this code is unknown: set {ENV_PREFIX}GIT_COMMIT or run in a git checkout")
    return {
        "git_commit": commit,
        "image": settings.image,
        "data_sha256": record["sha256"],
        "data_rows": record["rows"],
        "data_path": record["path"],
    }


def register(settings: Settings, params: Params, data: Path | None = None) -> str:
    """Register the bundle as a new, immutable version with its lineage. Nothing that serves moves: an
    environment runs a new version when its overlay pins it (`propose`, `make set-model`)."""
    from . import registry

    if not settings.bundle_path.is_file():
        raise StepError(f"no trained model at {_show(settings.bundle_path)}: run the train step first")
    metrics = read_metrics(settings)
    record = lineage(settings, params, data)
    frame, schema, _ = _load_valid(settings, params, data)
    example = frame[schema.feature_names].head(5)
    # A nullable integer column is pandas' Int64 after validation: the model signature takes it as a float column
    # (what a CSV with missing values gives), so requests with a missing value still match it.
    example = example.astype({c.name: "float64" for c in schema.features if c.dtype == "int" and c.nullable})
    try:
        result = registry.register(settings.bundle_path, metrics, params, settings, lineage=record, example=example)
    except registry.RegistryUnavailable as exc:
        raise StepError(f"registry unreachable: {exc}") from None
    version = result.version
    settings.registration_path.write_text(
        json.dumps(
            {"name": version.name, "version": version.version, "metrics": metrics, "lineage": version.lineage},
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return (
        f"registered {version.name} v{version.version} in the {registry.location(settings)} "
        f"(no environment serves it until its overlay pins it: make set-model VERSION={version.version})"
    )


def set_model(settings: Settings, overlay: str, version: str) -> str:
    """Pin `version` in deploy/k8s/overlays/<overlay> after checking the registry holds it; a bad value changes
    nothing."""
    from . import gitops, registry

    try:
        gitops.overlay_file(settings.project_dir, overlay)
        version = gitops.check_model_version(version)
        if version != gitops.NO_MODEL_VERSION:
            registry.get_version(version, settings)
        path = gitops.set_model(settings.project_dir, overlay, version)
    except gitops.GitOpsError as exc:
        raise StepError(str(exc)) from None
    except registry.RegistryError as exc:
        known = ", ".join(v.version for v in registry.list_versions(settings)) or "none"
        raise StepError(
            f"VERSION={version}: {exc} in the {registry.location(settings)} (registered: {known})"
        ) from None
    except registry.RegistryUnavailable as exc:
        raise StepError(f"VERSION={version}: cannot check it, registry unreachable: {exc}") from None
    return f"{_show(path)}: {gitops.MODEL_VERSION_VARIABLE}={version}"


def _metrics_table(metrics: dict[str, dict[str, float]], metric: str) -> str:
    names = sorted({name for values in metrics.values() for name in values}, key=lambda n: (n != metric, n))
    columns = list(metrics)
    lines = ["| metric | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name in names:
        cells = [f"{metrics[c][name]:.4f}" if name in metrics[c] else "-" for c in columns]
        lines.append(f"| {'**' + name + '**' if name == metric else name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def propose(settings: Settings, params: Params, data: Path | None = None, overlay: str | None = None) -> str:
    """Propose the version `register` just registered for the first environment: a branch `model/<env>` of the
    GitOps repository with the `set-model` change, and a pull/merge request whose description puts the new
    version's metrics beside those of the version the environment runs, on the same data, with the lineage."""
    from . import gitops, registry

    try:
        registered = json.loads(settings.registration_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StepError(f"no {_show(settings.registration_path)}: run the register step first") from None
    env = overlay or gitops.PROMOTION_ORDER[0]
    remote = settings.gitops_repo or gitops.GITOPS_REPO_URL
    forge = gitops.Forge.from_environment(remote)
    try:
        new = registry.get_version(str(registered["version"]), settings)
        with tempfile.TemporaryDirectory() as tmp:
            clone = Path(tmp) / "repo"
            gitops.git(
                "clone",
                "--quiet",
                "--depth",
                "1",
                "--branch",
                gitops.DEFAULT_BRANCH,
                remote,
                str(clone),
                cwd=Path(tmp),
                auth=forge.git_auth(),
            )
            for key, value in (("user.name", f"{settings.model_name} training"), ("user.email", "training@localhost")):
                gitops.git("config", key, value, cwd=clone)
            current = gitops.read_release(clone, env)
            if current.model_version == new.version:
                return f"{env} already runs {new.name} v{new.version}: nothing to propose"
            metric = params.primary_metric
            new_metrics, _ = score_on_same_data(settings, params, new, data)
            table = {f"v{new.version} (new)": new_metrics}
            if current.model_version == gitops.NO_MODEL_VERSION:
                runs = f"{env} serves no model yet"
            else:
                try:
                    running = registry.get_version(current.model_version, settings)
                    running_metrics, how = score_on_same_data(settings, params, running, data)
                    table[f"v{running.version} ({env} now, {how})"] = running_metrics
                    runs = f"{env} runs v{running.version}"
                except registry.RegistryError:
                    runs = f"{env} pins v{current.model_version}, which the registry does not hold"
            gitops.set_model(clone, env, new.version)
            branch = f"model/{env}"
            title = f"Serve {new.name} v{new.version} in {env}"
            facts = {"model": f"{new.name} v{new.version} ({registry.location(settings)})", **new.lineage}
            body = "\n".join(
                [
                    f"Pins model v{new.version} in `deploy/k8s/overlays/{env}` ({gitops.MODEL_VERSION_VARIABLE}); {runs}.",
                    f"Metrics on the held-out split of the same data (`{new.lineage.get('data_path', '?')}`, "
                    f"sha256 `{str(new.lineage.get('data_sha256', '?'))[:12]}`), gate metric **{metric}**:",
                    "",
                    _metrics_table(table, metric),
                    "",
                    "Lineage:",
                    "",
                    *[f"- {key}: `{value}`" for key, value in facts.items()],
                    "",
                    "Merging it rolls the new model out like a new image; the promotion chain then proposes the next "
                    "environment. Roll back with `git revert` of the merge commit.",
                ]
            )
            where = gitops.propose_change(clone, branch, title, body, forge)
    except gitops.GitOpsError as exc:
        raise StepError(str(exc)) from None
    except (registry.RegistryError, registry.RegistryUnavailable) as exc:
        raise StepError(f"cannot propose v{registered.get('version')}: {exc}") from None
    return f"proposed {new.name} v{new.version} for {env}: {where}"


def promote(settings: Settings, version: str) -> str:
    """Record a registered version as the champion, what prod runs (the old one becomes `previous-champion`)."""
    from . import registry

    try:
        champion, previous = registry.promote(version, settings)
    except (registry.RegistryError, registry.RegistryUnavailable) as exc:
        raise StepError(str(exc)) from None
    was = f" (was v{previous.version})" if previous is not None else ""
    return f"champion is now {champion.name} v{champion.version}{was}: a record only, the overlays say what runs"


def rollback(settings: Settings) -> str:
    """Move the champion alias back to the previous champion (a record; roll back a release with git revert)."""
    from . import registry

    try:
        restored, demoted = registry.rollback(settings)
    except (registry.RegistryError, registry.RegistryUnavailable) as exc:
        raise StepError(str(exc)) from None
    return (
        f"rolled back: champion is {restored.name} v{restored.version} again (was v{demoted.version}); "
        "the servers run what their overlays pin: git revert the promotion commit to roll them back"
    )


def current_window(settings: Settings, params: Params, current: Path | None) -> tuple[Any, Path]:
    """The current data: a CSV (or a folder of CSVs), a prediction log (JSONL file or a folder of them), or by
    default the serving prediction log when it exists, else the training data itself."""
    from .data import load_data
    from .prediction_log import read_window

    if current is None:
        log = settings.prediction_log_path
        if log is not None and (log.is_file() or log.with_name(log.name + ".1").is_file()):
            current = log
        else:
            current = resolve_data(settings, params)
    if current.is_dir() and not any(current.glob("*.jsonl")):
        return load_data(current), current  # a folder of CSVs; none at all (an absent artifact): a StepError
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
