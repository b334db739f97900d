"""Every pod a render creates meets one policy, whoever runs it: the serving Deployment or Argo Rollout, each Argo
Workflows step (WorkflowTemplate, CronWorkflow, and the manifests of resource templates), Argo Rollouts analysis
jobs. checkov checks Deployments but skips Rollouts and Argo Workflows entirely, so this walk is their proof; a
deliberately insecure pod must fail it."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers import RENDERS as ALL_RENDERS
from helpers import Renders
from scanning import Pod, load_docs, pods_of, violations
from scanning import built_docs as _built_docs

# Every deployment strategy, both registries (a PVC-backed one), GPU and drift on and off (shared session renders).
NAMES = ["github-rolling-none-gpu", "gitlab-canary", "none-bluegreen"]
RENDERS = {name: ALL_RENDERS[name] for name in NAMES}


@pytest.fixture(scope="module")
def projects(renders: Renders) -> dict[str, Path]:
    return {name: renders(name, manifests=True) for name in NAMES}


@functools.cache
def built_docs(project: Path) -> list[tuple[str, dict[str, Any]]]:
    return _built_docs(project)  # read once per render; tests deep-copy what they change


def all_pods(project: Path) -> list[Pod]:
    return [pod for where, doc in built_docs(project) for pod in pods_of(where, doc)]


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_every_pod_of_every_resource_meets_the_policy(projects: dict[str, Path], name: str) -> None:
    pods = all_pods(projects[name])
    found = {pod.where.split(":", 1)[1].split("/", 1)[0] for pod in pods}
    expected = {"WorkflowTemplate", "Rollout" if RENDERS[name]["deployment_strategy"] != "rolling" else "Deployment"}
    if RENDERS[name].get("drift_detection") != "false":
        expected.add("CronWorkflow")
    assert expected <= found, f"the walk missed pods: found {sorted(found)}"
    assert [v for pod in pods for v in violations(pod)] == []


def test_argo_events_pods_meet_the_policy(projects: dict[str, Path]) -> None:
    pods = [
        pod
        for pod in all_pods(projects["gitlab-canary"])
        if pod.where.split(":", 1)[1].startswith(("EventSource/", "Sensor/"))
    ]
    assert len(pods) == 2, [pod.where for pod in pods]
    assert [v for pod in pods for v in violations(pod)] == []


def test_the_walk_sees_every_workflow_step(projects: dict[str, Path]) -> None:
    pods = all_pods(projects["gitlab-canary"])
    steps = {pod.where.rsplit("[", 1)[1].rstrip("]") for pod in pods if "WorkflowTemplate/" in pod.where}
    assert steps == {"validate-data", "train", "evaluate", "gate", "register", "propose"}
    drift = [pod.where for pod in pods if "CronWorkflow/" in pod.where]
    assert any(w.endswith("[drift]") for w in drift)
    assert any(w.endswith("[submit-training].resource") for w in drift)


def test_no_secret_is_written_to_git(projects: dict[str, Path]) -> None:
    """Secrets are referenced (an optional ExternalSecret), never written: no Secret resource in any file."""
    for project in projects.values():
        for path in sorted(project.rglob("*.y*ml")):
            kinds = {doc.get("kind") for doc in load_docs(path)}
            assert "Secret" not in kinds, path
        component = project / "deploy" / "k8s" / "components" / "external-secrets" / "externalsecret.yaml"
        (doc,) = load_docs(component)
        assert doc["apiVersion"] == "external-secrets.io/v1"
        assert doc["kind"] == "ExternalSecret"


# --------------------------------------------------------------------------------------------------------------
# The policy catches an insecure pod


def _first(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "workflow-step":
        return doc["spec"]["templates"][1]
    return doc["spec"]["template"]["spec"]


def _container(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    pod = _first(doc, kind)
    return pod["container"] if kind == "workflow-step" else pod["containers"][0]


MUTATIONS: dict[str, tuple[Callable[[dict[str, Any], str], None], str]] = {
    "privileged": (lambda d, k: _container(d, k)["securityContext"].update(privileged=True), "privileged"),
    "escalation": (
        lambda d, k: _container(d, k)["securityContext"].update(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation",
    ),
    "root": (lambda d, k: _container(d, k)["securityContext"].update(runAsUser=0), "user 0"),
    "writable-root": (
        lambda d, k: _container(d, k)["securityContext"].pop("readOnlyRootFilesystem"),
        "readOnlyRootFilesystem",
    ),
    "capabilities": (
        lambda d, k: _container(d, k)["securityContext"].update(capabilities={"add": ["NET_ADMIN"]}),
        "capabilities",
    ),
    "no-seccomp": (lambda d, k: _first(d, k)["securityContext"].pop("seccompProfile"), "seccompProfile"),
    "no-limits": (lambda d, k: _container(d, k)["resources"].pop("limits"), "limit"),
    "latest": (lambda d, k: _container(d, k).update(image="python:latest"), "pinned tag"),
    "host-network": (lambda d, k: _first(d, k).update(hostNetwork=True), "hostNetwork"),
}


@pytest.mark.parametrize("kind", ["Deployment", "Rollout", "workflow-step"])
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_an_insecure_pod_is_caught(projects: dict[str, Path], kind: str, mutation: str) -> None:
    project = projects["github-rolling-none-gpu" if kind == "Deployment" else "gitlab-canary"]
    wanted = "WorkflowTemplate" if kind == "workflow-step" else kind
    (doc,) = [doc for _, doc in built_docs(project) if doc.get("kind") == wanted][:1]
    bad = copy.deepcopy(doc)
    change, expected = MUTATIONS[mutation]
    change(bad, kind)
    assert [v for pod in pods_of("test", doc) for v in violations(pod)] == []
    found = [v for pod in pods_of("test", bad) for v in violations(pod)]
    assert any(expected in v for v in found), found


def test_a_server_without_probes_is_caught(projects: dict[str, Path]) -> None:
    (doc,) = [doc for _, doc in built_docs(projects["github-rolling-none-gpu"]) if doc.get("kind") == "Deployment"][:1]
    bad = copy.deepcopy(doc)
    del bad["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert any("readinessProbe" in v for pod in pods_of("test", bad) for v in violations(pod))
