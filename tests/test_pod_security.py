"""Every pod a render creates meets one policy, whoever runs it: the serving Deployment or Argo Rollout, each Argo
Workflows step (WorkflowTemplate, CronWorkflow, and the manifests of resource templates), Argo Rollouts analysis
jobs. checkov checks Deployments but skips Rollouts and Argo Workflows entirely, so this walk is their proof; a
deliberately insecure pod must fail it."""

from __future__ import annotations

import copy
import functools
import ipaddress
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers import RENDERS as ALL_RENDERS
from helpers import Renders
from scanning import Pod, load_docs, pods_of, violations, workflow_pod_manifests
from scanning import built_docs as _built_docs

pytestmark = pytest.mark.xdist_group(__name__)  # one worker builds this module's module-scoped fixtures once

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
    assert steps == {"validate-data", "train", "evaluate", "gate", "register", "propose", "predict-batch"}
    batch = [pod.where for pod in pods if "WorkflowTemplate/fraud-detector-batch-scoring" in pod.where]
    assert len(batch) == 1 and batch[0].endswith("[predict-batch]"), batch
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
    "no-pull-policy": (lambda d, k: _container(d, k).pop("imagePullPolicy"), "imagePullPolicy"),
    "host-network": (lambda d, k: _first(d, k).update(hostNetwork=True), "hostNetwork"),
}


@pytest.mark.parametrize("kind", ["Deployment", "Rollout", "workflow-step", "batch-step"])
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_an_insecure_pod_is_caught(projects: dict[str, Path], kind: str, mutation: str) -> None:
    project = projects["github-rolling-none-gpu" if kind == "Deployment" else "gitlab-canary"]
    wanted = "WorkflowTemplate" if kind.endswith("-step") else kind
    name = {"workflow-step": "fraud-detector-training", "batch-step": "fraud-detector-batch-scoring"}.get(kind)
    (doc,) = [
        doc for _, doc in built_docs(project) if doc.get("kind") == wanted and name in (None, doc["metadata"]["name"])
    ][:1]
    kind = "workflow-step" if kind.endswith("-step") else kind
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


# --------------------------------------------------------------------------------------------------------------
# The pipelines' NetworkPolicies: what a workflow step may reach, evaluated as Kubernetes does (a pod selected by
# no policy of a type is open for it; a selected one allows only what some rule of a selecting policy allows)


@dataclass(frozen=True)
class Peer:
    """An end of a connection: a pod (namespace and labels), or an address outside the cluster's pods
    (namespace None: the API servers, S3, a Git host)."""

    namespace: str | None
    labels: tuple[tuple[str, str], ...] = ()
    ip: str = "203.0.113.10"


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, values = expr["key"], expr.get("values") or []
        ok = {
            "In": labels.get(key) in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[expr["operator"]]
        if not ok:
            return False
    return True


def _peer_matches(rule_peer: dict[str, Any], policy_namespace: str, peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"]
        address = ipaddress.ip_address(peer.ip)
        return (
            peer.namespace is None
            and address in ipaddress.ip_network(block["cidr"])
            and not any(address in ipaddress.ip_network(e) for e in block.get("except") or [])
        )
    if peer.namespace is None:
        return False
    if "namespaceSelector" in rule_peer:
        in_namespace = _selects(rule_peer["namespaceSelector"], {"kubernetes.io/metadata.name": peer.namespace})
    else:
        in_namespace = peer.namespace == policy_namespace
    return in_namespace and _selects(rule_peer.get("podSelector"), dict(peer.labels))


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        low = entry.get("port")
        if low is None or low == port or (isinstance(low, int) and low <= port <= entry.get("endPort", low)):
            return True
    return False


def allowed(
    policies: list[dict[str, Any]], direction: str, pod: Peer, other: Peer, port: int, protocol: str = "TCP"
) -> bool:
    """Whether the policies let `pod` connect to `other` (Egress) or `other` connect to `pod` (Ingress)."""
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == pod.namespace
        and _selects(p["spec"]["podSelector"], dict(pod.labels))
        and direction in p["spec"].get("policyTypes", ["Ingress"])
    ]
    if not selecting:
        return True
    key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    return any(
        _port_matches(rule.get("ports"), port, protocol)
        and (not rule.get(peers) or any(_peer_matches(p, policy["metadata"]["namespace"], other) for p in rule[peers]))
        for policy in selecting
        for rule in policy["spec"].get(key) or []
    )


def _host_port(url: str) -> tuple[str, int]:
    parsed = urllib.parse.urlsplit(url)
    assert parsed.hostname and parsed.port, url
    return parsed.hostname, parsed.port


def _parameter(doc: dict[str, Any], name: str) -> str:
    spec = doc["spec"].get("workflowSpec") or doc["spec"]
    (value,) = [p["value"] for p in spec["arguments"]["parameters"] if p["name"] == name]
    return str(value)


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_workflow_steps_reach_only_what_they_need(projects: dict[str, Path], name: str) -> None:
    answers = RENDERS[name]
    docs = [doc for where, doc in built_docs(projects[name]) if where == "argo-workflows.yaml"]
    policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]
    templates = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "WorkflowTemplate"}
    assert set(templates) == {"fraud-detector-training", "fraud-detector-batch-scoring"}
    training = templates["fraud-detector-training"]
    crons = [doc for doc in docs if doc["kind"] == "CronWorkflow" and doc["spec"]["workflowSpec"].get("templates")]
    pods = [pod for doc in docs for pod in workflow_pod_manifests(doc)]
    assert len(pods) >= 7
    # Batch scoring reads its model from the same registry as training: both reach it.
    if answers.get("model_registry") != "none":
        assert _parameter(templates["fraud-detector-batch-scoring"], "mlflow-tracking-uri") == _parameter(
            training, "mlflow-tracking-uri"
        )
    dns = Peer("kube-system", (("k8s-app", "kube-dns"),))
    outside = Peer(None)  # the API servers, S3 or GCS, the Git host
    minio = Peer("minio", (("app", "minio"),))
    needs: list[tuple[Peer, int, str]] = [(dns, 53, "UDP"), (dns, 53, "TCP"), (outside, 443, "TCP")]
    needs += [(outside, 6443, "TCP"), (minio, 9000, "TCP")]
    denied: list[tuple[Peer, int, str]] = [(outside, 80, "TCP"), (outside, 22, "TCP"), (dns, 8080, "TCP")]
    mlflow_host, mlflow_port = "mlflow.mlflow.svc.cluster.local", 5000
    if answers.get("model_registry") != "none":
        mlflow_host, mlflow_port = _host_port(_parameter(training, "mlflow-tracking-uri"))
    mlflow = Peer(mlflow_host.split(".")[1], (("app", "mlflow"),))
    (needs if answers.get("model_registry") != "none" else denied).append((mlflow, mlflow_port, "TCP"))
    denied.append((mlflow, 22, "TCP"))
    push_host, push_port = "prometheus-pushgateway.monitoring.svc", 9091
    if crons:
        push_host, push_port = _host_port(_parameter(crons[0], "pushgateway-url"))
    pushgateway = Peer(push_host.split(".")[1], (("app.kubernetes.io/name", "prometheus-pushgateway"),))
    (needs if crons else denied).append((pushgateway, push_port, "TCP"))
    denied.append((Peer(push_host.split(".")[1], (("app", "prometheus"),)), 9090, "TCP"))
    assert bool(crons) == (answers.get("drift_detection") != "false")
    for pod in pods:
        namespace = pod["metadata"]["namespace"]
        step = Peer(namespace, tuple(sorted(pod["metadata"]["labels"].items())))
        project = namespace.removesuffix("-pipelines")
        servers = [Peer(f"{project}-{env}", (("app", "server"),)) for env in ("dev", "prod")]
        neighbour = Peer(namespace, (("eventsource-name", "alerts"),))  # an Argo Events pod of the namespace
        where = pod["metadata"]["name"]
        for peer, port, protocol in needs:
            assert allowed(policies, "Egress", step, peer, port, protocol), f"{where} cannot reach {peer}:{port}"
        for peer, port, protocol in [*denied, *((s, 8000, "TCP") for s in servers), (neighbour, 12000, "TCP")]:
            assert not allowed(policies, "Egress", step, peer, port, protocol), f"{where} reaches {peer}:{port}"
        for source in (neighbour, Peer("monitoring"), outside, *servers):
            assert not allowed(policies, "Ingress", step, source, 8000), f"{source} reaches {where}"
    # The Argo Events pods of the namespace keep their own traffic (Alertmanager -> the EventSource webhook).
    eventsource = Peer(pods[0]["metadata"]["namespace"], (("eventsource-name", "alerts"),))
    assert allowed(policies, "Ingress", eventsource, Peer("monitoring"), 12000)
