"""`mlscaffold validate` on a small hand-made project: valid as written, then one deliberate mistake at a time."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import Invoke
from mlscaffold.validate import validate_project

FILES = {
    "deploy/k8s/base/kustomization.yaml": """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [deployment.yaml, service.yaml]
    """,
    "deploy/k8s/base/deployment.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
                - name: web
                  image: example.org/web:1.0.0
                  ports: [{containerPort: 8000}]
    """,
    "deploy/k8s/base/service.yaml": """
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          selector: {app: web}
          ports: [{port: 80, targetPort: 8000}]
    """,
    "deploy/k8s/overlays/dev/kustomization.yaml": """
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namespace: web-dev
        resources: [../../base]
        patches:
          - path: replicas.yaml
    """,
    "deploy/k8s/overlays/dev/replicas.yaml": """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec: {replicas: 2}
    """,
    "deploy/argo-workflows/training.yaml": """
        apiVersion: argoproj.io/v1alpha1
        kind: WorkflowTemplate
        metadata: {name: training}
        spec:
          entrypoint: pipeline
          templates:
            - name: pipeline
              dag:
                tasks:
                  - {name: train, template: step}
            - name: step
              container:
                image: example.org/web:1.0.0
                args: [train]
    """,
    "deploy/rollouts/analysis.yaml": """
        apiVersion: argoproj.io/v1alpha1
        kind: AnalysisTemplate
        metadata: {name: success-rate}
        spec:
          metrics:
            - name: success-rate
              successCondition: result[0] >= 0.95
              provider:
                prometheus:
                  address: http://prometheus.monitoring:9090
                  query: sum(rate(http_requests_total{code!~"5.."}[2m])) / sum(rate(http_requests_total[2m]))
    """,
    ".github/workflows/ci.yml": """
        name: ci
        on: [push]
        jobs:
          test:
            runs-on: ubuntu-latest
            steps:
              - run: make test
    """,
    "params.yaml": """
        train: {seed: 42}
    """,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for rel, text in FILES.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return tmp_path


def edit(project: Path, rel: str, old: str, new: str) -> None:
    path = project / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new))


def lines(project: Path, schema_dir: Path) -> list[str]:
    return [str(p) for p in validate_project(project, [str(schema_dir)]).problems]


def test_valid_project_has_no_problems(project: Path, schema_dir: Path) -> None:
    report = validate_project(project, [str(schema_dir)])
    assert report.problems == []
    assert report.builds == 1  # the overlay; the base is built through it
    assert report.resources == 4  # Deployment + Service from the build, WorkflowTemplate, AnalysisTemplate


def test_typo_in_a_core_kind_names_its_file_field_and_the_build(project: Path, schema_dir: Path) -> None:
    edit(project, "deploy/k8s/base/deployment.yaml", "image: example", "imagee: x\n          image: example")
    assert lines(project, schema_dir) == [
        "deploy/k8s/base/deployment.yaml: spec.template.spec.containers[0].imagee: unknown field (Deployment/web) "
        "[built by deploy/k8s/overlays/dev]"
    ]


def test_a_built_resource_without_a_unique_source_is_named_by_build_and_document(
    project: Path, schema_dir: Path
) -> None:
    # The same resource declared twice (here: a stray copy outside the build) cannot be traced to one file.
    (project / "deploy" / "copy.yaml").write_text((project / "deploy/k8s/base/deployment.yaml").read_text())
    edit(project, "deploy/k8s/base/deployment.yaml", "image: example", "imagee: x\n          image: example")
    found = lines(project, schema_dir)
    assert len(found) == 1
    assert found[0].startswith("deploy/k8s/overlays/dev:")
    assert "spec.template.spec.containers[0].imagee: unknown field (Deployment/web)" in found[0]


def test_typo_in_a_workflow_template_is_caught_although_hera_drops_it(project: Path, schema_dir: Path) -> None:
    edit(project, "deploy/argo-workflows/training.yaml", "args: [train]", "args: [train]\n      contaner: {}")
    assert lines(project, schema_dir) == [
        "deploy/argo-workflows/training.yaml: spec.templates[1].contaner: unknown field (WorkflowTemplate/training)"
    ]


def test_dag_task_naming_a_missing_template(project: Path, schema_dir: Path) -> None:
    edit(project, "deploy/argo-workflows/training.yaml", "template: step", "template: stepp")
    assert lines(project, schema_dir) == [
        "deploy/argo-workflows/training.yaml: spec.templates[0].dag.tasks[0].template: "
        "names no template of this spec: 'stepp' (WorkflowTemplate/training)"
    ]


def test_wrong_type_in_a_workflow_template(project: Path, schema_dir: Path) -> None:
    edit(project, "deploy/argo-workflows/training.yaml", "args: [train]", "args: train")
    found = lines(project, schema_dir)
    assert len(found) == 1
    assert "spec.templates[1].container.args: Input should be a valid list" in found[0]


def test_typo_in_a_custom_resource_uses_the_schema_location(project: Path, schema_dir: Path) -> None:
    edit(project, "deploy/rollouts/analysis.yaml", "successCondition", "sucessCondition")
    assert lines(project, schema_dir) == [
        "deploy/rollouts/analysis.yaml: spec.metrics[0].sucessCondition: unknown field (AnalysisTemplate/success-rate)"
    ]


def test_custom_resource_without_a_schema_is_an_error(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    empty = tmp_path_factory.mktemp("no-schemas")
    found = [str(p) for p in validate_project(project, [str(empty)]).problems]
    assert found == [
        f"deploy/rollouts/analysis.yaml: (document): cannot validate: no schema for argoproj.io/v1alpha1 "
        f"AnalysisTemplate (looked in: {empty}); pass --schema-location DIR or set MLSCAFFOLD_SCHEMA_LOCATION "
        "(AnalysisTemplate/success-rate)"
    ]


def test_invalid_yaml_names_the_file_and_line(project: Path, schema_dir: Path) -> None:
    (project / "params.yaml").write_text("train: {seed: 42\n")
    found = lines(project, schema_dir)
    assert len(found) == 1
    assert found[0].startswith("params.yaml: (document): invalid YAML: line ")


def test_overlay_that_does_not_build(project: Path, schema_dir: Path) -> None:
    edit(project, "deploy/k8s/overlays/dev/kustomization.yaml", "../../base", "../../missing")
    found = lines(project, schema_dir)
    assert len(found) == 1
    assert found[0].startswith("deploy/k8s/overlays/dev: (document): kustomize build failed: ")


def test_ci_workflow_against_its_schema(project: Path, schema_dir: Path) -> None:
    edit(project, ".github/workflows/ci.yml", "runs-on", "runs_on")
    found = lines(project, schema_dir)
    assert found, "a misspelled runs-on must be reported"
    assert all(line.startswith(".github/workflows/ci.yml: jobs.test") for line in found)


def test_cli_validate_exit_codes_and_output(cli: Invoke, project: Path, schema_dir: Path) -> None:
    ok = cli("validate", project, "--schema-location", schema_dir)
    assert ok.code == 0, ok.err
    assert "valid (" in ok.out
    edit(project, "deploy/rollouts/analysis.yaml", "successCondition", "sucessCondition")
    bad = cli("validate", project, "--schema-location", schema_dir)
    assert bad.code == 1
    assert "deploy/rollouts/analysis.yaml: spec.metrics[0].sucessCondition: unknown field" in bad.err
    assert "1 problem(s)" in bad.err


def test_cli_validate_missing_project(cli: Invoke, tmp_path: Path) -> None:
    result = cli("validate", tmp_path / "nope")
    assert result.code == 1
    assert result.error_lines == [
        f"error: project '{tmp_path / 'nope'}' is not a directory: pass the path of a generated project"
    ]
