"""The generated service against real clients: schemathesis with every check, a bounded mixed load with its peak
memory and its metrics, `serve --workers 2` scraped as Prometheus would, and a real Prometheus (Debian's, as
.ci/run installs it for promtool) evaluating the generated error-rate alert and canary analysis (issue 12).

One default render per module, its environment built with uv from the render's constraints.txt, a model trained
with the project's own `train` step, and the project's own `serve` command on a free loopback port. Slow: marked
`slow`, run in CI; schemathesis comes from its own venv ($MLSCAFFOLD_SCHEMATHESIS, installed by .ci/run).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import REPO, kubectl
from helpers import run_ok as run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(__name__)]

PACKAGE = "fraud_detector"
ENV = PACKAGE.upper() + "_"
SCHEMATHESIS_VAR = "MLSCAFFOLD_SCHEMATHESIS"
SCHEMATHESIS_DEFAULT = REPO / ".ci-tools" / "schemathesis" / "bin" / "schemathesis"
LOAD_SECONDS = 8.0  # the load test's fixed duration (it asserts counts and memory, never times)


def uv() -> str:
    path = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if path is None:
        pytest.fail("uv is not installed (.ci/run installs it into .venv): the generated project cannot be built")
    return path


def schemathesis() -> str:
    path = os.environ.get(SCHEMATHESIS_VAR) or (str(SCHEMATHESIS_DEFAULT) if SCHEMATHESIS_DEFAULT.is_file() else "")
    if not path or not Path(path).is_file():
        pytest.fail(f"schemathesis not found (${SCHEMATHESIS_VAR} or {SCHEMATHESIS_DEFAULT}): see .ci/run")
    return path


@dataclass(frozen=True)
class Project:
    path: Path
    python: Path
    model: Path
    record: dict[str, Any]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A default render with its environment built (uv, pinned as `make install` pins it) and a model trained (no
    registry needed: MODEL_PATH)."""
    path = tmp_path_factory.mktemp("api") / "fraud-detector"
    run([str(Path(sys.executable).parent / "mlscaffold"), "new", str(path), "--defaults"], cwd=path.parent)
    run([uv(), "venv", "--quiet", "--python", sys.executable, str(path / ".venv")], cwd=path)
    python = path / ".venv" / "bin" / "python"
    install = [uv(), "pip", "install", "--quiet", "-p", str(python)]
    if (path / "requirements" / "dev.txt").is_file():  # the locked requirements, then the project itself
        run([*install, "--require-hashes", "-r", "requirements/dev.txt"], cwd=path)
        run([*install, "--no-deps", "--no-build-isolation", "-e", "."], cwd=path)
    else:
        run([*install, "-c", "constraints.txt", "-e", ".[dev]"], cwd=path)
    run([str(python), "-m", PACKAGE, "train"], cwd=path, env=project_env(path))
    readme = (path / "README.md").read_text()
    match = re.search(r"curl -s http://127\.0\.0\.1:8000/predict .*?-d '(\{.*?\})'", readme, re.S)
    assert match, "the README shows a curl /predict example"
    return Project(path, python, path / "artifacts" / "model.joblib", json.loads(match.group(1)))


def project_env(path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV) and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return env | {f"{ENV}HOME": str(path)} | extra


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> int:
        return call(http.client.HTTPConnection("127.0.0.1", self.port, timeout=60), method, path, body, content_type)[0]

    def metrics(self) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return call(connection, "GET", "/metrics")[1].decode()


def call(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    content_type: str | None = None,
    keep: bool = False,
) -> tuple[int, bytes]:
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type} if content_type else {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        if not keep:
            connection.close()


@contextmanager
def serving(project: Project, log: Path, *args: str, model: Path | None = None, **env: str) -> Iterator[Server]:
    port = free_port()
    environment = project_env(
        project.path,
        **{f"{ENV}MODEL_PATH": str(model or project.model), f"{ENV}PREDICTION_LOG": str(log)},
        **env,
    )
    output = log.with_suffix(".out")
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [str(project.python), "-m", PACKAGE, "serve", "--port", str(port), *args],
            cwd=project.path,
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Server(process, port)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if server.request("GET", "/readyz") == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, output.read_text()[-3000:]
            time.sleep(0.2)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def quantity_bytes(value: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "K": 1000, "M": 1000**2, "G": 1000**3}
    for unit, factor in units.items():
        if value.endswith(unit):
            return int(float(value.removesuffix(unit)) * factor)
    return int(value)


def dev_memory_limit(project: Project) -> int:
    """resources.limits.memory of the serving container, as `kubectl kustomize` builds the dev overlay."""
    built = run([kubectl(), "kustomize", "deploy/k8s/overlays/dev"], cwd=project.path)
    for doc in yaml.safe_load_all(built):
        if doc and doc.get("kind") in ("Rollout", "Deployment"):
            (container,) = [c for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] != "istio-proxy"]
            return quantity_bytes(str(container["resources"]["limits"]["memory"]))
    raise AssertionError("the dev overlay has no serving workload")


def samples(text: str, name: str) -> dict[str, float]:
    """{label value: sample value} of a one-label metric in the Prometheus text format."""
    pattern = "^" + re.escape(name) + r'\{\w+="([^"]*)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.M)}


def outcomes(text: str) -> dict[str, float]:
    return samples(text, "predict_requests_total")


# Reads one worker's counter file of prometheus_client's multiprocess mode: [[key, value], ...].
READ_COUNTERS = (
    "import json, sys\n"
    "from prometheus_client.mmap_dict import MmapedDict\n"
    "print(json.dumps([[k, v] for k, v, _ in MmapedDict(sys.argv[1], read_mode=True).read_all_values()]))"
)


def test_schemathesis_finds_nothing_with_every_check(project: Project, tmp_path: Path) -> None:
    with serving(project, tmp_path / "predictions.jsonl") as server:
        out = subprocess.run(
            [
                schemathesis(),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "500",
                "--seed",
                "12",
                "--generation-database",
                "none",
                "--workers",
                "1",
                "--request-timeout",
                "30",
                "--no-color",
                "--report",
                "junit",
                "--report-junit-path",
                str(tmp_path / "junit.xml"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        text = server.metrics()
    summary = out.stdout[-4000:]
    assert out.returncode == 0, summary + out.stderr[-2000:]
    generated = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert generated, summary
    assert generated[1] == generated[2], summary
    assert int(generated[1]) >= 500, summary  # the run really exercised the API
    assert "No issues found" in summary
    assert outcomes(text).get("error") == 0.0  # no 5xx among thousands of generated requests
    print(f"schemathesis: {generated[1]} cases, all passed; server outcomes {outcomes(text)}")


def test_bounded_mixed_load_keeps_memory_under_the_dev_limit_and_metrics_count_every_answer(
    project: Project, tmp_path: Path
) -> None:
    record = project.record
    valid = json.dumps(record).encode()
    batch = json.dumps({"instances": [record] * 200}).encode()
    bodies: list[tuple[bytes, str | None]] = [
        (valid, "application/json"),
        (valid, "application/json"),
        (batch, "application/json"),
        (json.dumps(record | {"amount": "1290.5"}).encode(), "application/json"),  # 422
        (json.dumps(record | {"hour": True}).encode(), "application/json"),  # 422
        (valid.replace(b"}", b', "x": NaN}'), "application/json"),  # 422 (invalid JSON)
        (b"[" * 200_000 + b"]" * 200_000, "application/json"),  # 422 (nested too deeply)
        (json.dumps({"note": "x" * 1_000_000}).encode(), "application/json"),  # under 1 MiB: 422, not echoed
        (b'{"pad": "' + b"x" * 50_000_000 + b'"}', "application/json"),  # 50 MB: 413 from its Content-Length
        (valid, "text/plain"),  # 415
    ]
    limit = dev_memory_limit(project)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def client(offset: int, port: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = offset
        while not stop.is_set():
            body, content_type = bodies[i % len(bodies)]
            i += 1
            status, _ = call(connection, "POST", "/predict", body, content_type, keep=True)
            with lock:
                statuses[status] += 1
        connection.close()

    with serving(project, tmp_path / "predictions.jsonl") as server:
        before = peak_rss_bytes(server.process.pid)
        threads = [threading.Thread(target=client, args=(n * 3, server.port)) for n in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(LOAD_SECONDS)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        peak = peak_rss_bytes(server.process.pid)
        text = server.metrics()
    counted = outcomes(text)
    total = sum(statuses.values())
    print(
        f"load: {total} answers {dict(statuses)}; peak RSS {peak / 2**20:.0f} MiB (at start {before / 2**20:.0f} MiB)"
    )
    assert set(statuses) == {200, 413, 415, 422}, statuses
    assert min(statuses.values()) >= 3, statuses  # every kind of request was answered, more than once
    assert peak < limit, f"peak RSS {peak} bytes >= the dev overlay's limit {limit}"
    assert counted == {"ok": statuses[200], "invalid": statuses[413] + statuses[415] + statuses[422],
                       "unavailable": 0, "error": 0}  # fmt: skip
    errors = samples(text, "predict_errors_total")
    assert errors["too_large"] == statuses[413]
    assert errors["unsupported_media_type"] == statuses[415]
    assert errors["validation"] + errors["invalid_json"] == statuses[422]
    assert re.search(rf"^predict_latency_seconds_count {statuses[200]}\.0$", text, re.M)


def test_two_workers_report_every_request_on_every_scrape(project: Project, tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    requests = 200
    body = json.dumps({"instances": [project.record] * 1000}).encode()  # busy for a while: the other worker accepts
    with serving(project, tmp_path / "predictions.jsonl", "--workers", "2", TMPDIR=str(tmp)) as server:
        (metrics_dir,) = tmp.iterdir()  # run() made it for prometheus_client's multiprocess mode
        answers: list[int] = []

        def send(count: int) -> None:
            for _ in range(count):  # a new connection each time: the kernel hands it to either worker
                answers.append(server.request("POST", "/predict", body, "application/json"))

        threads = [threading.Thread(target=send, args=(requests // 4,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert answers == [200] * requests
        per_worker = {}
        for file in metrics_dir.glob("counter_*.db"):
            values = json.loads(run([str(project.python), "-c", READ_COUNTERS, str(file)], cwd=tmp_path))
            per_worker[file.stem] = sum(v for k, v in values if '"predict_requests_total"' in k and '"ok"' in k)
        texts = [server.metrics() for _ in range(12)]  # either worker answers a scrape
    scrapes = [outcomes(text) for text in texts]
    model_info = [re.findall(r"^model_info\{.*\} (\S+)$", text, re.M) for text in texts]
    print(f"workers: ok per worker {per_worker}; scrapes {[s['ok'] for s in scrapes]}")
    assert len(per_worker) == 2, per_worker
    assert all(count > 0 for count in per_worker.values()), per_worker  # both served: one alone would prove nothing
    assert sum(per_worker.values()) == requests
    assert [scrape["ok"] for scrape in scrapes] == [requests] * len(scrapes)  # all workers, whichever answers
    assert model_info == [["1.0"]] * len(texts)  # one series for the served model (the live workers' maximum)
    assert not metrics_dir.exists()  # removed when the server stopped


# A bundle whose every prediction raises (its encoder says it is not fitted): a model that fails in production.
BREAK_MODEL = (
    "import sys\n"
    "from pathlib import Path\n"
    f"from {PACKAGE}.model import ModelBundle\n"
    "bundle = ModelBundle.load(Path(sys.argv[1]))\n"
    "bundle.encoder.fitted = False\n"
    "bundle.save(Path(sys.argv[2]))"
)


def prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.fail("prometheus is not on PATH (Debian: apt-get install prometheus; .ci/run installs it)")
    return path


def query(port: int, expr: str) -> list[dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    status, body = call(connection, "GET", "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body[:500]
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def test_prometheus_sees_the_500s_in_the_error_rate_alert_and_the_canary_analysis(
    project: Project, tmp_path: Path
) -> None:
    """A real Prometheus scrapes a stable server and a canary whose model fails, with the generated alert rules;
    the error-rate alert and the canary's success-rate analysis (as rendered) must both see the 500s."""
    broken = tmp_path / "broken.joblib"
    run([str(project.python), "-c", BREAK_MODEL, str(project.model), str(broken)], cwd=tmp_path)
    namespace = "fraud-detector-dev"
    rule_doc = yaml.safe_load((project.path / "deploy/monitoring/prometheusrule.yaml").read_text())
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_doc["spec"]))
    analysis = yaml.safe_load((project.path / "deploy/rollouts/success-rate.yaml").read_text())
    success_rate = analysis["spec"]["metrics"][0]["provider"]["prometheus"]["query"]
    (alert,) = [
        rule
        for group in rule_doc["spec"]["groups"]
        if group["name"].endswith("-dev")
        for rule in group["rules"]
        if rule.get("alert", "").endswith("HighErrorRate")
    ]
    valid = json.dumps(project.record).encode()
    invalid = json.dumps(project.record | {"hour": "noon"}).encode()
    with (
        serving(project, tmp_path / "stable.jsonl") as stable,
        serving(project, tmp_path / "canary.jsonl", model=broken) as canary,
    ):
        port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(tmp_path / "rules.yml")],
            "scrape_configs": [
                {
                    "job_name": "serving",
                    "static_configs": [
                        {"targets": [f"127.0.0.1:{stable.port}"],
                         "labels": {"namespace": namespace, "rollouts_pod_template_hash": "stable"}},
                        {"targets": [f"127.0.0.1:{canary.port}"],
                         "labels": {"namespace": namespace, "rollouts_pod_template_hash": "canary"}},
                    ],
                }
            ],
        }  # fmt: skip
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        stop = threading.Event()
        answers: Counter[tuple[str, int]] = Counter()

        def traffic() -> None:
            while not stop.is_set():
                for name, server in (("stable", stable), ("canary", canary)):
                    for body in (valid, valid, invalid):
                        answers[name, server.request("POST", "/predict", body, "application/json")] += 1
                time.sleep(0.02)

        sender = threading.Thread(target=traffic)
        server = subprocess.Popen(
            [prometheus(), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        sender.start()
        try:
            # Bounded wait until rate() has two scrapes of the canary's failures (not an assertion on time).
            deadline = time.monotonic() + 120
            seen = 'sum(rate(predict_requests_total{rollouts_pod_template_hash="canary", outcome="error"}[2m])) > 0'
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError, AssertionError):
                    if query(port, seen) and query(port, 'count(up{job="serving"} == 1) == 2'):
                        break
                time.sleep(0.5)
            rates = {
                pod: query(
                    port, success_rate.replace("{{args.namespace}}", namespace).replace("{{args.pod-hash}}", pod)
                )
                for pod in ("stable", "canary")
            }
            firing = query(port, alert["expr"])
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            rules = json.loads(call(connection, "GET", "/api/v1/rules")[1])["data"]["groups"]
        finally:
            stop.set()
            sender.join(timeout=60)
            server.terminate()
            server.wait(timeout=60)
    print(f"prometheus: answers {dict(answers)}; success rate {rates}; error-rate alert {firing}")
    assert answers["canary", 500] > 0 and answers["canary", 200] == 0, answers
    assert answers["stable", 500] == 0 and answers["stable", 200] > 0, answers
    assert float(rates["stable"][0]["value"][1]) == 1.0  # the stable pods succeed
    assert float(rates["canary"][0]["value"][1]) == 0.0  # the analysis fails the canary: a rollback
    assert firing, "the error-rate alert's expression sees no failures"
    assert float(firing[0]["value"][1]) > 0.05
    unhealthy = [(r["name"], r.get("lastError")) for g in rules for r in g["rules"] if r["health"] != "ok"]
    assert unhealthy == []
