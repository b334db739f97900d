"""The generated CI holds up against real clients (issue 12: items 1, 2 and 7; issue 10: CI template updates).

- Every command a generated CI job runs is something the project (or the job's runner image) has: each `make`
  target is in the Makefile, each `python -m <package> STEP` is a step of the project's CLI, each `mlscaffold`
  option exists, every other command is a tool of the runner image named below with its reason.
- The GitLab image job logs in to the registry it pushes to, and only there (its own login lines, run by bash);
  `container_registry` defaults to the CI provider's registry; `promote` needs the checks; promtool is installed
  before the tests; template code runs in a job without a write token, and the pull/merge request is opened from its
  result by another job; pull requests are opened with a GitHub App token when one is configured.
- The AppProject allows every kind that each Application deploys, with every optional component enabled.
- Slow: the generated .gitlab-ci.yml runs under gitlab-ci-local (pinned in .ci/run, shell executor) on a GitLab
  render. The GitLab server is the one piece that cannot exist here: a local bare repository stands in for it (its
  post-receive hook records the pushed refs and the push options, which is how GitLab opens merge requests), the
  `gcl-origin` remote gives gitlab-ci-local the GitLab-looking URL it wants, and the public template repository and
  PyPI's mlscaffold are stood in for by a local tagged copy of this template and a wheel of this checkout (the
  MLSCAFFOLD_TEMPLATE and MLSCAFFOLD_SPEC pipeline variables the job documents).
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import REPO, render
from mlscaffold.answers import parse_data_args
from mlscaffold.engine import new_project
from scanning import kubectl, load_docs

pytestmark = pytest.mark.xdist_group(__name__)  # one worker builds this module's module-scoped fixtures once

RENDERS: dict[str, dict[str, str]] = {
    "github": {"ci_provider": "github"},
    "github-rolling-no-dev": {
        "ci_provider": "github",
        "deployment_strategy": "rolling",
        "environments": "[staging, prod]",
        "model_registry": "none",
        "drift_detection": "false",
    },
    "gitlab": {"ci_provider": "gitlab"},
    "gitlab-bluegreen-prod": {"ci_provider": "gitlab", "deployment_strategy": "bluegreen", "environments": "[prod]"},
    "none": {"ci_provider": "none", "environments": "[dev]"},
}


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {name: render(tmp_path_factory.mktemp(name) / "project", answers) for name, answers in RENDERS.items()}


# --------------------------------------------------------------------------------------------------------------
# What a job calls, the project has

# Commands a job may run that are not the project's: the tools of the runner image (GitHub's ubuntu-24.04; GitLab:
# the job's Debian python image, golang image or BuildKit image) and shell builtins.
RUNNER_TOOLS = {
    "git": "every runner image",
    "gh": "GitHub's runner image (GitHub CLI)",
    "go": "GitHub's runner image; GitLab's `manifests` job runs in the golang image",
    "python": "actions/setup-python; the python image",
    "python3": "actions/setup-python; the python image",
    "sudo": "GitHub's runner image (apt-get as root)",
    "apt-get": "Ubuntu / Debian package manager of the runner image",
    "buildctl-daemonless.sh": "the moby/buildkit image of build-image",
    **dict.fromkeys(
        ["sed", "printf", "base64", "paste", "sort", "cat", "sleep", "tr", "grep", "mkdir", "mktemp", "perl"],
        "coreutils / base system of every image",
    ),
    **dict.fromkeys(
        [
            "echo",
            "exit",
            "set",
            "export",
            "unset",
            "command",
            "test",
            "[",
            "true",
            "read",
            "cd",
            "local",
            "shift",
            "continue",
            "break",
            "return",
        ],
        "shell builtin",
    ),
}
KEYWORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "(", ")"}
SEPARATORS = {";", "&&", "||", "|", "&", ";;", "(", ")", "{", "}"}
REDIRECTS = {">", ">>", "<", "<<<", "&>", ">&", "2>", "2>>"}


def _substitutions(line: str) -> tuple[str, list[str]]:
    """`line` with each `$( ... )` replaced by a placeholder word, and the inner scripts; `$(( ))` is arithmetic."""
    inner: list[str] = []
    out, i = "", 0
    while i < len(line):
        if line.startswith("$((", i):
            depth, j = 0, i + 1
            while j < len(line):
                depth += {"(": 1, ")": -1}.get(line[j], 0)
                j += 1
                if depth == 0:
                    break
            out, i = out + "0", j
        elif line.startswith("$(", i):
            depth, j = 1, i + 2
            while j < len(line) and depth:
                depth += {"(": 1, ")": -1}.get(line[j], 0)
                j += 1
            inner.append(line[i + 2 : j - 1])
            out, i = out + "SUBSTITUTED", j
        else:
            out, i = out + line[i], i + 1
    return out, inner


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands (their words) of a job's shell script: good enough for the scripts mlscaffold writes
    (if/for/while/case, functions, pipes, command substitution), not a full shell parser."""
    commands: list[list[str]] = []
    logical = re.sub(r"\\\n", " ", script)
    in_case = False
    for raw in logical.splitlines():
        line, inner = _substitutions(raw.strip())
        for sub in inner:
            commands += shell_commands(sub)
        if not line or line.startswith("#"):
            continue
        if in_case and re.match(r"^[^()]*\)", line) and not line.startswith("esac"):
            line = line[line.index(")") + 1 :]
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
        current: list[str] = []
        skip_until_do = skip_next = False
        for word in words:
            if skip_next:
                skip_next = False
                continue
            if word in REDIRECTS or re.fullmatch(r"\d?>+&?\d?|<+", word):
                skip_next = True
                continue
            if skip_until_do:
                if word in (";", "do"):
                    skip_until_do = False
                continue
            if word in SEPARATORS:
                if current:
                    commands.append(current)
                current = []
                continue
            if not current:
                if word == "for":
                    skip_until_do = True
                    continue
                if word == "case":
                    in_case = True
                    current = ["case"]
                    continue
                if word == "esac":
                    in_case = False
                    continue
                if word in KEYWORDS or word in ("fi", "done") or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", word):
                    continue
            current.append(word)
        if current:
            commands.append(current)
    return [c for c in commands if c and c[0] != "case"]


def _makefile_targets(project: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_-]+):(?!=)", (project / "Makefile").read_text(), re.M))


def _cli_steps(project: Path, package: str) -> set[str]:
    """The subcommands the project's CLI declares (`add("name", ...)` calls in src/<package>/cli.py)."""
    tree = ast.parse((project / "src" / package / "cli.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "add"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    }


def _mlscaffold_options(subcommand: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mlscaffold", subcommand, "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _problems(project: Path, where: str, script: str) -> list[str]:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    package = answers["package_name"]
    targets, steps = _makefile_targets(project), _cli_steps(project, package)
    functions = set(re.findall(r"^\s*([A-Za-z_][\w-]*)\(\)\s*\{", script, re.M))
    problems = []
    for words in shell_commands(script):
        name, args = words[0], words[1:]
        if name == "make":
            for target in [a for a in args if not a.startswith("-") and "=" not in a]:
                if target not in targets:
                    problems.append(f"{where}: make {target}: no such target in the Makefile")
        elif name == ".venv/bin/python":
            if args[:1] == ["-m"]:
                if args[1] != package or len(args) < 3 or args[2] not in steps:
                    problems.append(f"{where}: {' '.join(words)}: not a step of the project's CLI ({sorted(steps)})")
            elif args[:1] != ["-c"]:
                problems.append(f"{where}: {' '.join(words)}")
        elif name.endswith("/bin/mlscaffold"):
            assert "-m venv" in script and "pip install" in script, f"{where}: mlscaffold used but not installed"
            help_text = _mlscaffold_options(args[0])
            for option in [a for a in args[1:] if a.startswith("--")]:
                if option not in help_text:
                    problems.append(f"{where}: mlscaffold {args[0]} has no option {option}")
        elif name.endswith("/bin/python"):
            if "-m venv" not in script:
                problems.append(f"{where}: {name}: a virtual environment the job does not create")
        elif name in ("python", "python3") and args and args[0].endswith(".py"):
            if not (project / args[0]).is_file():
                problems.append(f"{where}: {name} {args[0]}: no such file in the project")
        elif name == "promtool":
            if "install -y -qq --no-install-recommends prometheus" not in script and "promtool" not in answers:
                problems.append(f"{where}: promtool used before the job installs it")
        elif name not in RUNNER_TOOLS and name not in functions:
            problems.append(f"{where}: {name}: neither the project's nor the runner image's")
    for key in re.findall(r"\^(_commit|_src_path):", script):
        if key not in answers:
            problems.append(f"{where}: reads {key} from .copier-answers.yml, which has no such key")
    return problems


def _github_scripts(project: Path) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    for path in sorted((project / ".github" / "workflows").glob("*.yml")):
        workflow = yaml.safe_load(path.read_text())
        for job, spec in workflow["jobs"].items():
            steps = spec.get("steps") or []
            script = "\n".join(step["run"] for step in steps if "run" in step)
            yield f"{path.name}:{job}", script, steps


def _gitlab_jobs(project: Path) -> dict[str, dict[str, Any]]:
    """Each job of .gitlab-ci.yml with its `extends` merged (as GitLab does: the job's own keys win)."""
    ci = yaml.safe_load((project / ".gitlab-ci.yml").read_text())

    def resolved(name: str) -> dict[str, Any]:
        spec = dict(ci[name])
        parents = spec.pop("extends", [])
        merged: dict[str, Any] = {}
        for parent in [parents] if isinstance(parents, str) else parents:
            merged |= resolved(parent)
        return merged | spec

    keywords = {"workflow", "stages", "default", "variables", "include"}
    return {name: resolved(name) for name in ci if not name.startswith(".") and name not in keywords}


def _gitlab_script(spec: dict[str, Any]) -> str:
    return "\n".join(str(line) for key in ("before_script", "script") for line in spec.get(key) or [])


@pytest.mark.parametrize("name", ["github", "github-rolling-no-dev"])
def test_every_github_run_step_calls_what_the_project_has(projects: dict[str, Path], name: str) -> None:
    problems, seen = [], set()
    for where, script, _ in _github_scripts(projects[name]):
        problems += _problems(projects[name], where, script)
        seen |= {words[0] for words in shell_commands(script)}
    assert problems == []
    # The checker saw the project's own commands (it would pass vacuously on a script it cannot read).
    assert {"make", ".venv/bin/python", "git", "gh"} <= seen
    assert any(cmd.endswith("/bin/mlscaffold") for cmd in seen)


@pytest.mark.parametrize("name", ["gitlab", "gitlab-bluegreen-prod"])
def test_every_gitlab_script_calls_what_the_project_has(projects: dict[str, Path], name: str) -> None:
    problems = []
    for job, spec in _gitlab_jobs(projects[name]).items():
        problems += _problems(projects[name], job, _gitlab_script(spec))
    assert problems == []


def test_the_command_checker_catches_a_missing_target_and_step(projects: dict[str, Path]) -> None:
    script = "make install lint-all\n.venv/bin/python -m fraud_detector trian\nkustomize build deploy\n"
    script += "python3 src/fraud_detector/nope.py chain\n"
    assert _problems(projects["github"], "job", script) == [
        "job: make lint-all: no such target in the Makefile",
        "job: .venv/bin/python -m fraud_detector trian: not a step of the project's CLI "
        f"({sorted(_cli_steps(projects['github'], 'fraud_detector'))})",
        "job: kustomize: neither the project's nor the runner image's",
        "job: python3 src/fraud_detector/nope.py: no such file in the project",
    ]
    assert shell_commands('x="$(git rev-parse HEAD | tr -d x)"; for e in a b; do make "$e"; done') == [
        ["git", "rev-parse", "HEAD"],
        ["tr", "-d", "x"],
        ["make", "$e"],
    ]


# --------------------------------------------------------------------------------------------------------------
# Registry, caches, order of jobs, promtool


def test_container_registry_defaults_to_the_ci_providers_registry(projects: dict[str, Path]) -> None:
    gitlab = yaml.safe_load((projects["gitlab"] / ".gitlab-ci.yml").read_text())
    # registry.gitlab.com/<group>/<project>: what GitLab calls $CI_REGISTRY_IMAGE for the project example-org/<slug>
    assert gitlab["variables"]["IMAGE"] == "registry.gitlab.com/example-org/fraud-detector"
    assert yaml.safe_load((projects["gitlab"] / ".copier-answers.yml").read_text())["container_registry"] == (
        "registry.gitlab.com/example-org"
    )
    cd = yaml.safe_load((projects["github"] / ".github" / "workflows" / "cd.yml").read_text())
    assert cd["jobs"]["image"]["env"]["IMAGE"] == "ghcr.io/example-org/fraud-detector"
    login = next(s for s in cd["jobs"]["image"]["steps"] if "docker/login-action" in s.get("uses", ""))
    assert login["with"]["registry"] == "ghcr.io" and login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    # The manifests deploy the image CI pushes.
    for name in ("gitlab", "github"):
        overlay = (projects[name] / "deploy" / "k8s" / "overlays" / "dev" / "kustomization.yaml").read_text()
        image = "registry.gitlab.com/example-org/fraud-detector" if name == "gitlab" else "ghcr.io/example-org/"
        assert image in overlay


def _build_image_login(project: Path, home: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Any]:
    """Run build-image's registry login lines (the first script entry) in bash, as the job would."""
    ci = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
    script = ci["build-image"]["script"][0]
    assert "docker/config.json" in script
    home.mkdir()
    full = {"PATH": os.environ["PATH"], "HOME": str(home), "IMAGE": ci["variables"]["IMAGE"], **env}
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=full, capture_output=True, text=True)
    config = home / ".docker" / "config.json"
    return done, json.loads(config.read_text()) if config.exists() else None


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def test_gitlab_image_job_logs_in_to_the_registry_it_pushes_to(projects: dict[str, Path], tmp_path: Path) -> None:
    gitlab_env = {
        "CI_REGISTRY": "registry.gitlab.com",
        "CI_REGISTRY_IMAGE": "registry.gitlab.com/example-org/fraud-detector",
        "CI_REGISTRY_USER": "gitlab-ci-token",
        "CI_REGISTRY_PASSWORD": "job-token",
    }
    done, config = _build_image_login(projects["gitlab"], tmp_path / "own", **gitlab_env)
    assert done.returncode == 0, done.stderr
    assert config == {"auths": {"registry.gitlab.com": {"auth": _auth("gitlab-ci-token", "job-token")}}}

    # Another registry: GitLab's job token never goes there; without its own credentials the job stops and says so.
    other = render(tmp_path / "ghcr", {"ci_provider": "gitlab", "container_registry": "ghcr.io/example-org"})
    done, config = _build_image_login(other, tmp_path / "ghcr-none", **gitlab_env)
    assert done.returncode == 1 and config is None
    assert "IMAGE=ghcr.io/example-org/fraud-detector is on ghcr.io" in done.stderr
    assert "REGISTRY_USER and REGISTRY_PASSWORD" in done.stderr
    creds = {"REGISTRY_USER": "robot", "REGISTRY_PASSWORD": "robot-secret"}
    done, config = _build_image_login(other, tmp_path / "ghcr-own", **gitlab_env, **creds)
    assert done.returncode == 0, done.stderr
    assert config == {"auths": {"ghcr.io": {"auth": _auth("robot", "robot-secret")}}}

    # The GitLab registry, but another project's path: the job token cannot push there.
    done, config = _build_image_login(
        projects["gitlab"], tmp_path / "foreign", **(gitlab_env | {"CI_REGISTRY_IMAGE": "registry.gitlab.com/a/b"})
    )
    assert done.returncode == 1 and config is None
    assert "is not in this project's registry registry.gitlab.com/a/b" in done.stderr


@pytest.mark.parametrize("name", ["gitlab", "gitlab-bluegreen-prod"])
def test_gitlab_promote_needs_the_checks(projects: dict[str, Path], name: str) -> None:
    jobs = _gitlab_jobs(projects[name])
    needs = {n["job"]: n for n in jobs["promote"]["needs"]}
    checks = {job for job, spec in jobs.items() if spec.get("stage") == "check"}
    assert checks == {"lint", "test", "model", "manifests", "scan"}
    for check in checks:
        assert not needs[check].get("optional"), f"promote may start before {check} passed"
    release = "deploy-dev" if name == "gitlab" else "build-image"
    assert needs[release]["optional"] is True


def test_promtool_is_installed_before_the_tests(projects: dict[str, Path]) -> None:
    test = _gitlab_jobs(projects["gitlab"])["test"]["script"]
    assert "apt-get install -y -qq --no-install-recommends prometheus" in test[0]
    assert test[1:] == ["promtool --version", "make test test-integration"]
    ci = yaml.safe_load((projects["github"] / ".github" / "workflows" / "ci.yml").read_text())
    runs = [step.get("run", "") for step in ci["jobs"]["test"]["steps"]]
    install = next(i for i, run in enumerate(runs) if "install -y -qq --no-install-recommends prometheus" in run)
    assert "promtool --version" in runs[install]
    assert install < runs.index("make test test-integration")


@pytest.mark.parametrize("name", ["gitlab", "github", "none"])
def test_ci_caches_and_outputs_in_the_checkout_are_ignored(
    projects: dict[str, Path], tmp_path: Path, name: str
) -> None:
    project = tmp_path / "project"
    shutil.copytree(projects[name], project)
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    paths = [".cache/pip/http/x", ".venv/bin/python", ".venv-scan/bin/checkov", "artifacts/metrics.txt", "build/x"]
    if name == "gitlab":
        ci = yaml.safe_load((project / ".gitlab-ci.yml").read_text())
        cache = ci["variables"]["PIP_CACHE_DIR"]
        assert cache == "$CI_PROJECT_DIR/.cache/pip"
        paths += [p + "/x" for p in ci[".python"]["cache"]["paths"]]
        paths.append(ci["model"]["artifacts"]["reports"]["metrics"])
    done = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=project, capture_output=True, text=True)
    assert set(done.stdout.split()) == set(paths)


# --------------------------------------------------------------------------------------------------------------
# Template updates: template code never runs next to a write token; pull requests that start their checks


def test_github_template_update_runs_template_code_read_only(projects: dict[str, Path]) -> None:
    workflow = yaml.safe_load((projects["github"] / ".github" / "workflows" / "template-update.yml").read_text())
    update, pull_request = workflow["jobs"]["update"], workflow["jobs"]["pull-request"]
    assert update["permissions"] == {"contents": "read"}
    text = json.dumps(update)
    assert "secrets." not in text and "github.token" not in text and "GH_TOKEN" not in text
    runs = "\n".join(step.get("run", "") for step in update["steps"])
    assert '/bin/mlscaffold" update --defaults --trust --template "$template"' in runs
    assert "copier update" not in runs and "copier copy" not in runs
    assert 'pip install --quiet "${MLSCAFFOLD_SPEC:-mlscaffold==$version}"' in runs
    assert update["steps"][0]["with"]["persist-credentials"] is False
    # The job with the write token runs nothing from the template: git, gh and the shell only, on the bundle.
    assert pull_request["needs"] == "update"
    assert pull_request["permissions"] == {"contents": "write", "pull-requests": "write"}
    commands = {words[0] for step in pull_request["steps"] for words in shell_commands(step.get("run", ""))}
    assert commands <= {"set", "git", "gh", "sed", "echo", "cat", "printf", "base64", "[", "exit", "read", "true"}
    assert not any("make" in c or "python" in c or "mlscaffold" in c for c in commands)
    uses = [step.get("uses", "") for step in pull_request["steps"]]
    assert any(u.startswith("actions/download-artifact@") for u in uses)
    assert not any(u.startswith("actions/setup-python@") for u in uses)


@pytest.mark.parametrize(("name", "workflow"), [("github", "template-update.yml"), ("github", "promote.yml")])
def test_github_pull_requests_use_an_app_token_when_configured(
    projects: dict[str, Path], name: str, workflow: str
) -> None:
    spec = yaml.safe_load((projects[name] / ".github" / "workflows" / workflow).read_text())
    job = spec["jobs"]["pull-request" if workflow == "template-update.yml" else "pull-requests"]
    app = next(step for step in job["steps"] if step.get("id") == "app-token")
    assert app["uses"].startswith("actions/create-github-app-token@")
    assert app["if"] == "vars.PR_APP_ID != ''"
    assert app["with"]["app-id"] == "${{ vars.PR_APP_ID }}"
    assert app["with"]["private-key"] == "${{ secrets.PR_APP_PRIVATE_KEY }}"
    opening = next(step for step in job["steps"] if "GH_TOKEN" in step.get("env", {}))  # pushes, opens the PRs
    assert opening["env"]["GH_TOKEN"] == "${{ steps.app-token.outputs.token || github.token }}"
    text = json.dumps(job)
    assert "The checks will not start" in text and "GITHUB_STEP_SUMMARY" in text
    if workflow == "promote.yml":  # cd.yml calls it: the App's key must be passed on
        assert spec[True]["workflow_call"]["secrets"]["PR_APP_PRIVATE_KEY"]["required"] is False
        cd = yaml.safe_load((projects[name] / ".github" / "workflows" / "cd.yml").read_text())
        assert cd["jobs"]["promote"]["secrets"] == {"PR_APP_PRIVATE_KEY": "${{ secrets.PR_APP_PRIVATE_KEY }}"}


def test_gitlab_template_update_runs_template_code_without_the_write_token(projects: dict[str, Path]) -> None:
    jobs = _gitlab_jobs(projects["gitlab"])
    update, merge_request = jobs["template-update"], jobs["template-update-mr"]
    assert "GITOPS_TOKEN" not in json.dumps({k: v for k, v in update.items() if k != "script"})
    script = update["script"]
    assert script[0].startswith("unset GITOPS_TOKEN ") and "CI_JOB_TOKEN" in script[0]
    assert "before_script" not in update
    assert [i for i, line in enumerate(script) if "GITOPS_TOKEN" in line] == [0]
    assert any('/bin/mlscaffold" update --defaults --trust --template "$template"' in line for line in script)
    assert not any("copier " in line for line in script)
    assert update["artifacts"]["paths"] == ["template-update.bundle"]
    assert merge_request["needs"] == [{"job": "template-update", "artifacts": True}]
    commands = {words[0] for words in shell_commands(_gitlab_script(merge_request))}
    assert not any("make" in c or "python" in c or "mlscaffold" in c for c in commands), commands
    assert merge_request["rules"] == update["rules"]


# --------------------------------------------------------------------------------------------------------------
# The AppProject allows what the Applications deploy


def _enable_components(folder: Path) -> list[Path]:
    """Enable the optional components a folder's kustomization.yaml offers in its commented-out `# components:`
    block (in a copy of the project); return them."""
    path = folder / "kustomization.yaml"
    text = path.read_text()
    block = re.search(r"^#\s*components:\s*\n((?:#\s+-\s+\S+\s*\n)+)", text, re.M)
    if block is None:
        return []
    offered = re.findall(r"^#\s+-\s+(\S+)", block.group(1), re.M)
    kustomization = yaml.safe_load(text)
    kustomization["components"] = [*kustomization.get("components", []), *offered]
    path.write_text(yaml.safe_dump(kustomization))
    return [(folder / c).resolve() for c in offered]


@pytest.mark.parametrize("name", ["github", "github-rolling-no-dev", "gitlab-bluegreen-prod"])
def test_the_app_project_allows_every_kind_each_application_deploys(
    projects: dict[str, Path], tmp_path: Path, name: str
) -> None:
    shutil.copytree(projects[name], tmp_path / "with-components")
    project = tmp_path / "with-components"
    apps = [d for p in sorted((project / "deploy" / "argocd" / "apps").glob("*.yaml")) for d in load_docs(p)]
    (app_project,) = [d for d in apps if d["kind"] == "AppProject"]
    spec = app_project["spec"]
    allowed = {(k["group"], k["kind"]) for k in spec["namespaceResourceWhitelist"]}
    allowed_cluster = {(k["group"], k["kind"]) for k in spec["clusterResourceWhitelist"]}
    destinations = {d["namespace"] for d in spec["destinations"]}
    deployed: set[tuple[str, str]] = set()
    enabled: set[Path] = set()
    for app in (d for d in apps if d["kind"] == "Application"):
        assert app["spec"]["project"] == app_project["metadata"]["name"]
        assert app["spec"]["source"]["repoURL"] in spec["sourceRepos"]
        namespace = app["spec"]["destination"]["namespace"]
        assert namespace in destinations
        path = project / app["spec"]["source"]["path"]
        folders = [projects[name] / app["spec"]["source"]["path"]]
        components = _enable_components(path)
        if components:
            enabled |= set(components)
            folders.append(path)
        for folder in folders:
            built = subprocess.run([kubectl(), "kustomize", str(folder)], capture_output=True, text=True)
            assert built.returncode == 0, built.stderr
            for doc in yaml.safe_load_all(built.stdout):
                group = doc["apiVersion"].rpartition("/")[0]
                kind = (group, doc["kind"])
                deployed.add(kind)
                assert kind in allowed | allowed_cluster, f"{app['metadata']['name']}: {kind} is denied"
                assert doc["metadata"].get("namespace", namespace) == namespace
    # Every optional component is offered by the folder it belongs in, and so was built above.
    assert enabled == {c.resolve() for c in (project / "deploy" / "k8s" / "components").iterdir()}
    assert ("external-secrets.io", "ExternalSecret") in deployed
    # and no more than that: every allowed kind is deployed by some Application (Namespaces by CreateNamespace)
    assert allowed - deployed == set()
    assert allowed_cluster == {("", "Namespace")}


# --------------------------------------------------------------------------------------------------------------
# deploy/README.md: the cluster prerequisites


def test_deploy_readme_names_each_cluster_prerequisite_with_its_setting(projects: dict[str, Path]) -> None:
    readme = (projects["github"] / "deploy" / "README.md").read_text()
    section = readme.split("## Cluster prerequisites", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "--allowed-hosts mlflow.mlflow.svc.cluster.local:5000,mlflow.mlflow.svc.cluster.local",
        "--serve-artifacts",
        "Argo Workflows** 3.6 or newer",
        "workflows.argoproj.io/default-artifact-repository",
        "Pushgateway** at `http://prometheus-pushgateway.monitoring.svc:9091`",
        "honor_labels: true",
        "External Secrets Operator",
        "`SecretStore` named `fraud-detector`",
        "image pull secret",
        "imagePullSecrets",
    ):
        assert needed in section, needed
    # The ServiceAccounts it tells to carry the pull secret are the ones the pods run as.
    manifests = "\n".join(p.read_text() for p in (projects["github"] / "deploy").rglob("*.yaml"))
    for account in re.findall(r"`([a-z0-9-]+)` \(`(?:k8s/base/serviceaccount|argo-workflows/rbac)\.yaml`\)", section):
        assert f"serviceAccountName: {account}" in manifests
    none = (projects["github-rolling-no-dev"] / "deploy" / "README.md").read_text()
    assert "--allowed-hosts" not in none and "Pushgateway" not in none.split("## Bootstrap")[0]


# --------------------------------------------------------------------------------------------------------------
# Slow: the generated .gitlab-ci.yml under gitlab-ci-local


GITLAB_CI_LOCAL_ENV = "MLSCAFFOLD_GITLAB_CI_LOCAL"
GITLAB_CI_LOCAL_DEFAULT = REPO / ".ci-tools" / "gitlab-ci-local" / "node_modules" / ".bin" / "gitlab-ci-local"
GITLAB_URL = "https://gitlab.example.com/example-org/fraud-detector.git"  # what gitlab-ci-local parses; never reached
# Jobs of the default render that run here, by pipeline source, and those that cannot, with why.
RUN_ON_PUSH = ["lint", "test", "model", "scan", "deploy-dev", "promote"]
RUN_ON_SCHEDULE = ["template-update", "template-update-mr"]
CANNOT_RUN = {
    "manifests": "runs in the golang image and builds kustomize and kubeconform with `go install`: no Go toolchain "
    "nor Go module proxy here, and kubeconform downloads the Kubernetes schemas from GitHub. The same `make "
    "manifests` and a strict offline validation run in tests/test_validate.py and tests/test_scanners.py, and the "
    "scan job here builds the manifests itself with kubectl",
    "build-image": "needs a container engine with BuildKit and a registry to push to: neither exists here (its "
    "registry login lines run in test_gitlab_image_job_logs_in_to_the_registry_it_pushes_to)",
}
TOKEN = "glpat-canary-not-a-real-token"


def gitlab_ci_local() -> str:
    path = os.environ.get(GITLAB_CI_LOCAL_ENV) or str(GITLAB_CI_LOCAL_DEFAULT)
    missing = [
        what
        for what, ok in (("gitlab-ci-local", Path(path).is_file()), ("rsync", bool(shutil.which("rsync"))))
        if not ok
    ]
    if missing:
        message = f"{', '.join(missing)} not found (${GITLAB_CI_LOCAL_ENV} or {path}): .ci/run installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


POST_RECEIVE = """#!/bin/sh
# Stand-in for GitLab: record each pushed ref and the push options (merge_request.create, .title, ci.skip, ...).
{
  while read -r old new ref; do echo "ref $ref $new"; done
  i=0
  while [ "$i" -lt "${GIT_PUSH_OPTION_COUNT:-0}" ]; do
    eval "echo \\"option \\$GIT_PUSH_OPTION_$i\\""
    i=$((i + 1))
  done
} >> "$GIT_DIR/pushes.log"
"""


class GitLab:
    """A GitLab render pushed to a local bare repository (the stand-in for the GitLab project)."""

    def __init__(self, root: Path, gcl: str) -> None:
        self.root, self.gcl = root, gcl
        self.project = root / "project"
        new_project(self.project, data=parse_data_args(["ci_provider=gitlab"]), defaults=True)
        self.remote = root / "remote.git"
        _git(root, "init", "-q", "--bare", "-b", "main", str(self.remote))
        _git(self.remote, "config", "receive.advertisePushOptions", "true")
        hook = self.remote / "hooks" / "post-receive"
        hook.write_text(POST_RECEIVE)
        hook.chmod(0o755)
        _git(self.project, "remote", "add", "origin", str(self.remote))
        _git(self.project, "push", "-q", "origin", "main")
        (self.remote / "pushes.log").unlink()

    def clone(self, name: str) -> Path:
        """A fresh checkout, as a runner makes one for a job."""
        dest = self.root / name
        _git(self.root, "clone", "-q", str(self.remote), str(dest))
        _git(dest, "remote", "add", "gcl-origin", GITLAB_URL)
        _git(dest, "config", "user.name", "Developer")
        _git(dest, "config", "user.email", "dev@example.org")
        return dest

    def pushes(self) -> list[str]:
        log = self.remote / "pushes.log"
        return log.read_text().splitlines() if log.exists() else []

    def run(self, checkout: Path, jobs: list[str], *variables: str) -> tuple[int, str]:
        """gitlab-ci-local on `jobs` in `checkout` (shell executor, one job at a time); its exit code and log.
        CI_PROJECT_DIR is the checkout, as on a runner (gitlab-ci-local would say /builds/...)."""
        cmd = [self.gcl, "--force-shell-executor", "--concurrency", "1", "--no-color", "--state-dir"]
        cmd += [os.path.relpath(self.root / f"state-{checkout.name}", checkout)]
        for variable in (f"CI_PROJECT_DIR={checkout}", f"GITOPS_TOKEN={TOKEN}", *variables):
            cmd += ["--variable", variable]
        env = os.environ | {"GCL_IGNORE_PREDEFINED_VARS": "CI_PROJECT_DIR,CI_PIPELINE_SOURCE"}
        done = subprocess.run([*cmd, *jobs], cwd=checkout, capture_output=True, text=True, env=env, timeout=1800)
        log = done.stdout + done.stderr
        (self.root / f"{checkout.name}.log").write_text(log)
        return done.returncode, log


def _passed(log: str) -> dict[str, str]:
    return dict((job, verdict) for verdict, job in re.findall(r"^\s*(PASS|FAIL)\s+(\S+)", log, re.M))


@pytest.fixture(scope="module")
def gitlab(tmp_path_factory: pytest.TempPathFactory) -> GitLab:
    return GitLab(tmp_path_factory.mktemp("gitlab-ci-local"), gitlab_ci_local())


@pytest.fixture(scope="module")
def checks(gitlab: GitLab) -> tuple[Path, int, str]:
    checkout = gitlab.clone("checks")
    code, log = gitlab.run(checkout, ["lint", "test", "model", "scan"])
    return checkout, code, log


@pytest.mark.slow
def test_gitlab_ci_local_runs_every_job_that_can_run_here(gitlab: GitLab) -> None:
    """Every job of a push and a schedule pipeline is either run by the tests below or listed in CANNOT_RUN."""
    listed = {}
    for source in ("push", "schedule"):
        variables = ["--variable", f"CI_PIPELINE_SOURCE={source}", "--variable", "TEMPLATE_UPDATE=true"]
        done = subprocess.run(
            [gitlab.gcl, "--list-csv", "--no-color", "--state-dir", "../list-state", *variables],
            cwd=gitlab.clone(f"list-{source}"),
            capture_output=True,
            text=True,
            env=os.environ | {"GCL_IGNORE_PREDEFINED_VARS": "CI_PIPELINE_SOURCE"},
        )
        assert done.returncode == 0, done.stderr
        rows = [line.split(";") for line in done.stdout.splitlines() if ";" in line]
        assert rows[0][:3] == ["name", "stage", "when"], done.stdout
        listed[source] = {row[0] for row in rows[1:]}
    assert listed["push"] == set(RUN_ON_PUSH) | set(CANNOT_RUN)
    assert listed["schedule"] == set(RUN_ON_SCHEDULE)


@pytest.mark.slow
def test_gitlab_check_jobs_pass_and_leave_the_checkout_clean(checks: tuple[Path, int, str]) -> None:
    checkout, code, log = checks
    assert _passed(log) == dict.fromkeys(["lint", "test", "model", "scan"], "PASS"), log[-6000:]
    assert code == 0
    # Every alert unit test ran: promtool was there (installed by the job, or already on the machine).
    assert "promtool is not on PATH" not in log
    assert re.search(r"test\s+\$ promtool --version\s*\n\s*test\s+> promtool, version", log)
    assert not re.search(r"SKIPPED .*test_alerts", log)
    # The pipeline's outputs and caches stay out of git: a runner's next job (or a template update) sees a clean tree.
    assert (checkout / ".cache").is_dir()  # make install's pip or uv cache (PIP_CACHE_DIR / UV_CACHE_DIR)
    assert (checkout / "artifacts" / "metrics.txt").is_file()
    # (data/sample.csv is not a cache: the seeded sample the steps write when no data is there, a file of the user's
    # data folder that git leaves to them.)
    assert _git(checkout, "status", "--porcelain", "--untracked-files=all").splitlines() == ["?? data/sample.csv"]


@pytest.mark.slow
def test_gitlab_deploy_dev_and_promote_push_to_the_gitops_remote(gitlab: GitLab) -> None:
    checkout = gitlab.clone("deploy-dev")
    sha = _git(checkout, "rev-parse", "HEAD").strip()
    code, log = gitlab.run(checkout, ["deploy-dev"])
    assert (code, _passed(log)) == (0, {"deploy-dev": "PASS"}), log[-4000:]
    assert gitlab.pushes()[-2:] == [
        f"ref refs/heads/main {_git(gitlab.remote, 'rev-parse', 'main').strip()}",
        "option ci.skip",
    ]
    dev = _git(gitlab.remote, "show", "main:deploy/k8s/overlays/dev/kustomization.yaml")
    assert f'newTag: "{sha}"' in dev

    checkout = gitlab.clone("promote")
    code, log = gitlab.run(checkout, ["promote"])
    assert (code, _passed(log)) == (0, {"promote": "PASS"}), log[-4000:]
    pushed = gitlab.pushes()
    branch = _git(gitlab.remote, "rev-parse", "promote/staging").strip()
    assert f"ref refs/heads/promote/staging {branch}" in pushed
    assert {
        "option merge_request.create",
        "option merge_request.target=main",
        f"option merge_request.title=Promote {sha[:12]} to staging",
    } <= set(pushed)
    staging = _git(gitlab.remote, "show", "promote/staging:deploy/k8s/overlays/staging/kustomization.yaml")
    assert f'newTag: "{sha}"' in staging
    assert not any("promote/prod" in line for line in pushed)  # prod follows staging once that is merged


def _template_repository(root: Path, env_file: Path) -> Path:
    """Stand-in for the public template repository: this template tagged v0.1.0 (what rendered the project) and a
    v0.2.0 that adds a file, changes the README's first line and, as template code, records its environment."""
    repo = root / "template-repository"
    repo.mkdir()
    shutil.copy2(REPO / "copier.yml", repo / "copier.yml")
    shutil.copytree(REPO / "template", repo / "template", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "v0.1.0")
    _git(repo, "tag", "v0.1.0")
    readme = repo / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().replace("# {{ project_name }}\n", "# {{ project_name }} (template v0.2)\n", 1))
    (repo / "template" / "NOTES.md").write_text("Added by the template in v0.2.0.\n")
    config = repo / "copier.yml"
    config.write_text(config.read_text() + f'\n_tasks:\n  - "env > {env_file}"\n')
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "v0.2.0")
    _git(repo, "tag", "v0.2.0")
    return repo


@pytest.mark.slow
def test_gitlab_template_update_opens_a_merge_request_from_mlscaffold_update(gitlab: GitLab) -> None:
    root = gitlab.root
    env_file = root / "environment-seen-by-template-code.txt"
    template = _template_repository(root, env_file)
    wheels = root / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(REPO)], check=True
    )
    (wheel,) = wheels.glob("mlscaffold-*.whl")
    # The user edited the README's first line on main: the template's v0.2.0 changes the same line.
    user = gitlab.clone("user")
    readme = user / "README.md"
    readme.write_text(readme.read_text().replace("# Fraud Detector\n", "# Fraud Detector, by the fraud team\n", 1))
    _git(user, "commit", "-qam", "README: our title")
    _git(user, "push", "-q", "origin", "main")
    start = len(gitlab.pushes())

    checkout = gitlab.clone("template-update")
    code, log = gitlab.run(
        checkout,
        ["template-update", "template-update-mr"],
        "CI_PIPELINE_SOURCE=schedule",
        "TEMPLATE_UPDATE=true",
        f"MLSCAFFOLD_SPEC={wheel}",  # stands in for mlscaffold==0.1.0 from PyPI
        f"MLSCAFFOLD_TEMPLATE={template}",  # stands in for the recorded _src_path (the public template repository)
    )
    assert (code, _passed(log)) == (0, {"template-update": "PASS", "template-update-mr": "PASS"}), log[-6000:]
    assert "Conflicts, committed with their markers for the merge request: README.md" in log

    # Template code ran in the update job, with no write token in its environment.
    seen = env_file.read_text()
    assert "CI_PIPELINE_SOURCE=schedule" in seen
    assert TOKEN not in seen and "GITOPS_TOKEN" not in seen and "CI_JOB_TOKEN" not in seen

    # The merge request: the branch and the push options GitLab reads.
    pushed = gitlab.pushes()[start:]
    head = _git(gitlab.remote, "rev-parse", "template-update").strip()
    assert pushed[0] == f"ref refs/heads/template-update {head}"
    assert set(pushed[1:]) == {
        "option merge_request.create",
        "option merge_request.target=main",
        "option merge_request.remove_source_branch",
        "option merge_request.title=Template update v0.1.0 -> v0.2.0: conflicts to resolve",
        "option merge_request.description=mlscaffold update with the recorded answers. Conflicts (markers committed, "
        "resolve them in this branch): README.md",
    }
    answers = yaml.safe_load(_git(gitlab.remote, "show", "template-update:.copier-answers.yml"))
    assert answers["_commit"] == "v0.2.0"
    assert _git(gitlab.remote, "show", "template-update:NOTES.md") == "Added by the template in v0.2.0.\n"
    readme_after = _git(gitlab.remote, "show", "template-update:README.md")
    assert "<<<<<<<" in readme_after and "by the fraud team" in readme_after and "(template v0.2)" in readme_after
    # Merged on top of main, with the template's render as the other parent: the next `mlscaffold update` merges
    # from it (the update path a person uses), not from a stale base.
    parents = _git(gitlab.remote, "rev-list", "--parents", "-n", "1", "template-update").split()[1:]
    assert parents[0] == _git(gitlab.remote, "rev-parse", "main").strip() and len(parents) == 2
    render_readme = _git(gitlab.remote, "show", f"{parents[1]}:README.md")
    assert render_readme.startswith("# Fraud Detector (template v0.2)\n")


@pytest.mark.slow
def test_mlflow_server_with_the_documented_settings_accepts_the_cluster_host(checks: tuple[Path, int, str]) -> None:
    """deploy/README.md's `mlflow server` command (real MLflow, from the project's venv the CI jobs built)."""
    checkout, _, _ = checks
    readme = (checkout / "deploy" / "README.md").read_text()
    (command,) = re.findall(r"```bash\n\s*(mlflow server .*?)\n\s*```", readme, re.S)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = checkout.parent / "mlflow-server"
    work.mkdir()
    # Only the deployment's own values change: where it listens, and the database and artifact store.
    for documented, here in {
        "--host 0.0.0.0": "--host 127.0.0.1",
        "--port 5000": f"--port {port}",
        "<database URI>": f"sqlite:///{work}/mlflow.db",
        "<artifact store URI>": str(work / "artifacts"),
    }.items():
        assert documented in command, documented
        command = command.replace(documented, here)
    argv = [str(checkout / ".venv" / "bin" / "mlflow"), *shlex.split(command.replace("\\\n", " "))[1:]]
    argv += ["--workers", "1"]
    server = subprocess.Popen(argv, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        def status(host: str) -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": host}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return int(response.status)
            except urllib.error.HTTPError as err:
                return err.code

        deadline = time.monotonic() + 90
        while True:
            try:
                first = status("mlflow.mlflow.svc.cluster.local:5000")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        assert first == 200  # the cluster URL the training steps and the servers use
        assert status("mlflow.mlflow.svc.cluster.local") == 200
        assert status("attacker.example.com") == 403  # the DNS-rebinding protection stays on
    finally:
        server.terminate()
        server.wait(timeout=30)
