"""Run an Argo Workflows DAG here, in podman, exactly as its manifest declares: the smallest stand-in for an Argo
controller (no Kubernetes API server can run on this machine).

For every task, in dependency order: the template's container (image, command, args, env with the workflow's
parameters resolved), its volume mounts as fresh directories (``emptyDir``: one per pod; a PersistentVolumeClaim:
one per claim, shared by the run), the pod and container ``securityContext`` (user, group, read-only root
filesystem, no capabilities), input artifacts copied from the producing task's outputs or fetched by key from the
artifact repository (a local folder stands in for the bucket; an optional artifact whose key holds nothing
arrives as an empty folder, as Argo's executor leaves it: argoproj/argo-workflows#5934, #15094), output artifacts
with a key written back there (unarchived), artifact paths with the workflow's parameters resolved, and
``depends``/``when`` evaluated on the tasks' phases and exit codes. Resource templates (``resource: create``) are
not run: they are returned as the manifests they would create. Anything this stand-in does not understand is an
error, never skipped.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PODMAN = ["podman", "--runtime", "/usr/sbin/runc"]
_EXPR = re.compile(r"\{\{\s*([^}]+?)\s*\}\}")


class Unsupported(AssertionError):
    """The manifest uses something this stand-in cannot run: the test fails and says what."""


@dataclass
class TaskResult:
    name: str
    phase: str  # Succeeded, Failed, Skipped, Omitted
    exit_code: int | None = None
    log: str = ""
    outputs: dict[str, Path] = field(default_factory=dict)
    created: list[dict[str, Any]] = field(default_factory=list)
    #: Another task depends on this one failing, so its failure does not fail the run (Argo's rule).
    handled: bool = False


@dataclass
class Run:
    """One workflow run: the resolved parameters and each task's result."""

    parameters: dict[str, str]
    tasks: dict[str, TaskResult] = field(default_factory=dict)

    @property
    def phase(self) -> str:
        """Argo's rule: the run fails when a task failed that nothing handled (no ``depends`` on its failure)."""
        return "Failed" if any(t.phase == "Failed" and not t.handled for t in self.tasks.values()) else "Succeeded"


def run_workflow(
    spec: Mapping[str, Any],
    workdir: Path,
    *,
    parameters: Mapping[str, str] | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    network: str = "host",
    timeout: float = 900,
    skip: Sequence[str] = (),
    repository: Path | None = None,
) -> Run:
    """Run the entrypoint DAG of a WorkflowTemplate's (or a CronWorkflow's ``workflowSpec``) ``spec``.

    ``skip`` names tasks the caller runs otherwise (they are recorded as ``Skipped``, their dependants still run).
    """
    params = {p["name"]: str(p.get("value", "")) for p in spec.get("arguments", {}).get("parameters", [])}
    unknown = set(parameters or {}) - set(params)
    if unknown:
        raise Unsupported(f"parameters the workflow does not declare: {sorted(unknown)}")
    params.update(parameters or {})
    run = Run(params)
    templates = {t["name"]: t for t in spec["templates"]}
    entry = templates[spec["entrypoint"]]
    if "dag" not in entry:
        raise Unsupported(f"entrypoint {entry['name']} is not a DAG")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims: dict[str, Path] = {}
    tasks = entry["dag"]["tasks"]
    for task in _ordered(tasks):
        depends = task.get("depends") or " && ".join(task.get("dependencies", []))
        if depends and not _depends(depends, run.tasks):
            run.tasks[task["name"]] = _result(task["name"], "Omitted")
            continue
        if task["name"] in skip or ("when" in task and not _when(_resolve(task["when"], run, {}), run)):
            run.tasks[task["name"]] = _result(task["name"], "Skipped")
            continue
        template = templates[task["template"]]
        inputs = {
            p["name"]: _resolve(str(p.get("value", "")), run, {})
            for p in task.get("arguments", {}).get("parameters", [])
        }
        artifacts = {
            a["name"]: _artifact_source(a["from"], run) for a in task.get("arguments", {}).get("artifacts", [])
        }
        pod_dir = workdir / f"{task['name']}-{uuid.uuid4().hex[:6]}"
        pod_dir.mkdir(parents=True)
        result = _run_template(
            task["name"], template, run, inputs, artifacts, volumes, claims, workdir, pod_dir,
            secrets or {}, network, timeout, repository,
        )  # fmt: skip
        run.tasks[task["name"]] = result
    for result in run.tasks.values():
        result.handled = any(
            f"{result.name}.Failed" in (t.get("depends") or "") or f"{result.name}.Errored" in (t.get("depends") or "")
            for t in tasks
        )
    return run


def _result(name: str, phase: str) -> TaskResult:
    return TaskResult(name, phase)


def _ordered(tasks: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    names = {t["name"] for t in tasks}
    done: list[Mapping[str, Any]] = []
    pending = list(tasks)
    while pending:
        ready = [t for t in pending if all(d in {x["name"] for x in done} for d in _deps(t) if d in names)]
        if not ready:
            raise Unsupported(f"a dependency cycle among {[t['name'] for t in pending]}")
        done += ready
        pending = [t for t in pending if t not in ready]
    return done


def _deps(task: Mapping[str, Any]) -> set[str]:
    text = str(task.get("depends") or "")
    return {
        m.split(".")[0] for m in re.findall(r"[A-Za-z0-9_-]+(?:\.[A-Za-z]+)?", text) if m not in ("&&", "||")
    } | set(task.get("dependencies", []))


def _depends(expression: str, tasks: Mapping[str, TaskResult]) -> bool:
    """Argo's ``depends``: ``a``, ``a.Succeeded``, ``a.Failed``, ``a.Skipped`` joined by ``&&``/``||``, ``!``."""

    def atom(match: re.Match[str]) -> str:
        name, _, state = match.group(0).partition(".")
        task = tasks[name]
        if not state:  # a bare name: Succeeded, Skipped or Daemoned (an Omitted task omits its dependents too)
            return str(task.phase in ("Succeeded", "Skipped", "Daemoned"))
        if state == "Errored":
            return "False"
        return str(task.phase == state)

    python = re.sub(
        r"[A-Za-z][A-Za-z0-9_-]*(?:\.(?:Succeeded|Failed|Skipped|Omitted|Errored|Daemoned))?", atom, expression
    )
    python = python.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    return bool(eval(python, {"__builtins__": {}}, {"True": True, "False": False}))


def _when(expression: str, run: Run) -> bool:
    """Argo's ``when`` after substitution: ``A == B``, ``A != B`` (numbers or strings), ``true``/``false``."""
    match = re.fullmatch(r"\s*(\S+)\s*(==|!=)\s*(\S+)\s*", expression)
    if not match:
        if expression.strip() in ("true", "false"):
            return expression.strip() == "true"
        raise Unsupported(f"when: {expression!r}")
    left, op, right = match.groups()
    return (left == right) if op == "==" else (left != right)


def _resolve(text: str, run: Run, inputs: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref.startswith("workflow.parameters."):
            return run.parameters[ref.removeprefix("workflow.parameters.")]
        if ref.startswith("inputs.parameters."):
            return inputs[ref.removeprefix("inputs.parameters.")]
        if ref == "workflow.name":
            return "local-run"
        task = re.fullmatch(r"tasks\.([\w-]+)\.(exitCode|status)", ref)
        if task:
            result = run.tasks[task.group(1)]
            return str(result.exit_code) if task.group(2) == "exitCode" else result.phase
        raise Unsupported(f"expression {{{{{ref}}}}}")

    return _EXPR.sub(value, text)


def _artifact_source(expression: str, run: Run) -> Path:
    match = re.fullmatch(r"\{\{tasks\.([\w-]+)\.outputs\.artifacts\.([\w-]+)\}\}", expression.strip())
    if not match:
        raise Unsupported(f"artifact from {expression!r}")
    return run.tasks[match.group(1)].outputs[match.group(2)]


def _run_template(
    name: str,
    template: Mapping[str, Any],
    run: Run,
    inputs: Mapping[str, str],
    artifacts: Mapping[str, Path],
    volumes: Mapping[str, Mapping[str, Any]],
    claims: dict[str, Path],
    workdir: Path,
    pod_dir: Path,
    secrets: Mapping[str, Mapping[str, str]],
    network: str,
    timeout: float,
    repository: Path | None,
) -> TaskResult:
    declared = {p["name"]: str(p.get("value", "")) for p in template.get("inputs", {}).get("parameters", [])}
    params = {**declared, **inputs}
    if "resource" in template:
        manifest = yaml.safe_load(_resolve(template["resource"]["manifest"], run, params))
        result = _result(name, "Succeeded")
        result.created.append(manifest)
        return result
    if "container" not in template:
        raise Unsupported(f"template {template['name']}: only container and resource templates run here")
    container = template["container"]
    cmd = [*PODMAN, "run", "--name", f"argo-{pod_dir.name}", f"--network={network}", "--pull=never"]
    pod_security = template.get("securityContext", {})
    security = {**pod_security, **container.get("securityContext", {})}
    if "runAsUser" in security:
        cmd += ["--user", f"{security['runAsUser']}:{security.get('runAsGroup', security['runAsUser'])}"]
    if security.get("readOnlyRootFilesystem"):
        cmd.append("--read-only")
    if security.get("allowPrivilegeEscalation") is False:
        cmd += ["--security-opt", "no-new-privileges"]
    for capability in security.get("capabilities", {}).get("drop", []):
        cmd += ["--cap-drop", capability]
    for env in container.get("env", []):
        cmd += ["--env", f"{env['name']}={_env_value(env, run, params, secrets)}"]
    mounts: dict[str, Path] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"])
        if volume is None:
            raise Unsupported(f"volume {mount['name']} is not declared")
        if "emptyDir" in volume:
            host = pod_dir / "volumes" / mount["name"]
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            host = claims.setdefault(claim, workdir / "claims" / claim)
        else:
            raise Unsupported(f"volume {mount['name']}: only emptyDir and persistentVolumeClaim run here")
        host.mkdir(parents=True, exist_ok=True)
        host.chmod(0o777)
        mounts[mount["mountPath"]] = host
    for artifact in template.get("inputs", {}).get("artifacts", []):
        source = artifacts.get(artifact["name"]) or _from_repository(artifact, run, params, repository)
        if source is None and not artifact.get("optional"):
            raise Unsupported(f"input artifact {artifact['name']} of {name} has no source")
        host = pod_dir / "inputs" / artifact["name"]
        if source is None:
            host.mkdir(parents=True)
        elif source.is_dir():
            shutil.copytree(source, host)
        else:
            host.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, host)
        _open_up(host)
        mounts[_resolve(artifact["path"], run, params)] = host
    for path, host in sorted(mounts.items()):
        cmd += ["--volume", f"{host}:{path}:rw"]
    image = _resolve(container["image"], run, params)
    command = [_resolve(c, run, params) for c in container.get("command", [])]
    args = [_resolve(a, run, params) for a in container.get("args", [])]
    if command:
        cmd += ["--entrypoint", command[0]]
    cmd += [image, *command[1:], *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    result = _result(name, "Succeeded" if done.returncode == 0 else "Failed")
    result.exit_code, result.log = done.returncode, done.stdout + done.stderr
    for artifact in template.get("outputs", {}).get("artifacts", []):
        target = pod_dir / "outputs" / artifact["name"]
        found = _saved(_resolve(artifact["path"], run, params), mounts, target, f"argo-{pod_dir.name}")
        if found:
            result.outputs[artifact["name"]] = target
            _to_repository(artifact, target, run, params, repository)
        elif not artifact.get("optional") and result.phase == "Succeeded":
            result.phase = "Failed"
            result.log += f"\noutput artifact {artifact['name']} ({artifact['path']}) is missing"
    subprocess.run([*PODMAN, "rm", "-f", f"argo-{pod_dir.name}"], capture_output=True, check=False)
    return result


def _from_repository(
    artifact: Mapping[str, Any], run: Run, params: Mapping[str, str], repository: Path | None
) -> Path | None:
    """A key-only artifact (``s3: {key: ...}``) from the repository stand-in; None when nothing is under the key."""
    located = [artifact[kind] for kind in ("s3", "gcs", "azure", "oss") if kind in artifact]
    if not located:
        return None
    if repository is None:
        raise Unsupported(f"artifact {artifact['name']} is read from an artifact repository: pass repository=")
    key = _resolve(str(located[0]["key"]), run, params).strip("/")
    path = repository / key
    return path if path.exists() else None


def _to_repository(
    artifact: Mapping[str, Any], saved: Path, run: Run, params: Mapping[str, str], repository: Path | None
) -> None:
    """An output artifact with a key (``s3: {key: ...}``) is also written there, as the file itself: only with
    ``archive: {none: {}}`` (Argo's default stores a tar.gz, which this stand-in does not make)."""
    located = [artifact[kind] for kind in ("s3", "gcs", "azure", "oss") if kind in artifact]
    if not located:
        return
    if repository is None:
        raise Unsupported(f"artifact {artifact['name']} is written to an artifact repository: pass repository=")
    if artifact.get("archive") != {"none": {}}:
        raise Unsupported(f"output artifact {artifact['name']}: only archive none is stored by key here")
    key = _resolve(str(located[0]["key"]), run, params).strip("/")
    destination = repository / key
    destination.parent.mkdir(parents=True, exist_ok=True)
    if saved.is_dir():
        shutil.copytree(saved, destination, dirs_exist_ok=True)
    else:
        shutil.copy2(saved, destination)


def _saved(path: str, mounts: Mapping[str, Path], target: Path, container: str) -> bool:
    """Save an output artifact: from the volume that holds ``path``, else from the container's own filesystem."""
    target.parent.mkdir(parents=True, exist_ok=True)
    holders = [m for m in mounts if path == m or path.startswith(m.rstrip("/") + "/")]
    if holders:
        mount = max(holders, key=len)
        source = mounts[mount] / path[len(mount) :].lstrip("/")
        if source.is_dir():
            shutil.copytree(source, target)
        elif source.is_file():
            shutil.copy2(source, target)
        return source.exists()
    copied = subprocess.run([*PODMAN, "cp", f"{container}:{path}", str(target)], capture_output=True, check=False)
    return copied.returncode == 0 and target.exists()


def _env_value(
    env: Mapping[str, Any], run: Run, params: Mapping[str, str], secrets: Mapping[str, Mapping[str, str]]
) -> str:
    if "value" in env:
        return _resolve(str(env["value"]), run, params)
    ref = env.get("valueFrom", {}).get("secretKeyRef")
    if ref is None:
        raise Unsupported(f"env {env['name']}: only value and secretKeyRef run here")
    secret = secrets.get(ref["name"], {})
    if ref["key"] not in secret:
        if ref.get("optional"):
            return ""
        raise Unsupported(f"env {env['name']}: the test gives no Secret {ref['name']} key {ref['key']}")
    return secret[ref["key"]]


def _open_up(path: Path) -> None:
    """Artifacts arrive writable by the step's user (Argo unpacks them into an emptyDir the pod owns)."""
    for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
        item.chmod(0o777 if item.is_dir() else 0o666)
