"""The three-way merge of a template update: computed whole in git's object store, then applied in one step.

``git merge-tree --write-tree`` (rename-aware, the algorithm ``git merge`` uses) merges the new render into the
user's tree without touching the work tree. The plan (what ``--pretend`` prints and the summary lists) is read from
that same result, so what the plan says is what the update does. Two rules resolve what git reports as
modify/delete conflicts: a file the user deleted stays deleted, a file the template removed but the user changed
is kept. The answers file always comes from the render.

Applying the plan is the only step that writes the work tree: a clean merge becomes a merge commit (the branch
moves once); a merge with conflicts leaves git's own merge state (``MERGE_HEAD``, unmerged index entries, markers
or ``.rej`` files), so ``git commit`` concludes it and ``git merge --abort`` undoes all of it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mlscaffold.answers import ANSWERS_FILE
from mlscaffold.errors import MlscaffoldError, UserError
from mlscaffold.gitutil import git, run_git

Conflict = Literal["inline", "rej"]
Action = Literal[
    "added", "updated", "deleted", "merged", "moved", "conflict", "kept-deleted", "kept-changed", "blocked"
]
ACTION_HELP: dict[str, str] = {
    "added": "added by the template",
    "updated": "updated from the template",
    "deleted": "removed by the template",
    "merged": "your edits and the template's merged",
    "moved": "moved by the template (with your edits, if any)",
    "conflict": "your edits and the template's overlap: conflict",
    "kept-deleted": "you deleted it: stays deleted (the template's change is skipped)",
    "kept-changed": "the template removed it, but you changed it: kept",
    "blocked": "the template adds it, but an untracked or ignored file of yours is in the way: refused",
}
OURS_LABEL, THEIRS_LABEL = "HEAD", "mlscaffold/template"
_NULL = "0" * 40


@dataclass(frozen=True)
class Change:
    path: str
    action: Action
    moved_from: str | None = None

    def __str__(self) -> str:
        return f"{self.moved_from} -> {self.path}" if self.moved_from else self.path


@dataclass(frozen=True)
class Entry:
    """One unmerged index entry (``mode oid stage<TAB>path``)."""

    mode: str
    oid: str
    stage: int
    path: str


@dataclass
class Plan:
    """The merged tree (conflicted files hold markers), its unresolved conflicts and the per-file changes."""

    head: str
    theirs: str
    tree: str
    conflicts: dict[str, list[Entry]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    kept: list[Change] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def blocked(self) -> list[str]:
        return [c.path for c in self.changes if c.action == "blocked"]


def _parse(output: str) -> tuple[str, list[Entry], dict[str, str]]:
    """The tree, the unmerged entries and the conflict kind per path from ``merge-tree --write-tree -z``."""
    parts = output.split("\0")
    tree, rest = parts[0].strip(), parts[1:]
    entries: list[Entry] = []
    while rest and rest[0]:
        info, path = rest.pop(0).split("\t", 1)
        mode, oid, stage = info.split()
        entries.append(Entry(mode, oid, int(stage), path))
    rest = rest[1:]
    kinds: dict[str, str] = {}
    while len(rest) > 1 and rest[0].strip().isdigit():
        count = int(rest.pop(0))
        paths = [rest.pop(0) for _ in range(count)]
        kind, _message = rest.pop(0), rest.pop(0)
        if kind.startswith("CONFLICT"):
            for path in paths:
                kinds.setdefault(path, kind.removeprefix("CONFLICT ").strip("()"))
    return tree, entries, kinds


def plan(
    repo: Path, *, head: str, ours: str, theirs: str, base: str, root: Path, env: Mapping[str, str], scratch: Path
) -> Plan:
    """Merge ``theirs`` (the new render) into ``ours`` (HEAD, or HEAD with migrations applied): nothing but the
    object store is written."""
    done = run_git(repo, "merge-tree", "--write-tree", "-z", ours, theirs, env=env)
    if done.returncode not in (0, 1):
        raise MlscaffoldError(f"git merge-tree failed: {done.stderr.strip() or done.returncode}")
    tree, entries, kinds = _parse(done.stdout)
    by_path: dict[str, list[Entry]] = {}
    for entry in entries:
        by_path.setdefault(entry.path, []).append(entry)
    index_env = {**env, "GIT_INDEX_FILE": str(scratch / "plan-index")}
    git(repo, "read-tree", tree, env=index_env)
    lines, kept, conflicts = [], [], {}
    for path, stages in sorted(by_path.items()):
        present = {e.stage for e in stages}
        if path == ANSWERS_FILE:
            continue
        if 2 not in present:  # the user deleted it: stays deleted
            lines.append(f"0 {_NULL}\t{path}")
            kept.append(Change(path, "kept-deleted"))
        elif 3 not in present and 1 in present:  # the template removed it, the user changed it: kept
            kept.append(Change(path, "kept-changed"))
        else:
            conflicts[path] = stages
            lines.append(_relabelled(repo, tree, path, ours, theirs, env))
    answers = run_git(repo, "ls-tree", theirs, "--", ANSWERS_FILE, env=env).stdout.strip()
    if answers:
        mode, _type, rest = answers.split(" ", 2)
        lines.append(f"{mode} {rest}")
    if lines:
        git(repo, "update-index", "--index-info", env=index_env, stdin="\n".join(lines) + "\n")
    result = Plan(head, theirs, git(repo, "write-tree", env=index_env).strip(), conflicts, kinds, kept)
    return with_tree(repo, result, result.tree, base, root, env)


def with_tree(repo: Path, result: Plan, tree: str, base: str, root: Path, env: Mapping[str, str]) -> Plan:
    """The plan with ``tree`` as its merged tree (after migrations changed it), its changes listed again."""
    result.tree = tree
    result.changes = sorted(_changes(repo, result, base, root, env) + result.kept, key=lambda c: c.path)
    return result


def _relabelled(repo: Path, tree: str, path: str, ours: str, theirs: str, env: Mapping[str, str]) -> str:
    """The index line of a conflicted file whose markers name HEAD and the template (not commit ids)."""
    mode, _type, rest = git(repo, "ls-tree", tree, "--", path, env=env).strip().split(" ", 2)
    oid = rest.split("\t", 1)[0]
    text = git(repo, "cat-file", "blob", oid, env=env)
    for oid_, label in ((ours, OURS_LABEL), (theirs, THEIRS_LABEL)):
        text = text.replace(f"<<<<<<< {oid_}", f"<<<<<<< {label}").replace(f">>>>>>> {oid_}", f">>>>>>> {label}")
    new = git(repo, "hash-object", "-w", "--stdin", env=env, stdin=text).strip()
    return f"{mode} {new}\t{path}"


def _changes(repo: Path, result: Plan, base: str, root: Path, env: Mapping[str, str]) -> list[Change]:
    """What the merged tree changes in the user's tree, labelled by who changed what since the base."""
    renamed = {new: old for new, old in _renames(repo, base, result.theirs, env)}
    out = git(repo, "diff-tree", "-r", "-M", "-z", "--name-status", result.head, result.tree, env=env).split("\0")
    changes: list[Change] = []
    fields = iter(out)
    for status in fields:
        if not status:
            continue
        path = next(fields)
        moved_from = None
        if status[0] in "RC":
            moved_from, path = path, next(fields)
        action: Action
        if path in result.conflicts:
            action = "conflict"
        elif status[0] == "A" or moved_from:
            action = "blocked" if _in_the_way(root, path) else ("moved" if moved_from else "added")
        elif status[0] == "D":
            action = "deleted"
        elif _blob(repo, result.head, path, env) == _blob(repo, base, renamed.get(path, path), env):
            action = "updated"
        else:
            action = "merged"
        changes.append(Change(path, action, moved_from))
    return changes


def _renames(repo: Path, a: str, b: str, env: Mapping[str, str]) -> list[tuple[str, str]]:
    out = git(repo, "diff-tree", "-r", "-M", "-z", "--name-status", "--diff-filter=R", a, b, env=env).split("\0")
    return [(out[i + 2], out[i + 1]) for i in range(0, len(out) - 2, 3) if out[i].startswith("R")]


def _blob(repo: Path, commit: str, path: str, env: Mapping[str, str]) -> str | None:
    done = run_git(repo, "rev-parse", "-q", "--verify", f"{commit}:{path}", env=env)
    return done.stdout.strip() if done.returncode == 0 else None


def _in_the_way(root: Path, path: str) -> bool:
    """An untracked or ignored file (or a file where a folder must go) already at a path the template adds."""
    target = root / path
    if os.path.lexists(target):
        return True
    return any(parent.exists() and not parent.is_dir() for parent in target.parents if parent != root)


def check_expressible(result: Plan, conflict: Conflict, repo: Path, env: Mapping[str, str]) -> None:
    """``--conflict rej`` writes the template's hunks against the base; refuse the conflicts it cannot express."""
    if conflict != "rej":
        return
    for path, entries in result.conflicts.items():
        stages = {e.stage: e for e in entries}
        kind = result.kinds.get(path, "content")
        if set(stages) != {1, 2, 3}:
            raise UserError(f"--conflict rej cannot express the {kind} conflict in {path}: use --conflict inline")
        if any(b"\0" in _bytes(repo, e.oid, env) for e in entries):
            raise UserError(f"--conflict rej cannot express the conflict in binary file {path}: use --conflict inline")


def _bytes(repo: Path, oid: str, env: Mapping[str, str]) -> bytes:
    import subprocess

    return subprocess.run(
        ["git", "cat-file", "blob", oid], cwd=repo, capture_output=True, check=True, env={**os.environ, **env}
    ).stdout


def apply(
    repo: Path, result: Plan, *, message: str, who: Sequence[str], conflict: Conflict
) -> tuple[str | None, list[str]]:
    """Bring the plan into the work tree; return the merge commit (None when conflicts wait) and the .rej files.

    On any failure the branch, index and work tree are put back as they were.
    """
    written: list[Path] = []
    try:
        if not result.conflicts:
            commit = git(repo, *who, "commit-tree", result.tree, "-p", result.head, "-p", result.theirs, "-m", message)
            commit = commit.strip()
            git(repo, "read-tree", "-m", "-u", result.head, commit)
            git(repo, "update-ref", "-m", "mlscaffold update", "HEAD", commit, result.head)
            return commit, []
        git(repo, "read-tree", "-m", "-u", result.head, result.tree)
        lines = []
        for path, entries in result.conflicts.items():
            lines.append(f"0 {_NULL}\t{path}")
            lines += [f"{e.mode} {e.oid} {e.stage}\t{e.path}" for e in sorted(entries, key=lambda e: e.stage)]
        git(repo, "update-index", "--index-info", stdin="\n".join(lines) + "\n")
        rejects = _write_rejects(repo, result, written) if conflict == "rej" else []
        git_dir = Path(git(repo, "rev-parse", "--absolute-git-dir").strip())
        listing = "".join(f"#\t{path}\n" for path in result.conflicts)
        for name, text in (
            ("MERGE_MSG", f"{message}\n\n# Conflicts:\n{listing}"),
            ("MERGE_MODE", "no-ff"),
            ("MERGE_HEAD", f"{result.theirs}\n"),
        ):
            written.append(git_dir / name)
            (git_dir / name).write_text(text, encoding="utf-8")
        return None, rejects
    except BaseException:
        _rollback(repo, result.head, written)
        raise


def _write_rejects(repo: Path, result: Plan, written: list[Path]) -> list[str]:
    """Your version of each conflicted file, the template's hunks applied where they fit, the rest in FILE.rej."""
    rejects = []
    with tempfile.TemporaryDirectory(prefix="mlscaffold-rej-") as tmp:
        for path, entries in result.conflicts.items():
            stages = {e.stage: e for e in entries}
            (repo / path).write_bytes(_bytes(repo, stages[2].oid, {}))
            before, after = Path(tmp, "before"), Path(tmp, "after")
            before.write_bytes(_bytes(repo, stages[1].oid, {}))
            after.write_bytes(_bytes(repo, stages[3].oid, {}))
            diff = run_git(Path(tmp), "diff", "--no-index", "--no-color", "before", "after").stdout
            patch = "\n".join(_retarget(line, path) for line in diff.splitlines()) + "\n"
            written.append(repo / f"{path}.rej")
            run_git(repo, "apply", "--reject", "--whitespace=nowarn", stdin=patch)
            if (repo / f"{path}.rej").exists():
                rejects.append(f"{path}.rej")
    return rejects


def _retarget(line: str, path: str) -> str:
    if line.startswith("diff --git "):
        return f"diff --git a/{path} b/{path}"
    if line.startswith("--- "):
        return f"--- a/{path}"
    if line.startswith("+++ "):
        return f"+++ b/{path}"
    return line


def _rollback(repo: Path, head: str, written: list[Path]) -> None:
    for path in written:
        path.unlink(missing_ok=True)
    run_git(repo, "reset", "--hard", "--quiet", head)
