"""`mlscaffold new` at a terminal (a real pseudo-terminal, the real CLI and copier): it asks for the data sample and
its label column first, infers the contract, and copier asks nothing the sample decided (problem_type)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import yaml

# Every answer but the data sample's, its target's and problem_type's: the only prompts left are mlscaffold's.
GIVEN = {
    "project_name": "Prompted",
    "python_version": "3.11",
    "ml_framework": "sklearn",
    "primary_metric": "roc_auc",
    "metric_threshold": 0.6,
    "model_registry": "none",
    "ci_provider": "none",
    "environments": ["dev"],
    "deployment_strategy": "rolling",
    "drift_detection": True,
    "retrain_schedule": "0 3 * * 1",
    "use_gpu": False,
}
DEADLINE = 300.0  # seconds for the whole session: a hang fails the test, it is not a timing assertion


class Terminal:
    """A child process on a pseudo-terminal: what it printed so far, and typing into it."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.fd, child = pty.openpty()
        env = {**os.environ, "TERM": "dumb", "COLUMNS": "200", "LINES": "50"}
        self.process = subprocess.Popen(args, stdin=child, stdout=child, stderr=child, cwd=cwd, env=env)
        os.close(child)
        self.output = ""
        self.started = time.monotonic()

    def read(self) -> bool:
        """Read what is there; False once the child closed the terminal."""
        ready, _, _ = select.select([self.fd], [], [], 0.5)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child exited
            return False
        self.output += chunk.decode("utf-8", "replace")
        return bool(chunk)

    def expect(self, text: str) -> None:
        while text not in self.output:
            assert time.monotonic() - self.started < DEADLINE, f"no {text!r} in:\n{self.output}"
            assert self.read(), f"exited before {text!r}:\n{self.output}"

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def finish(self) -> int:
        """Read to the end, answering any further prompt with its default (Enter); the exit code."""
        answered = 0
        while self.read():
            assert time.monotonic() - self.started < DEADLINE, self.output
            if self.output.count("\U0001f3a4") > answered:  # copier's prompt marker
                answered += 1
                self.type("\r")
        return self.process.wait()


def test_new_prompts_for_the_data_sample_and_target_and_not_the_problem_type(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text("x,kind,label\n" + "".join(f"{i * 0.5},{'ab'[i % 2]},{i % 2}\n" for i in range(40)))
    answers = tmp_path / "answers.yml"
    answers.write_text(yaml.safe_dump(GIVEN))
    dest = tmp_path / "proj"
    terminal = Terminal(
        [sys.executable, "-m", "mlscaffold", "new", str(dest), "--no-git", "--data-file", str(answers)], tmp_path
    )
    terminal.expect("Data sample")
    terminal.type(f"{table}\r")
    terminal.expect("Label column of the data sample [target]")  # the default: copier.yml's target default
    terminal.type("label\r")
    code = terminal.finish()
    assert code == 0, terminal.output
    assert "Kind of prediction" not in terminal.output  # problem_type: the sample decided it
    recorded = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert (recorded["data_sample"], recorded["target"], recorded["problem_type"]) == (
        "table.csv",
        "label",
        "classification",
    )
    assert (dest / "data" / "sample.csv").read_bytes() == table.read_bytes()
