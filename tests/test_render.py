"""Renders of the bundled template: the exact file set, no Jinja left behind, and strictly valid manifests for a
pairwise matrix that covers every pair of answer values (SPEC §2, §3)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import Invoke, tree_files
from matrix import as_data_args, pairwise
from mlscaffold.answers import parse_data_args
from mlscaffold.engine import new_project
from mlscaffold.template import bundled_template, questions, read_config
from mlscaffold.validate import validate_project
from mlscaffold.yamlutil import load_all

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("MLSCAFFOLD_REGENERATE_GOLDEN") == "1"
ANSWER_KEYS = sorted(questions(read_config(str(bundled_template())) or {}))
# A copier variable left unrendered, or any Jinja statement/comment. Argo ({{inputs...}}), GitHub (${{ }}) and
# Prometheus ({{ $labels.x }}) expressions are not copier variables and may stay.
LEFTOVER = re.compile(r"\{%|%\}|\{#|#\}|\{\{-?\s*(" + "|".join(ANSWER_KEYS) + r"|_copier\w*|names\.\w+)\b")
COMBOS = pairwise()


def render(tmp_path: Path, *args: str) -> Path:
    dest = tmp_path / "project"
    new_project(dest, data=parse_data_args(args[1::2]), defaults=True, git=False)
    return dest


def leftovers(project: Path) -> list[str]:
    found = []
    for rel in sorted(tree_files(project)):
        text = (project / rel).read_text(encoding="utf-8", errors="replace")
        found += [f"{rel}: {m.group(0)!r}" for m in LEFTOVER.finditer(text)]
        if "{{" in rel or "{%" in rel:
            found.append(f"{rel}: Jinja in the file name")
    return found


def parses(project: Path) -> list[str]:
    errors = []
    for rel in sorted(tree_files(project)):
        path = project / rel
        try:
            if rel.endswith(".py"):
                compile(path.read_text(), rel, "exec")
            elif rel.endswith((".yaml", ".yml")):
                load_all(path.read_text())
            elif rel.endswith(".toml"):
                tomllib.loads(path.read_text())
            elif rel.endswith(".json"):
                import json

                json.loads(path.read_text())
        except Exception as exc:  # every parse error of every kind is a finding here
            errors.append(f"{rel}: {type(exc).__name__}: {exc}")
    return errors


@pytest.mark.parametrize("combo", COMBOS, ids=[f"pair{i:02d}" for i in range(len(COMBOS))])
def test_pairwise_render_is_clean_parses_and_validates(tmp_path: Path, schema_dir: Path, combo: dict[str, Any]) -> None:
    project = render(tmp_path, *as_data_args(combo))
    assert leftovers(project) == []
    assert parses(project) == []
    problems = validate_project(project, [str(schema_dir)]).problems
    assert [str(p) for p in problems] == []
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {k: recorded[k] for k in combo} == combo


ANSWER_SETS = {
    "default": [],
    "xgboost-regression-rolling-gitlab": [
        "-d", "ml_framework=xgboost", "-d", "problem_type=regression", "-d", "deployment_strategy=rolling",
        "-d", "ci_provider=gitlab", "-d", "model_registry=none", "-d", "environments=[dev]",
    ],
    "pytorch-bluegreen-gpu-no-drift": [
        "-d", "ml_framework=pytorch", "-d", "deployment_strategy=bluegreen", "-d", "use_gpu=true",
        "-d", "drift_detection=false", "-d", "ci_provider=none", "-d", "environments=[staging, prod]",
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ANSWER_SETS))
def test_exact_file_set(tmp_path: Path, name: str) -> None:
    """The rendered paths equal the golden list (MLSCAFFOLD_REGENERATE_GOLDEN=1 rewrites it on purpose)."""
    project = render(tmp_path, *ANSWER_SETS[name])
    files = sorted(tree_files(project))
    golden = GOLDEN / f"files-{name}.txt"
    if REGENERATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text("\n".join(files) + "\n")
    assert files == golden.read_text().split()


def test_answers_with_quotes_and_colons_stay_valid_toml_and_yaml(tmp_path: Path, schema_dir: Path) -> None:
    project = render(
        tmp_path,
        "-d", "project_name=O'Brien \"Fraud\": Detector #1",
        "-d", "project_slug=obrien-fraud",
        "-d", "description=Scores: cards, \"wires\" & 'checks' # not a comment",
        "-d", "author_name=Zoë O'Neil",
    )  # fmt: skip
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == "Scores: cards, \"wires\" & 'checks' # not a comment"
    assert parses(project) == []
    assert [str(p) for p in validate_project(project, [str(schema_dir)]).problems] == []
    assert 'O\'Brien "Fraud": Detector #1' in (project / "README.md").read_text()


def test_a_typo_in_a_rendered_manifest_fails_validate_naming_file_document_and_field(
    cli: Invoke, tmp_path: Path, schema_dir: Path
) -> None:
    project = render(tmp_path)
    rollout = project / "deploy" / "k8s" / "base" / "rollout.yaml"
    rollout.write_text(rollout.read_text().replace("          image: ", "          imagee: oops\n          image: ", 1))
    workflow = project / "deploy" / "argo-workflows" / "training-workflowtemplate.yaml"
    workflow.write_text(workflow.read_text().replace("      container:\n", "      contaner: {}\n      container:\n", 1))
    result = cli("validate", project, "--schema-location", schema_dir)
    assert result.code == 1
    builds = ", ".join(f"deploy/k8s/overlays/{env}" for env in ("dev", "prod", "staging"))
    assert (
        "deploy/k8s/base/rollout.yaml: spec.template.spec.containers[0].imagee: unknown field (Rollout/fraud-detector) "
        f"[built by {builds}]"
    ) in result.err.splitlines()
    assert (
        "deploy/argo-workflows/training-workflowtemplate.yaml: spec.templates[1].contaner: unknown field "
        "(WorkflowTemplate/fraud-detector-training) [built by deploy/argo-workflows]"
    ) in result.err.splitlines()
    assert "2 problem(s)" in result.err
