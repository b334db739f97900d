"""The cluster path, run here for real: the generated image built with podman (runc, host network) and run as the
manifests declare, the Argo training DAG executed task by task in that image (tests/argo_runner.py), a real
`mlflow server` on loopback as the registry, then the server container pinned to the version the DAG registered.

Stand-ins, because they cannot exist here: the base image is Debian bookworm built by debootstrap and imported under
the Dockerfile's FROM name (.ci/build-base-image: no registry can be pulled from); Argo's controller is
tests/argo_runner.py (no Kubernetes API server runs here). Slow: each image builds in minutes.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from argo_runner import PODMAN, run_workflow
from helpers import REPO, render, run

pytestmark = [pytest.mark.slow, pytest.mark.image, pytest.mark.xdist_group(__name__)]
TAG = "local-test"
BASE_SCRIPT = REPO / ".ci" / "build-base-image"


def podman() -> list[str]:
    if shutil.which("podman") is None or not Path("/usr/sbin/runc").exists():
        message = "podman and runc are not installed (.ci/run installs them: apt-get install podman runc debootstrap)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return PODMAN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def built(project: Path, folder: str) -> list[dict[str, Any]]:
    done = run(["kubectl", "kustomize", str(project / folder)])
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if isinstance(doc, dict)]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc.get("kind") == kind]


def workflow_template(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """The WorkflowTemplate labelled app.kubernetes.io/component `component` (training, batch-scoring)."""
    (found,) = [
        doc
        for doc in by_kind(docs, "WorkflowTemplate")
        if doc["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
    ]
    return found


class Image:
    """A render and its two images, built once by the project's own `make image` with podman: the server's
    (`name`, target serve) and the pipeline steps' (`pipeline`, target pipeline), named as the manifests name them
    at tag TAG."""

    def __init__(self, root: Path, answers: dict[str, str]) -> None:
        podman()
        self.answers = answers
        self.project = render(root / "project", answers)
        self.pipelines = built(self.project, "deploy/argo-workflows")
        template = workflow_template(self.pipelines, "training")
        declared = template["spec"]["templates"][1]["container"]["image"]
        match = re.fullmatch(r"(\S+):\{\{workflow\.parameters\.image-tag\}\}(\S*)", declared)
        assert match, (
            f"the pipelines' image {declared}: expected <repository>:{{workflow.parameters.image-tag}}<suffix>"
        )
        repository, suffix = match.groups()
        self.name, self.pipeline = f"{repository}:{TAG}", f"{repository}:{TAG}{suffix}"
        dockerfile = (self.project / "Dockerfile").read_text()
        bases = set(re.findall(r"^FROM (\S+)", dockerfile, flags=re.M)) - set(re.findall(r"AS (\S+)", dockerfile))
        for base in bases:
            qualified = base if "/" in base.split(":")[0] else f"docker.io/library/{base}"
            done = run(["bash", str(BASE_SCRIPT), qualified])
            assert done.returncode == 0, done.stdout + done.stderr
            self.base_size = int(json.loads(run([*PODMAN, "image", "inspect", qualified]).stdout)[0]["Size"])
        started = time.perf_counter()
        done = run(["make", "image", f"TAG={TAG}", f"CONTAINER={' '.join(PODMAN)}",
                    "BUILD_ARGS=--format docker --network=host --pull=never"], cwd=self.project)  # fmt: skip
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        self.build_seconds = time.perf_counter() - started
        inspect = json.loads(run([*PODMAN, "image", "inspect", self.name, self.pipeline]).stdout)
        self.size, self.pipeline_size = (int(found["Size"]) for found in inspect)
        check = inspect[0].get("Healthcheck") or inspect[0]["Config"].get("Healthcheck") or {}
        self.healthcheck: list[str] = check.get("Test", [])
        self.package = next(p.name for p in (self.project / "src").iterdir() if p.is_dir())

    def make_data(self, out: Path, name: str, *args: str) -> Path:
        """`make-data` run in the pipeline image as uid 10001: the CSV `out/name`."""
        out.mkdir(parents=True, exist_ok=True)
        out.chmod(0o777)
        made = run([*PODMAN, "run", "--rm", "--network=none", "--user", "10001:10001", "--volume", f"{out}:/out",
                    "--entrypoint", "python", self.pipeline, "-m", self.package, "make-data", *args,
                    "--out", f"/out/{name}"])  # fmt: skip
        assert made.returncode == 0, made.stdout + made.stderr
        return out / name

    def serving_container(self, overlay: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The serving container of an overlay's build, and its environment with ConfigMap references resolved."""
        docs = built(self.project, f"deploy/k8s/overlays/{overlay}")
        workload = (by_kind(docs, "Rollout") or by_kind(docs, "Deployment"))[0]
        container = workload["spec"]["template"]["spec"]["containers"][0]
        maps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind(docs, "ConfigMap")}
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            env.update(maps[source["configMapRef"]["name"]])
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = str(item["value"])
            else:
                ref = item["valueFrom"]["configMapKeyRef"]
                env[item["name"]] = maps[ref["name"]][ref["key"]]
        return container, env


IMAGES = {"default": {}, "xgboost": {"ml_framework": "xgboost"}}


@pytest.fixture(scope="module")
def default_image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return Image(tmp_path_factory.mktemp("image-default"), IMAGES["default"])


@pytest.fixture(scope="module", params=sorted(IMAGES))
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """The default image (shared with the drift tests) and a non-default one (XGBoost)."""
    if request.param == "default":
        built_image: Image = request.getfixturevalue("default_image")
        return built_image
    return Image(tmp_path_factory.mktemp(f"image-{request.param}"), IMAGES[request.param])


@pytest.fixture(scope="module")
def mlflow(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on loopback, run from the project's pipeline image (as a cluster would run one)."""
    store = tmp_path_factory.mktemp("mlflow-store")
    store.chmod(0o777)
    port = free_port()
    name = f"mlflow-{port}"
    cmd = [
        *PODMAN, "run", "-d", "--name", name, "--network=host", "--user", "10001:10001", "--volume", f"{store}:/mlflow",
        "--entrypoint", "mlflow", image.pipeline, "server", "--host", "127.0.0.1", "--port", str(port),
        "--backend-store-uri", "sqlite:////mlflow/mlflow.db", "--artifacts-destination", "/mlflow/artifacts",
        "--serve-artifacts", "--workers", "1",
    ]  # fmt: skip
    done = run(cmd)
    assert done.returncode == 0, done.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", seconds=120, container=name)
        yield url
    finally:
        run([*PODMAN, "rm", "-f", name])


def wait_for(url: str, *, seconds: float, container: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    logs = run([*PODMAN, "logs", container])
    pytest.fail(f"{url} not ready in {seconds} s: {logs.stdout[-2000:]}{logs.stderr[-2000:]}")


def call(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class PullRequestAPI(http.server.BaseHTTPRequestHandler):
    """The smallest stand-in for GitHub's REST API: records each call, answers a created pull request."""

    calls: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        answer = json.dumps({"html_url": f"http://127.0.0.1/pull/{len(self.calls)}", "number": len(self.calls)})
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def gitops_remote(image: Image, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The GitOps repository as a bare repository served by `git daemon` on loopback (a stand-in for GitHub's
    git hosting), and a local HTTP endpoint standing in for its pull-request API."""
    root = tmp_path_factory.mktemp("gitops")
    work = root / "work"
    shutil.copytree(image.project, work)
    for args in (
        ("init", "-q", "-b", "main"),
        ("add", "-A"),
        ("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "render"),
    ):
        subprocess.run(["git", *args], cwd=work, check=True, capture_output=True)
    bare = root / "repos" / "fraud-detector.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1",
         f"--port={port}", f"--base-path={root / 'repos'}", str(root / "repos")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    PullRequestAPI.calls = []
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PullRequestAPI)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        yield {"url": f"git://127.0.0.1:{port}/fraud-detector.git", "bare": bare,
               "api": f"http://127.0.0.1:{api.server_address[1]}", "calls": PullRequestAPI.calls}  # fmt: skip
    finally:
        api.shutdown()
        daemon.terminate()
        daemon.wait(timeout=10)


@pytest.fixture(scope="module")
def trained(
    image: Image, mlflow: str, gitops_remote: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The training WorkflowTemplate run in the image, task by task, as declared, against the real MLflow server,
    proposing its version to the stand-in GitOps remote."""
    template = workflow_template(image.pipelines, "training")
    declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    parameters = {"image-tag": TAG, "mlflow-tracking-uri": mlflow, "gitops-repo": gitops_remote["url"],
                  "git-api-url": gitops_remote["api"]}  # fmt: skip
    secret = next(  # the Secret propose reads its token from, as the manifest names it
        e["valueFrom"]["secretKeyRef"]
        for t in template["spec"]["templates"] if "container" in t
        for e in t["container"].get("env", []) if "secretKeyRef" in e.get("valueFrom", {})
    )  # fmt: skip
    result = run_workflow(
        template["spec"],
        tmp_path_factory.mktemp("training-run"),
        parameters={k: v for k, v in parameters.items() if k in declared},
        secrets={secret["name"]: {secret["key"]: "test-token"}},
        repository=tmp_path_factory.mktemp("empty-artifact-repository"),  # nothing under data-key: the sample
    )
    return {"run": result, "template": template, "parameters": parameters, "secret": secret}


def test_the_training_dag_runs_in_the_image_as_declared(trained: dict[str, Any]) -> None:
    result = trained["run"]
    tasks = [t["name"] for t in trained["template"]["spec"]["templates"][0]["dag"]["tasks"]]
    assert tasks == ["validate-data", "train", "evaluate", "gate", "register", "propose"]
    for name, task in result.tasks.items():
        assert task.phase == "Succeeded", f"{name}: {task.log[-3000:]}"
    assert result.tasks["train"].outputs, "train produced no artifacts"
    assert result.phase == "Succeeded"


def test_the_propose_step_pushes_the_set_model_change_and_opens_one_pull_request(
    trained: dict[str, Any], gitops_remote: dict[str, Any]
) -> None:
    bare = gitops_remote["bare"]
    branches = subprocess.run(["git", "branch", "--list"], cwd=bare, capture_output=True, text=True).stdout
    (branch,) = [b.strip(" *") for b in branches.splitlines() if b.strip(" *").startswith("model/")]
    diff = subprocess.run(["git", "diff", "main", branch, "--", "deploy/k8s/overlays"], cwd=bare,
                          capture_output=True, text=True).stdout  # fmt: skip
    assert re.search(r'^\+.*_MODEL_VERSION|^\+\s+value: "1"', diff, flags=re.M), diff
    (call,) = gitops_remote["calls"]
    assert call["path"].endswith("/pulls") and call["body"]["head"] == branch
    assert call["auth"] == "Bearer test-token"
    assert "v1" in call["body"]["body"]


def test_the_training_dag_trains_on_data_from_the_artifact_repository(
    image: Image, trained: dict[str, Any], tmp_path: Path
) -> None:
    """Training data as an input artifact: the sample data as two CSVs under a key prefix of the repository
    stand-in, fetched by every step to the declared folder and trained on (data-path set to it, as deploy/README.md
    says). The same rows as the first run's: the new version scores as the one before it and passes the gate."""
    template, secret = trained["template"], trained["secret"]
    data_dir = training_data_dir(image.pipelines)
    header, *rows = image.make_data(tmp_path / "made", "sample.csv").read_text().splitlines(keepends=True)
    prefix = tmp_path / "repository" / "datasets" / "fraud"
    prefix.mkdir(parents=True)
    half = len(rows) // 2
    (prefix / "part-1.csv").write_text(header + "".join(rows[:half]))
    (prefix / "part-2.csv").write_text(header + "".join(rows[half:]))
    declared = {p["name"] for p in template["spec"]["arguments"]["parameters"]}
    parameters = {**trained["parameters"], "data-key": "datasets/fraud/", "data-path": data_dir}
    result = run_workflow(
        template["spec"], tmp_path / "run", parameters={k: v for k, v in parameters.items() if k in declared},
        secrets={secret["name"]: {secret["key"]: "test-token"}}, repository=tmp_path / "repository",
    )  # fmt: skip
    for name, task in result.tasks.items():
        assert task.phase == "Succeeded", f"{name}: {task.log[-3000:]}"
    fingerprint = json.loads((result.tasks["validate-data"].outputs["artifacts"] / "data.json").read_text())
    assert (fingerprint["path"], fingerprint["rows"]) == (data_dir, len(rows))


def test_the_batch_scoring_dag_scores_a_file_from_the_repository_and_writes_its_outputs_there(
    image: Image, mlflow: str, trained: dict[str, Any], tmp_path: Path
) -> None:
    """The batch-scoring WorkflowTemplate run in the image as declared, after training registered v1: a CSV made in
    the image (one row broken) under the input key, scored by the version training registered, the predictions
    (JSON lines, by the output-format parameter) and the bad row written back under their keys."""
    template = workflow_template(image.pipelines, "batch-scoring")
    declared = {p["name"]: str(p["value"]) for p in template["spec"]["arguments"]["parameters"]}
    (task,) = template["spec"]["templates"][0]["dag"]["tasks"]
    step = next(t for t in template["spec"]["templates"] if t["name"] == task["template"])
    assert step["container"]["command"][3] == "predict-batch"
    header, *rows = image.make_data(tmp_path / "made", "records.csv", "--rows", "300").read_text().splitlines()
    columns = header.split(",")
    broken = rows[41].split(",")
    broken[columns.index("channel")] = "carrier-pigeon"  # not one of its categories
    rows[41] = ",".join(broken)
    repository = tmp_path / "repository"
    source = repository / "incoming" / "records.csv"
    source.parent.mkdir(parents=True)
    source.write_text("\n".join([header, *rows]) + "\n")
    parameters = {"image-tag": TAG, "mlflow-tracking-uri": mlflow, "input-key": "incoming/records.csv",
                  "output-key": "scored/predictions.jsonl", "output-format": "jsonl", "errors-key": "scored/bad.jsonl",
                  "model-version": "1"}  # fmt: skip
    assert set(parameters) <= set(declared), sorted(set(parameters) - set(declared))
    assert declared["input-format"] == "csv" and declared["model-version"] == ""
    result = run_workflow(
        template["spec"], tmp_path / "run", parameters={k: v for k, v in parameters.items() if k in declared},
        repository=repository,
    )  # fmt: skip
    run_log = result.tasks[task["name"]].log
    assert result.phase == "Succeeded", run_log[-3000:]
    assert "with model version 1" in run_log, run_log[-2000:]
    predictions = [json.loads(line) for line in (repository / "scored" / "predictions.jsonl").read_text().splitlines()]
    assert [p["row"] for p in predictions] == [n for n in range(1, len(rows) + 1) if n != 42]
    for record in predictions:
        assert set(record) == {"row", "prediction", "probability"}
        assert 0.0 <= record["probability"] <= 1.0 and record["prediction"] == int(record["probability"] >= 0.5)
    (bad,) = [json.loads(line) for line in (repository / "scored" / "bad.jsonl").read_text().splitlines()]
    assert bad["row"] == 42 and "'channel'" in bad["error"] and "carrier-pigeon" in bad["error"], bad


def test_the_server_container_serves_the_registered_version_read_only(
    image: Image, mlflow: str, trained: dict[str, Any]
) -> None:
    container, env = image.serving_container("dev")
    assert container["image"].rsplit(":", 1)[0] == image.name.rsplit(":", 1)[0], "the servers run the serve image"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    env = {**env, "MLFLOW_TRACKING_URI": mlflow}
    version_var = next(name for name in env if name.endswith("_MODEL_VERSION"))
    env[version_var] = "1"
    port = int(container["args"][container["args"].index("--port") + 1])
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            pytest.fail(f"port {port} (the container's port) is busy on this machine")
    name = f"serve-{free_port()}"
    cmd = [*PODMAN, "run", "-d", "--name", name, "--network=host", "--read-only", "--tmpfs", "/tmp",
           "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]  # fmt: skip
    for key, value in env.items():
        cmd += ["--env", f"{key}={value}"]
    cmd += ["--entrypoint", container["command"][0], image.name, *container["command"][1:], *container["args"]]
    assert run(cmd).returncode == 0
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/readyz", seconds=120, container=name)
        status, ready = call(f"{base}/readyz")
        assert (status, ready["model_version"]) == (200, "1")
        schema = yaml.safe_load((image.project / "data" / "schema.yaml").read_text())
        record = example_record(schema)
        status, body = call(f"{base}/predict", record)
        assert status == 200, body
        assert body["model_version"] == "1"
        check = image.healthcheck
        assert check and check[0] in ("CMD", "CMD-SHELL"), check
        probe = run([*PODMAN, "exec", name, *(check[1:] if check[0] == "CMD" else ["sh", "-c", check[1]])])
        assert probe.returncode == 0, probe.stderr
    finally:
        run([*PODMAN, "rm", "-f", name])


MB = 1_000_000
#: The serving image's own layers (the venv, the user, params) for the default render: the issue's budget.
SERVE_APP_LAYER_MAX = 300 * MB


def importable(image: str, module: str) -> bool:
    done = run([*PODMAN, "run", "--rm", "--network=none", "--entrypoint", "python", image, "-c", f"import {module}"])
    return done.returncode == 0


def test_the_serving_image_carries_only_what_serving_needs(image: Image) -> None:
    """The serve target leaves out MLflow's server (Flask, SQLAlchemy) and the pipeline's libraries (pandas too),
    which the pipeline target has; its own layers stay within budget for the default render; a pipeline step run in
    it says so in one line."""
    app_layer = image.size - image.base_size
    print(
        f"\n{image.name}: serve {image.size / MB:.0f} MB (app layer {app_layer / MB:.0f} MB), pipeline "
        f"{image.pipeline_size / MB:.0f} MB, base {image.base_size / MB:.0f} MB; built in {image.build_seconds:.0f} s"
    )
    if not image.answers:  # the default render: the budget
        assert app_layer <= SERVE_APP_LAYER_MAX, f"serve app layer {app_layer / MB:.0f} MB"
    assert image.size < image.pipeline_size
    for module in ("pandas", "pandera", "flask", "sqlalchemy"):  # pandas: scikit-learn would import it (~1 s)
        assert not importable(image.name, module), f"the serving image has {module}"
        assert importable(image.pipeline, module), f"the pipeline image lacks {module}"
    done = run([*PODMAN, "run", "--rm", "--network=none", "--entrypoint", "python", image.name, "-m", image.package,
                "validate-data"])  # fmt: skip
    assert done.returncode == 1 and "pandas is not installed here" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr


def training_data_dir(pipelines: list[dict[str, Any]]) -> str:
    """Where the training WorkflowTemplate's steps receive the training-data input artifact."""
    templates = workflow_template(pipelines, "training")["spec"]["templates"]
    (path,) = {
        a["path"] for t in templates for a in t.get("inputs", {}).get("artifacts", []) if a["name"] == "training-data"
    }
    return str(path)


def example_record(schema: dict[str, Any]) -> dict[str, Any]:
    """One valid request record from the data contract (the middle of each range, the first category)."""
    record: dict[str, Any] = {}
    for name, column in schema["features"].items():
        if column.get("categories"):
            record[name] = column["categories"][0]
        else:
            low, high = column.get("min", 0), column.get("max", 1)
            value = (low + high) / 2
            record[name] = int(value) if column.get("dtype") == "int" else float(value)
    return record


@pytest.fixture(scope="module")
def drift_monitor(default_image: Image, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The drift CronWorkflow's workflow, and a repository stand-in holding a shifted window (made in the image)."""
    cron = by_kind(default_image.pipelines, "CronWorkflow")
    (monitor,) = [doc for doc in cron if "drift" in doc["metadata"]["name"]]
    repository = tmp_path_factory.mktemp("artifact-repository")
    key = {p["name"]: p["value"] for p in monitor["spec"]["workflowSpec"]["arguments"]["parameters"]}[
        "current-window-key"
    ]
    made = default_image.make_data(tmp_path_factory.mktemp("window"), "current.csv", "--shift", "1.0", "--seed", "7")
    (repository / key).parent.mkdir(parents=True)
    shutil.copy2(made, repository / key)  # the window under its key: a CSV with labels
    empty = tmp_path_factory.mktemp("empty-repository")
    return {"spec": monitor["spec"]["workflowSpec"], "repository": repository, "empty": empty, "key": key,
            "data_dir": training_data_dir(default_image.pipelines)}  # fmt: skip


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no drift", {"drift": "Succeeded", "retrain": "Omitted", "check-failed": "Omitted", "run": "Succeeded"}),
        ("drift", {"drift": "Failed", "retrain": "Succeeded", "check-failed": "Skipped", "run": "Succeeded"}),
        ("broken check", {"drift": "Failed", "retrain": "Skipped", "check-failed": "Failed", "run": "Failed"}),
    ],
)
def test_the_drift_dag_branches_as_declared(
    drift_monitor: dict[str, Any], tmp_path: Path, case: str, expected: dict[str, str]
) -> None:
    """exit 0: done; exit 3 (drift): the retraining Workflow is created; any other exit: the run fails."""
    parameters = {"image-tag": TAG, "pushgateway-url": ""}
    repository = drift_monitor["repository"]
    if case == "no drift":  # the reference (the seeded sample) against itself
        parameters["current-data-path"] = "/work/data/sample.csv"
    elif case == "broken check":  # nothing under the window's key: no current data
        repository = drift_monitor["empty"]
    result = run_workflow(drift_monitor["spec"], tmp_path, parameters=parameters, repository=repository)
    phases = {name: task.phase for name, task in result.tasks.items()}
    assert {**phases, "run": result.phase} == expected, {n: t.log[-1500:] for n, t in result.tasks.items()}
    exit_code = result.tasks["drift"].exit_code
    assert exit_code == {"no drift": 0, "drift": 3}.get(case, exit_code) and (case != "broken check" or exit_code != 3)
    if case == "drift":
        (workflow,) = result.tasks["retrain"].created
        assert workflow["kind"] == "Workflow"
        assert workflow["spec"]["workflowTemplateRef"]["name"].endswith("-training")
        passed = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
        assert passed["data-key"] == drift_monitor["key"], "retraining trains on the window's key"
        assert passed["data-path"] == drift_monitor["data_dir"], passed
