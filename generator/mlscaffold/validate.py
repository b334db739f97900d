"""`mlscaffold validate`: every YAML file parses, every Kustomize root builds, every resource validates strictly.

- core Kubernetes kinds: kubernetes-validate's strict schemas, offline;
- Argo Workflows kinds: Hera's models, with the fields Hera would silently drop reported as unknown, and every
  DAG/steps template reference checked;
- other custom resources: JSON Schemas from kubeconform-style locations (``{group}/{kind}_{version}.json``): the
  ``--schema-location`` options, then ``MLSCAFFOLD_SCHEMA_LOCATION``, then the public CRDs catalog;
- CI files: GitHub workflows and ``.gitlab-ci.yml`` against the schemas check-jsonschema ships.

Each problem is one line: ``path[:doc]: field.path: message``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlscaffold.yamlutil import load_all

KUBERNETES_VERSION = "1.32"
DEFAULT_CATALOG = "https://raw.githubusercontent.com/datreeio/CRDs-catalog/main"
SCHEMA_LOCATION_ENV = "MLSCAFFOLD_SCHEMA_LOCATION"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ARGO_WORKFLOW_KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
SKIPPED_DIRS = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache",
     "mlruns", "mlartifacts", "artifacts", "models"}
)  # fmt: skip
CI_SCHEMAS = {"github": "github-workflows.json", "gitlab": "gitlab-ci.json"}


@dataclass(frozen=True, order=True)
class Problem:
    """One validation error, printed as ``path[:doc]: field.path: message``."""

    path: str
    doc: int | None
    field: str
    message: str
    #: No schema could be found for the resource: it is unverified, not known to be invalid.
    missing_schema: bool = dataclasses.field(default=False, compare=False)

    def __str__(self) -> str:
        where = self.path if self.doc is None else f"{self.path}:{self.doc}"
        return f"{where}: {self.field or '(document)'}: {self.message}"


def schema_locations(extra: Sequence[str] = ()) -> list[str]:
    """Where custom-resource schemas are looked up, in order."""
    from_env = [loc for loc in os.environ.get(SCHEMA_LOCATION_ENV, "").split(os.pathsep) if loc]
    return [*extra, *from_env, DEFAULT_CATALOG]


@dataclass(frozen=True)
class Report:
    """What :func:`validate_project` looked at, and the problems it found (sorted; empty when valid)."""

    problems: list[Problem]
    files: int
    builds: int
    resources: int


def validate_project(
    root: Path, locations: Sequence[str] | None = None, progress: Callable[[str], None] = lambda _: None
) -> Report:
    """Validate the project at ``root`` against the schema ``locations`` (default: :func:`schema_locations`)."""
    store = SchemaStore(schema_locations() if locations is None else locations)
    problems: list[Problem] = []
    import yaml

    resources_checked = 0
    files = _yaml_files(root)
    parsed: dict[Path, list[Any]] = {}
    for path in files:
        try:
            parsed[path] = load_all(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            problems.append(Problem(_rel(path, root), None, "", f"invalid YAML: {_yaml_error(exc)}"))
    kustomize_dirs = {p.parent for p in files if p.name in KUSTOMIZATION_FILES} | {
        p.parent for p in root.rglob("Kustomization") if _kept(p, root)
    }
    roots = sorted(_kustomize_roots(kustomize_dirs, parsed))
    origins = _resource_origins(root, parsed, kustomize_dirs)
    built_by: dict[Problem, list[str]] = {}
    progress(f"Checking {len(files)} YAML files and building {len(roots)} Kustomize roots")
    for kdir in roots:
        docs, error = _kustomize_build(kdir)
        where = _rel(kdir, root)
        if error is not None:
            problems.append(Problem(where, None, "", error))
            continue
        resources_checked += len(docs)
        for index, doc in enumerate(docs):
            found = _validate_resource(doc, where, index, store)
            key = _identity(doc)
            source = origins.get(key, []) if key is not None else []
            if len(source) == 1:  # report the file the resource comes from, and the build that showed it
                source_path, source_doc = source[0]
                found = [dataclasses.replace(p, path=source_path, doc=source_doc) for p in found]
            for problem in found:
                built_by.setdefault(problem, []).append(where)
    for problem, builds in built_by.items():
        shown = (
            problem
            if problem.path in builds
            else dataclasses.replace(problem, message=f"{problem.message} [built by {', '.join(builds)}]")
        )
        problems.append(shown)
    for path, docs in sorted(parsed.items()):
        where = _rel(path, root)
        ci = _ci_kind(path, root)
        if ci is not None:
            for index, doc in enumerate(docs):
                problems += _validate_ci(doc, ci, where, index if len(docs) > 1 else None)
            continue
        if any(d == path.parent or d in path.parents for d in kustomize_dirs):
            continue  # built (and validated) through its kustomization; patches alone are partial documents
        for index, doc in enumerate(docs):
            if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                resources_checked += 1
                problems += _validate_resource(doc, where, index if len(docs) > 1 else None, store)
    return Report(sorted(problems), files=len(files), builds=len(roots), resources=resources_checked)


# --------------------------------------------------------------------------------------------------------------
# Files


def _kept(path: Path, root: Path) -> bool:
    return not any(part in SKIPPED_DIRS for part in path.relative_to(root).parts[:-1])


def _yaml_files(root: Path) -> list[Path]:
    found = [p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file() and _kept(p, root)]
    return sorted(found)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() or "."


def _yaml_error(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}: {problem}" if mark is not None else str(problem)


def _ci_kind(path: Path, root: Path) -> str | None:
    rel = path.relative_to(root).as_posix()
    if rel.startswith(".github/workflows/"):
        return "github"
    if rel == ".gitlab-ci.yml":
        return "gitlab"
    return None


# --------------------------------------------------------------------------------------------------------------
# Kustomize


def _kustomizations(dirs: set[Path], parsed: dict[Path, list[Any]]) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Each kustomization document, with the directory it is in."""
    for kdir in dirs:
        for name in KUSTOMIZATION_FILES:
            for doc in parsed.get(kdir / name, []):
                if isinstance(doc, dict):
                    yield kdir, doc


def _kustomize_roots(dirs: set[Path], parsed: dict[Path, list[Any]]) -> set[Path]:
    """The kustomization directories no other kustomization includes: the ones to build."""
    included: set[Path] = set()
    for kdir, doc in _kustomizations(dirs, parsed):
        for key in ("resources", "components", "bases"):
            for entry in doc.get(key) or []:
                target = (kdir / str(entry)).resolve()
                if target.is_dir():
                    included.add(target)
    return {d for d in dirs if d.resolve() not in included}


def _identity(doc: Any) -> tuple[str, str] | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("metadata"), dict):
        return None
    return str(doc.get("kind")), str(doc["metadata"].get("name"))


def _resource_origins(
    root: Path, parsed: dict[Path, list[Any]], kustomize_dirs: set[Path]
) -> dict[tuple[str, str], list[tuple[str, int | None]]]:
    """(kind, name) -> the files and documents that declare it, patches left out: where a built resource began."""
    patches: set[Path] = set()
    for kdir, doc in _kustomizations(kustomize_dirs, parsed):
        for entry in [*(doc.get("patches") or []), *(doc.get("patchesStrategicMerge") or [])]:
            target = entry.get("path") if isinstance(entry, dict) else entry
            if isinstance(target, str):
                patches.add((kdir / target).resolve())
    origins: dict[tuple[str, str], list[tuple[str, int | None]]] = {}
    for path, docs in parsed.items():
        if path.resolve() in patches or path.name in KUSTOMIZATION_FILES:
            continue
        for index, doc in enumerate(docs):
            key = _identity(doc)
            if key is not None and "apiVersion" in doc:
                origins.setdefault(key, []).append((_rel(path, root), index if len(docs) > 1 else None))
    return origins


def _kustomize_build(kdir: Path) -> tuple[list[Any], str | None]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return [], "cannot build: kubectl is not on PATH (install kubectl to validate Kustomize overlays)"
    done = subprocess.run([kubectl, "kustomize", str(kdir)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return [], f"kustomize build failed: {lines[-1] if lines else done.returncode}"
    return load_all(done.stdout), None


# --------------------------------------------------------------------------------------------------------------
# Resources


def _field(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate_resource(doc: Any, where: str, index: int | None, store: SchemaStore) -> list[Problem]:
    if not isinstance(doc, dict) or not isinstance(doc.get("apiVersion"), str) or not isinstance(doc.get("kind"), str):
        return [Problem(where, index, "", "not a Kubernetes resource: apiVersion and kind are required")]
    api_version, kind = doc["apiVersion"], doc["kind"]
    group, _, version = api_version.rpartition("/")
    name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc.get("metadata"), dict) else "?"
    label = f"({kind}/{name})"

    def problem(parts: Iterable[Any], message: str) -> Problem:
        return Problem(where, index, _field(parts), f"{message} {label}")

    if group == "argoproj.io" and kind in ARGO_WORKFLOW_KINDS:
        return [problem(p, m) for p, m in _argo_workflow_errors(doc)]
    if "." not in group or group.endswith(".k8s.io"):
        core = _core_errors(doc)
        if core is not None:
            return [problem(p, m) for p, m in core]
    schema, tried = store.get(group, kind, version)
    if schema is None:
        missing = problem(
            [],
            f"cannot validate: no schema for {api_version} {kind} (looked in: {'; '.join(tried)}); "
            "pass --schema-location DIR or set MLSCAFFOLD_SCHEMA_LOCATION",
        )
        return [dataclasses.replace(missing, missing_schema=True)]
    return [problem(p, m) for p, m in _jsonschema_errors(schema, doc)]


def _core_errors(doc: dict[str, Any]) -> list[tuple[list[Any], str]] | None:
    """Strict errors for a built-in kind, or None when kubernetes-validate has no schema for it."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return None
    except kubernetes_validate.ValidationError as exc:
        return [_describe_jsonschema_error(exc)[0]]
    return []


def _jsonschema_errors(schema: dict[str, Any], doc: dict[str, Any]) -> list[tuple[list[Any], str]]:
    import jsonschema

    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    errors: list[tuple[list[Any], str]] = []
    for error in validator_cls(schema).iter_errors(doc):
        errors += _describe_jsonschema_error(error)
    return errors


def _describe_jsonschema_error(error: Any) -> list[tuple[list[Any], str]]:
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set((error.schema or {}).get("properties", {}))
        extras = [k for k in error.instance if k not in known]
        if extras:
            return [([*path, key], "unknown field") for key in extras]
    return [(path, error.message)]


def _argo_workflow_errors(doc: dict[str, Any]) -> list[tuple[list[Any], str]]:
    import pydantic
    from hera.workflows import models

    model = getattr(models, doc["kind"])
    try:
        parsed = model.model_validate(doc)
    except pydantic.ValidationError as exc:
        return [(list(e["loc"]), e["msg"]) for e in exc.errors()]
    kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    errors = [(path, "unknown field") for path in _dropped(doc, kept, [])]
    spec = doc.get("spec") or {}
    workflow_spec = spec.get("workflowSpec", spec) if doc["kind"] == "CronWorkflow" else spec
    base = ["spec", "workflowSpec"] if doc["kind"] == "CronWorkflow" else ["spec"]
    errors += [([*base, *p], m) for p, m in _argo_reference_errors(workflow_spec)]
    return errors


def _dropped(original: Any, kept: Any, path: list[Any]) -> Iterator[list[Any]]:
    """Paths of the keys in ``original`` that Hera's model did not keep: unknown fields."""
    if isinstance(original, dict) and isinstance(kept, dict):
        for key, value in original.items():
            if key not in kept:
                yield [*path, key]
            else:
                yield from _dropped(value, kept[key], [*path, key])
    elif isinstance(original, list) and isinstance(kept, list):
        for i, (a, b) in enumerate(zip(original, kept, strict=False)):
            yield from _dropped(a, b, [*path, i])


def _argo_reference_errors(spec: dict[str, Any]) -> list[tuple[list[Any], str]]:
    """The entrypoint and every DAG task / step must name a template of this spec (Hera does not check it)."""
    templates = spec.get("templates") or []
    names = {t.get("name") for t in templates if isinstance(t, dict)}
    errors: list[tuple[list[Any], str]] = []
    entry = spec.get("entrypoint")
    if entry is not None and not spec.get("workflowTemplateRef") and entry not in names:
        errors.append((["entrypoint"], f"names no template of this spec: '{entry}'"))
    for i, template in enumerate(templates):
        if not isinstance(template, dict):
            continue
        refs: list[tuple[list[Any], Any]] = []
        for j, task in enumerate((template.get("dag") or {}).get("tasks") or []):
            refs.append((["templates", i, "dag", "tasks", j, "template"], task))
        for j, group in enumerate(template.get("steps") or []):
            for k, step in enumerate(group or []):
                refs.append((["templates", i, "steps", j, k, "template"], step))
        for path, step in refs:
            if isinstance(step, dict) and "template" in step and step["template"] not in names:
                errors.append((path, f"names no template of this spec: '{step['template']}'"))
    return errors


# --------------------------------------------------------------------------------------------------------------
# CI files


@functools.cache
def _ci_schema(name: str) -> dict[str, Any]:
    from importlib import resources

    data = resources.files("check_jsonschema.builtin_schemas.vendor").joinpath(name).read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(data)
    return loaded


def _validate_ci(doc: Any, ci: str, where: str, index: int | None) -> list[Problem]:
    if ci == "gitlab" and isinstance(doc, dict) and set(doc) == {"spec"}:
        return []  # the header document of a GitLab CI/CD component
    return [Problem(where, index, _field(p), m) for p, m in _jsonschema_errors(_ci_schema(CI_SCHEMAS[ci]), doc)]


# --------------------------------------------------------------------------------------------------------------
# Schema locations


class SchemaStore:
    """Custom-resource schemas from kubeconform-style locations: directories, URLs or ``{group}`` templates."""

    def __init__(self, locations: Sequence[str]) -> None:
        self.locations = list(locations)
        self._cache: dict[tuple[str, str, str], tuple[dict[str, Any] | None, list[str]]] = {}

    def get(self, group: str, kind: str, version: str) -> tuple[dict[str, Any] | None, list[str]]:
        key = (group, kind, version)
        if key not in self._cache:
            self._cache[key] = self._find(group, kind.lower(), version)
        return self._cache[key]

    def _find(self, group: str, kind: str, version: str) -> tuple[dict[str, Any] | None, list[str]]:
        tried: list[str] = []
        for location in self.locations:
            if "{" in location:
                ref = location.format(group=group, kind=kind, version=version)
            else:
                ref = f"{location.rstrip('/')}/{group}/{kind}_{version}.json"
            try:
                schema = _fetch(ref) if ref.startswith(("https://", "http://")) else _read(Path(ref))
            except _Unreachable as exc:
                tried.append(f"{location} [unreachable: {exc}]")
                continue
            if schema is not None:
                return schema, tried
            tried.append(location)
        return None, tried


def _read(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


class _Unreachable(Exception):
    """A schema location that could not be reached (as opposed to one that has no such schema)."""


def _fetch(url: str) -> dict[str, Any] | None:
    import urllib.error
    import urllib.request

    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlscaffold" / "schemas"
    import hashlib

    cached = cache / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.json"
    if cached.is_file():
        return _read(cached)
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise _Unreachable(f"HTTP {exc.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise _Unreachable(str(getattr(exc, "reason", exc))) from None
    cache.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(body)
    loaded: dict[str, Any] = json.loads(body)
    return loaded
