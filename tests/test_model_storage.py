"""model_registry=none in the cluster: the pipelines write the file registry and each environment's servers read
it, through a claim per namespace. No claim may get a dynamically provisioned (fresh, empty) volume: each is bound
to the pre-created PersistentVolume its name says, and the PersistentVolumes the generated deploy/README.md tells
the admin to create bind exactly those claims, all on one storage."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import RENDERS as ALL_RENDERS
from helpers import Renders
from scanning import built_docs, pods_of

pytestmark = pytest.mark.xdist_group(__name__)  # one worker builds this module's module-scoped fixtures once

RENDERS = {
    "github-rolling-none-gpu": ALL_RENDERS["github-rolling-none-gpu"],  # dev, staging, prod
    "xgboost-regression-rolling-gitlab": ALL_RENDERS["xgboost-regression-rolling-gitlab"],  # dev only
    # A Rollout: kustomize's configuration file then also carries the Rollout's pod template labels.
    "canary-none": {
        "deployment_strategy": "canary",
        "model_registry": "none",
        "ci_provider": "none",
        "environments": "[staging, prod]",
    },
}
APP = "fraud-detector"
CLAIM = f"{APP}-models"


@pytest.fixture(scope="module")
def projects(renders: Renders) -> dict[str, Path]:
    return {name: renders(answers, manifests=True) for name, answers in RENDERS.items()}


def _environments(name: str) -> list[str]:
    return yaml.safe_load(RENDERS[name].get("environments", "[dev, staging, prod]"))


def _claims(project: Path) -> dict[str, dict[str, Any]]:
    """Every PersistentVolumeClaim of the built manifests, by namespace."""
    claims: dict[str, dict[str, Any]] = {}
    for where, doc in built_docs(project):
        if doc.get("kind") == "PersistentVolumeClaim":
            namespace = doc["metadata"]["namespace"]
            assert namespace not in claims, f"{where}: a second claim in {namespace}"
            claims[namespace] = doc
    return claims


def _readme_volumes(project: Path) -> dict[str, dict[str, Any]]:
    """The PersistentVolumes of deploy/README.md's YAML examples, by name."""
    text = (project / "deploy" / "README.md").read_text()
    volumes: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"^( *)```yaml\n(.*?)^\1```", text, flags=re.M | re.S):
        for doc in yaml.safe_load_all(textwrap.dedent(block[1])):
            if isinstance(doc, dict) and doc.get("kind") == "PersistentVolume":
                volumes[doc["metadata"]["name"]] = doc
    return volumes


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_every_models_claim_is_bound_to_its_named_volume(projects: dict[str, Path], name: str) -> None:
    project = projects[name]
    claims = _claims(project)
    assert set(claims) == {f"{APP}-pipelines", *(f"{APP}-{env}" for env in _environments(name))}
    for namespace, claim in claims.items():
        assert claim["metadata"]["name"] == CLAIM
        spec = claim["spec"]
        assert spec["storageClassName"] == "", f"{namespace}: a claim with a storage class can be provisioned"
        assert spec["volumeName"] == namespace, f"{namespace}: bound to {spec.get('volumeName')!r}"
        assert spec["accessModes"] == ["ReadWriteMany"]
    # Every pod that mounts a claim mounts this one, in its own namespace.
    mounted = set()
    for where, doc in built_docs(project):
        for pod in pods_of(where, doc):
            for volume in pod.volumes:
                if "persistentVolumeClaim" in volume:
                    mounted.add((doc["metadata"]["namespace"], volume["persistentVolumeClaim"]["claimName"]))
    assert mounted == {(namespace, CLAIM) for namespace in claims}


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_the_readme_volumes_bind_exactly_the_claims(projects: dict[str, Path], name: str) -> None:
    project = projects[name]
    claims = _claims(project)
    volumes = _readme_volumes(project)
    assert set(volumes) == {claim["spec"]["volumeName"] for claim in claims.values()}
    sources = set()
    for namespace, claim in claims.items():
        volume = volumes[claim["spec"]["volumeName"]]["spec"]
        assert volume["claimRef"] == {"namespace": namespace, "name": claim["metadata"]["name"]}
        assert volume["storageClassName"] == claim["spec"]["storageClassName"] == ""
        assert set(claim["spec"]["accessModes"]) <= set(volume["accessModes"])
        assert volume["capacity"]["storage"] == claim["spec"]["resources"]["requests"]["storage"]
        assert volume["persistentVolumeReclaimPolicy"] == "Retain"
        sources.add(yaml.safe_dump(volume["nfs"]))
    assert len(sources) == 1, "the volumes are not on one storage"


def test_an_mlflow_render_has_no_claim_and_no_volume(renders: Renders) -> None:
    project = renders("default", manifests=True)
    assert _claims(project) == {}
    assert _readme_volumes(project) == {}
