"""Renders of the bundled template: the exact file set, no Jinja left behind, and strictly valid manifests for a
pairwise matrix that covers every pair of answer values (SPEC §2, §3)."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import Invoke, Renders, render, tree_files
from matrix import ANSWER_KEYS, as_answers, pairwise
from mlscaffold.validate import validate_project
from mlscaffold.yamlutil import load_all

GOLDEN = Path(__file__).parent / "golden"
#: ``MLSCAFFOLD_REGENERATE_GOLDEN=1 pytest tests/test_render.py`` rewrites the golden files (review their diff).
REGENERATE = os.environ.get("MLSCAFFOLD_REGENERATE_GOLDEN") == "1"
# A copier variable left unrendered, or any Jinja statement/comment. Argo ({{inputs...}}), GitHub (${{ }}) and
# Prometheus ({{ $labels.x }}) expressions are not copier variables and may stay.
LEFTOVER = re.compile(r"\{%|%\}|\{#|#\}|\{\{-?\s*(" + "|".join(ANSWER_KEYS) + r"|_copier\w*|names\.\w+)\b")
COMBOS = pairwise()


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
def test_pairwise_render_is_clean_parses_and_validates(
    renders: Renders, schema_dir: Path, combo: dict[str, Any]
) -> None:
    project = renders(as_answers(combo))
    assert leftovers(project) == []
    assert parses(project) == []
    problems = validate_project(project, [str(schema_dir)]).problems
    assert [str(p) for p in problems] == []
    recorded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert {k: recorded[k] for k in combo} == combo


#: The answer sets whose whole render is kept under tests/golden/ (three of helpers.RENDERS).
GOLDEN_SETS = ["default", "xgboost-regression-rolling-gitlab", "pytorch-bluegreen-gpu-no-drift"]


def golden_text(project: Path) -> str:
    """Every rendered file, in path order, as `=== path ===` and its text: a template change shows as this diff.
    Not build/: `make manifests` writes there when another test asked the shared render for its manifests."""
    parts = []
    for rel in sorted(r for r in tree_files(project) if not str(r).startswith("build/")):
        data = (project / rel).read_bytes()
        body = data.decode("utf-8") if b"\0" not in data else f"<binary, {len(data)} bytes>\n"
        parts.append(f"=== {rel} ===\n{body}" + ("" if body.endswith("\n") else "\n<no newline at end>\n"))
    return "".join(parts)


@pytest.mark.parametrize("name", GOLDEN_SETS)
def test_render_matches_its_golden(renders: Renders, name: str) -> None:
    """Paths and contents equal tests/golden/<name>.render.txt (MLSCAFFOLD_REGENERATE_GOLDEN=1 rewrites it)."""
    text = golden_text(renders(name))
    golden = GOLDEN / f"{name}.render.txt"
    if REGENERATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing: run with MLSCAFFOLD_REGENERATE_GOLDEN=1 and review it"
    expected = golden.read_text(encoding="utf-8")
    if text != expected:  # name the files that differ first: the full diff of a whole render is long
        ours, theirs = _files(text), _files(expected)
        differing = sorted(p for p in ours.keys() | theirs.keys() if ours.get(p) != theirs.get(p))
        pytest.fail(f"{name}: {len(differing)} rendered file(s) differ from the golden: {', '.join(differing[:20])}")


def _files(text: str) -> dict[str, str]:
    chunks = re.split(r"^=== (.+) ===\n", text, flags=re.M)
    return dict(zip(chunks[1::2], chunks[2::2], strict=True))


def test_golden_comparison_sees_a_changed_line(renders: Renders, tmp_path: Path) -> None:
    """The comparison is over contents, not just names: one changed character in one file is a difference."""
    copy = tmp_path / "copy"
    shutil.copytree(renders("default"), copy)
    readme = copy / "README.md"
    readme.write_text(readme.read_text().replace("#", "##", 1))
    changed = _files(golden_text(copy))
    assert [p for p, body in _files(golden_text(renders("default"))).items() if changed[p] != body] == ["README.md"]


def test_answers_with_quotes_and_colons_stay_valid_toml_and_yaml(renders: Renders, schema_dir: Path) -> None:
    project = renders({
        "project_name": "O'Brien \"Fraud\": Detector #1",
        "project_slug": "obrien-fraud",
        "description": "Scores: cards, \"wires\" & 'checks' # not a comment",
        "author_name": "Zoë O'Neil",
    })  # fmt: skip
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == "Scores: cards, \"wires\" & 'checks' # not a comment"
    assert parses(project) == []
    assert [str(p) for p in validate_project(project, [str(schema_dir)]).problems] == []
    assert 'O\'Brien "Fraud": Detector #1' in (project / "README.md").read_text()


def test_a_typo_in_a_rendered_manifest_fails_validate_naming_file_document_and_field(
    cli: Invoke, tmp_path: Path, schema_dir: Path
) -> None:
    project = render(tmp_path / "project")
    rollout = project / "deploy" / "k8s" / "base" / "rollout.yaml"
    rollout.write_text(rollout.read_text().replace("          image: ", "          imagee: oops\n          image: ", 1))
    workflow = project / "deploy" / "argo-workflows" / "training-workflowtemplate.yaml"
    workflow.write_text(workflow.read_text().replace("      container:\n", "      contaner: {}\n      container:\n", 1))
    batch = project / "deploy" / "argo-workflows" / "batch-scoring-workflowtemplate.yaml"
    batch.write_text(batch.read_text().replace("            archive:\n", "            archiv:\n", 1))
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
    assert (
        "deploy/argo-workflows/batch-scoring-workflowtemplate.yaml: spec.templates[1].outputs.artifacts[0].archiv: "
        "unknown field (WorkflowTemplate/fraud-detector-batch-scoring) [built by deploy/argo-workflows]"
    ) in result.err.splitlines()
    assert "3 problem(s)" in result.err
