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

from packaging.version import InvalidVersion, Version

from mlscaffold.engine import ANSWERS_FILE, read_answers
from mlscaffold.gitutil import run_git
from mlscaffold.template import is_git_url
from mlscaffold.validate import SKIPPED_DIRS, validate_project

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

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        if self.problems:
            return EXIT_BROKEN
        return EXIT_BEHIND if self.update_available else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "valid": self.valid}


def parse_version(text: str | None) -> Version | None:
    """A template version from a tag or a ``git describe`` string (``v0.2.0``, ``v0.2.0-3-gabc123``)."""
    if not text:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        match = re.match(r"^v?(\d+(?:\.\d+)*)", text)
        return Version(match.group(1)) if match else None


def latest_version(src: str, bundled: bool) -> str | None:
    """The newest release of the template: this package's own version, or the highest ``vX.Y.Z`` tag of ``src``."""
    if bundled:
        from mlscaffold import __version__

        return f"v{__version__}"
    if is_git_url(src):
        done = run_git(Path.cwd(), "ls-remote", "--tags", "--refs", src)
        tags = [line.split("refs/tags/", 1)[-1] for line in done.stdout.splitlines()]
    else:
        tags = run_git(Path(src), "tag", "--list").stdout.split()
    versions = [(v, t) for t in tags if (v := parse_version(t)) is not None and not v.is_prerelease]
    return max(versions)[1] if versions else None


def check_project(
    root: Path,
    *,
    template: str | None = None,
    locations: Sequence[str] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> CheckReport:
    from mlscaffold.update import source_for

    answers = read_answers(root)
    problems: list[str] = []
    if not (root / ANSWERS_FILE).is_file():
        problems.append(f"{ANSWERS_FILE}: missing: the project cannot be updated without its recorded answers")
    if run_git(root, "rev-parse", "-q", "--verify", "MERGE_HEAD").returncode == 0:
        problems.append(".git: a template update or merge is in progress: resolve the conflicts and commit")
    problems += _conflict_markers(root)
    problems += [str(p) for p in validate_project(root, locations, progress=progress).problems]
    current = answers.get("_commit")
    latest = None
    if answers:
        source = source_for(answers, template, None)
        latest = latest_version(source.src, source.bundled)
    newer = parse_version(latest)
    now = parse_version(str(current) if current is not None else None)
    behind = newer is not None and (now is None or newer > now)
    return CheckReport(str(root), str(current) if current is not None else None, latest, behind, problems)


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
