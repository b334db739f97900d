"""`mlscaffold check`: is the project on the newest template version, and is it sound?

Exit codes mirror ``copier check-update``: 0 up to date and valid, 2 a newer template version exists, 1 the project
is broken (no answers file, a merge left in progress, conflict markers committed, a failed validation).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlscaffold.answers import ANSWERS_FILE, read_answers
from mlscaffold.errors import MlscaffoldError
from mlscaffold.gitutil import run_git
from mlscaffold.template import source_for
from mlscaffold.validate import SKIPPED_DIRS, validate_project
from mlscaffold.versions import latest_version, parse_version

EXIT_OK, EXIT_BROKEN, EXIT_BEHIND = 0, 1, 2
_MARKER = re.compile(r"^(<{7}|>{7})( |$)", re.M)
_MAX_SCAN_BYTES = 2_000_000


@dataclass
class CheckReport:
    project: str
    current_version: str | None
    latest_version: str | None
    update_available: bool
    problems: list[str] = field(default_factory=list)
    #: Resources that could not be validated because their schemas are missing (not the project's fault).
    unverified: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems and not self.unverified

    @property
    def exit_code(self) -> int:
        if not self.valid:
            return EXIT_BROKEN
        return EXIT_BEHIND if self.update_available else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "valid": self.valid}


def check_project(
    root: Path,
    *,
    template: str | None = None,
    locations: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> CheckReport:
    answers = read_answers(root)
    problems: list[str] = []
    if not (root / ANSWERS_FILE).is_file():
        problems.append(f"{ANSWERS_FILE}: missing: the project cannot be updated without its recorded answers")
    if run_git(root, "rev-parse", "-q", "--verify", "MERGE_HEAD").returncode == 0:
        problems.append(".git: a template update or merge is in progress: resolve the conflicts and commit")
    problems += _conflict_markers(root)
    report = validate_project(root, locations, progress=progress)
    unverified = [str(p) for p in report.problems if p.missing_schema]
    problems += [str(p) for p in report.problems if not p.missing_schema]
    current = answers.get("_commit")
    latest = None
    if answers:
        source = source_for(answers, template, None)
        try:
            latest = latest_version(source)
        except MlscaffoldError as exc:
            problems.append(f"template: {exc}")
        else:
            if latest is None:
                problems.append(
                    f"template: {source.src} has no release tags (vX.Y.Z): cannot tell whether the project is behind"
                )
    newer = parse_version(latest)
    now = parse_version(str(current) if current is not None else None)
    behind = newer is not None and (now is None or newer > now)
    return CheckReport(str(root), str(current) if current is not None else None, latest, behind, problems, unverified)


def _conflict_markers(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIPPED_DIRS for part in rel.parts) or not path.is_file():
            continue
        if path.stat().st_size > _MAX_SCAN_BYTES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for match in _MARKER.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{rel.as_posix()}:{line}: unresolved conflict marker '{match.group(1)}'")
            break
    return found
