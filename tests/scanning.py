"""Helpers of the scanner and pod-policy tests: the scanners' paths, renders built with `make manifests`, and a
walk over every pod spec a rendered resource carries (Deployments, Argo Rollouts, Argo Workflows templates,
Argo Rollouts analysis jobs), whether or not a scanner looks inside it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import REPO, build_manifests, kubectl

__all__ = ["build_manifests", "kubectl"]
TOOLS_DIR = REPO / ".ci-tools"

# Each scanner: the environment variable .ci/run sets (from .ci/install-scanners), and where that script puts it.
TOOLS = {
    "checkov": ("MLSCAFFOLD_CHECKOV", TOOLS_DIR / "checkov" / "bin" / "checkov"),
    "hadolint": ("MLSCAFFOLD_HADOLINT", TOOLS_DIR / "scan" / "bin" / "hadolint"),
    "zizmor": ("MLSCAFFOLD_ZIZMOR", TOOLS_DIR / "scan" / "bin" / "zizmor"),
    "actionlint": ("MLSCAFFOLD_ACTIONLINT", TOOLS_DIR / "scan" / "bin" / "actionlint"),
    "shellcheck": ("MLSCAFFOLD_SHELLCHECK", TOOLS_DIR / "scan" / "bin" / "shellcheck"),
}


def tool(name: str) -> str:
    """The path of a scanner. Missing: a failure in CI (CI set), a skip with the reason on a laptop."""
    var, default = TOOLS[name]
    path = os.environ.get(var) or (str(default) if default.is_file() else shutil.which(name))
    if path and Path(path).is_file():
        return path
    message = f"{name} not found (${var} or {default}): run .ci/install-scanners"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]


def built_docs(project: Path) -> list[tuple[str, dict[str, Any]]]:
    """Every resource of every built folder, and of the deploy/ files no kustomization builds (Argo CD)."""
    out = []
    for path in sorted((project / "build" / "manifests").glob("*.yaml")):
        out += [(path.name, doc) for doc in load_docs(path)]
    for path in sorted((project / "deploy" / "argocd").rglob("*.yaml")):
        out += [(str(path.relative_to(project)), doc) for doc in load_docs(path)]
    return out


# --------------------------------------------------------------------------------------------------------------
# Pod specs, wherever a resource keeps them


@dataclass
class Pod:
    """One pod a resource creates: its pod-level fields and its containers (with the volumes they can mount)."""

    where: str
    serving: bool  # a long-running server: it must have probes
    security_context: dict[str, Any]
    containers: list[dict[str, Any]]
    volumes: list[dict[str, Any]] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)
    managed: bool = False  # a controller picks its image and file system (Argo Events): settings only


def _pod_from_spec(where: str, spec: dict[str, Any], serving: bool) -> Pod:
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    return Pod(where, serving, spec.get("securityContext") or {}, containers, spec.get("volumes") or [], spec)


def _workflow_pods(where: str, wf_spec: dict[str, Any]) -> Iterator[Pod]:
    """Argo Workflows: each container/script/containerSet template is a pod; workflow-level volumes and security
    context apply to every pod; a resource template's manifest may carry pods of its own."""
    wf_context = wf_spec.get("securityContext") or {}
    wf_volumes = wf_spec.get("volumes") or []
    for template in wf_spec.get("templates") or []:
        name = f"{where}.templates[{template.get('name')}]"
        context = {**wf_context, **(template.get("securityContext") or {})}
        volumes = [*wf_volumes, *(template.get("volumes") or [])]
        containers: list[dict[str, Any]] = []
        for key in ("container", "script"):
            if isinstance(template.get(key), dict):
                containers.append(template[key])
        if isinstance(template.get("containerSet"), dict):
            containers += template["containerSet"].get("containers") or []
        containers += [*(template.get("initContainers") or []), *(template.get("sidecars") or [])]
        spec = {
            key: template.get(key, wf_spec.get(key))
            for key in ("automountServiceAccountToken", "hostNetwork", "podSpecPatch")
        }
        if containers:
            yield Pod(name, False, context, containers, volumes, spec)
        elif isinstance(template.get("resource"), dict):
            # The executor pod of a resource template: Argo's own image; its pod-level context is still ours.
            yield Pod(name + ".resource", False, context, [], volumes, spec)
            manifest = template["resource"].get("manifest")
            if isinstance(manifest, str):
                for doc in yaml.safe_load_all(manifest):
                    if isinstance(doc, dict):
                        yield from pods_of(f"{name}.resource.manifest", doc)


def pods_of(where: str, doc: dict[str, Any]) -> Iterator[Pod]:
    kind = doc.get("kind")
    meta = doc.get("metadata") or {}
    name = f"{where}:{kind}/{meta.get('name') or meta.get('generateName')}"
    spec = doc.get("spec") or {}
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Rollout"):
        template_spec = (spec.get("template") or {}).get("spec")
        if template_spec:
            yield _pod_from_spec(name, template_spec, serving=kind in ("Deployment", "StatefulSet", "Rollout"))
    elif kind == "CronJob":
        yield _pod_from_spec(name, spec["jobTemplate"]["spec"]["template"]["spec"], serving=False)
    elif kind == "Pod":
        yield _pod_from_spec(name, spec, serving=False)
    elif kind in ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate"):
        yield from _workflow_pods(name, spec)
    elif kind == "CronWorkflow":
        yield from _workflow_pods(name, spec.get("workflowSpec") or {})
    elif kind in ("EventSource", "Sensor"):
        # Argo Events runs each as a Deployment whose pod it builds from spec.template (one container).
        template = spec.get("template") or {}
        container = {"name": kind.lower(), **(template.get("container") or {})}
        yield Pod(
            name,
            False,
            template.get("securityContext") or {},
            [container],
            template.get("volumes") or [],
            template,
            managed=True,
        )
        for trigger in spec.get("triggers") or []:
            source = ((trigger.get("template") or {}).get("k8s") or {}).get("source") or {}
            if isinstance(source.get("resource"), dict):
                yield from pods_of(f"{name}.triggers", source["resource"])
    elif kind in ("AnalysisTemplate", "ClusterAnalysisTemplate"):
        for metric in spec.get("metrics") or []:
            job = ((metric.get("provider") or {}).get("job") or {}).get("spec")
            if job:
                yield _pod_from_spec(f"{name}.metrics[{metric.get('name')}]", job["template"]["spec"], serving=False)


def _merge(base: Any, patch: Any) -> Any:
    """A strategic merge as Argo applies a podSpecPatch: maps merge, containers merge by name, other lists and
    values are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                merged = {c.get("name"): c for c in out.get(key) or []}
                for container in value:
                    merged[container.get("name")] = _merge(merged.get(container.get("name"), {}), container)
                out[key] = list(merged.values())
            else:
                out[key] = _merge(out.get(key), value)
        return out
    return patch


def workflow_pod_manifests(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The Pod Argo Workflows creates for each container or script template of a WorkflowTemplate, CronWorkflow
    or Workflow, as scanners read pods: the template's labels and annotations (with the workflow's pod metadata),
    the workflow object's annotations (its scanner skips), the service account, the template's or else the
    workflow's pod security context, volumes and scheduling, the main container (named `main`, as Argo names it)
    with the template's init and sidecar containers, then the workflow's and the template's podSpecPatch. Argo's
    own init and wait containers (the controller's executor settings) are not the project's and are left out."""
    kind = doc.get("kind")
    wf_spec = (doc.get("spec") or {}).get("workflowSpec") if kind == "CronWorkflow" else doc.get("spec")
    meta = doc.get("metadata") or {}
    wf_spec = wf_spec or {}
    pod_meta = wf_spec.get("podMetadata") or {}
    pods = []
    for template in wf_spec.get("templates") or []:
        main = template.get("container") or template.get("script")
        if not isinstance(main, dict):
            continue
        main = {key: value for key, value in main.items() if key != "source"}
        tmeta = template.get("metadata") or {}
        spec: dict[str, Any] = {"containers": [{**main, "name": "main"}, *(template.get("sidecars") or [])]}
        if template.get("initContainers"):
            spec["initContainers"] = template["initContainers"]
        for key in (
            "serviceAccountName",
            "automountServiceAccountToken",
            "securityContext",
            "nodeSelector",
            "tolerations",
            "affinity",
            "hostNetwork",
            "priorityClassName",
        ):
            value = template.get(key, wf_spec.get(key))
            if value is not None:
                spec[key] = value
        volumes = [*(wf_spec.get("volumes") or []), *(template.get("volumes") or [])]
        if volumes:
            spec["volumes"] = volumes
        for patch in (wf_spec.get("podSpecPatch"), template.get("podSpecPatch")):
            if patch:
                spec = _merge(spec, yaml.safe_load(patch))
        name = f"{meta.get('name') or meta.get('generateName')}-{template.get('name')}"
        pod_metadata: dict[str, Any] = {
            "name": name,
            "labels": {**(pod_meta.get("labels") or {}), **(tmeta.get("labels") or {})},
            "annotations": {
                **(meta.get("annotations") or {}),
                **(pod_meta.get("annotations") or {}),
                **(tmeta.get("annotations") or {}),
            },
        }
        if meta.get("namespace"):
            pod_metadata["namespace"] = meta["namespace"]
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": pod_metadata, "spec": spec})
    return pods


# --------------------------------------------------------------------------------------------------------------
# The pod policy (what checkov's Kubernetes checks ask of a Deployment, for every pod)


def _has_tag(image: str) -> bool:
    last = image.rsplit("/", 1)[-1]
    return "@sha256:" in image or (":" in last and not last.endswith(":latest"))


def violations(pod: Pod) -> list[str]:
    out: list[str] = []

    def bad(message: str) -> None:
        out.append(f"{pod.where}: {message}")

    ctx = pod.security_context
    spec = pod.spec
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            bad(f"{key} is set")
    if spec.get("podSpecPatch"):
        bad("an Argo podSpecPatch (the policy cannot see through it)")
    if pod.serving and spec.get("automountServiceAccountToken") is not False:
        bad("a server pod mounts a service account token (automountServiceAccountToken: false)")
    if not pod.containers and not ctx:
        bad("no pod securityContext")
    mountable = {v.get("name"): v for v in pod.volumes}
    for volume in pod.volumes:
        if "hostPath" in volume:
            bad(f"volume {volume.get('name')} is a hostPath")
    if ctx.get("runAsUser") == 0:
        bad("pod runs as user 0")
    for container in pod.containers:
        cname = f"container {container.get('name') or '(main)'}"
        sc = container.get("securityContext") or {}

        def setting(key: str, sc: dict[str, Any] = sc) -> Any:
            return sc.get(key, ctx.get(key))

        if setting("runAsNonRoot") is not True:
            bad(f"{cname}: runAsNonRoot is not true")
        if setting("runAsUser") == 0:
            bad(f"{cname}: runs as user 0")
        if (setting("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            bad(f"{cname}: seccompProfile is not RuntimeDefault")
        if sc.get("privileged"):
            bad(f"{cname}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            bad(f"{cname}: allowPrivilegeEscalation is not false")
        if sc.get("readOnlyRootFilesystem") is not True:
            bad(f"{cname}: readOnlyRootFilesystem is not true")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            bad(f"{cname}: capabilities do not drop ALL")
        if caps.get("add"):
            bad(f"{cname}: adds capabilities {caps['add']}")
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in (resources.get(kind) or {}):
                    bad(f"{cname}: no {res} {kind[:-1]}")
        if pod.managed:
            continue
        image = str(container.get("image") or "")
        if not _has_tag(image):
            bad(f"{cname}: image {image!r} has no pinned tag")
        # Pulled on every start (a re-pushed tag or a node's stale copy never runs), as checkov asks (CKV_K8S_15).
        if container.get("imagePullPolicy") != "Always" and "@sha256:" not in image:
            bad(f"{cname}: imagePullPolicy is not Always")
        # A read-only root filesystem: the writable temp directory is a mounted emptyDir.
        mounts = {m.get("mountPath"): m.get("name") for m in container.get("volumeMounts") or []}
        if "emptyDir" not in mountable.get(mounts.get("/tmp"), {}):
            bad(f"{cname}: /tmp is not a mounted emptyDir")
        if pod.serving:
            for probe in ("livenessProbe", "readinessProbe"):
                if not container.get(probe):
                    bad(f"{cname}: no {probe}")
    return out
