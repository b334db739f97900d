"""Pristine renders: the commits that hold exactly what the template rendered, the bases of three-way updates.

A pristine commit carries two trailers: ``Mlscaffold-Template: vX.Y.Z`` (the version) and ``Mlscaffold-Tree:
<tree id>`` (the tree it was made with). It is recognised only when

- both are real trailers (``git interpret-trailers`` rules: the message's last paragraph), and its tree is the
  recorded one (projects made before the tree trailer existed are judged by the next rule alone);
- its parent is the previous pristine commit, or it has none.

A rebased copy of a pristine commit (new parent, new tree) or a squash-merge message quoting the trailer fails
these, so it is never taken for a base. Among the recognised commits reachable from HEAD, the base is the newest
whose answers file is the one HEAD records: when none is, the history was rewritten (or updated by other means) and
the update says so instead of merging from an older base.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlscaffold.answers import ANSWERS_FILE
from mlscaffold.gitutil import git, run_git

TEMPLATE_TRAILER = "Mlscaffold-Template"
TREE_TRAILER = "Mlscaffold-Tree"
_FIELDS = "%x1f".join(
    ("%H", "%P", "%T", f"%(trailers:key={TEMPLATE_TRAILER},valueonly,separator=%x2C)",
     f"%(trailers:key={TREE_TRAILER},valueonly,separator=%x2C)")
)  # fmt: skip


@dataclass(frozen=True)
class Pristine:
    commit: str
    version: str
    tree: str


@dataclass(frozen=True)
class _Candidate:
    commit: str
    parents: tuple[str, ...]
    tree: str
    versions: tuple[str, ...]
    trees: tuple[str, ...]


def message(title: str, version: str, tree: str) -> str:
    return f"{title}\n\n{TEMPLATE_TRAILER}: {version}\n{TREE_TRAILER}: {tree}\n"


def commit_render(
    repo: Path, tree: str, parents: Sequence[str], title: str, version: str, who: Sequence[str], env: Mapping[str, str]
) -> str:
    """A pristine commit of ``tree`` (written to the object store only: no ref moves)."""
    args = [arg for parent in parents for arg in ("-p", parent)]
    return git(repo, *who, "commit-tree", tree, *args, "-m", message(title, version, tree), env=env).strip()


def _candidates(repo: Path) -> list[_Candidate]:
    """Commits reachable from HEAD that mention the trailer, newest first (children before parents)."""
    done = run_git(repo, "log", "-z", "--topo-order", f"--grep=^{TEMPLATE_TRAILER}:", f"--format={_FIELDS}", "HEAD")
    if done.returncode != 0:
        return []
    found = []
    for record in filter(None, done.stdout.split("\0")):
        sha, parents, tree, versions, trees = [*record.strip("\n").split("\x1f"), "", "", "", ""][:5]
        found.append(
            _Candidate(
                sha,
                tuple(parents.split()),
                tree,
                tuple(v.strip() for v in versions.split(",") if v.strip()),
                tuple(t.strip() for t in trees.split(",") if t.strip()),
            )
        )
    return found


def recognised(repo: Path) -> tuple[list[Pristine], bool]:
    """The pristine commits reachable from HEAD, newest first, and whether any commit only pretends to be one."""
    candidates = _candidates(repo)
    by_sha = {c.commit: c for c in candidates}
    verdict: dict[str, bool] = {}

    def valid(sha: str) -> bool:
        chain: list[str] = []
        while sha not in verdict:
            candidate = by_sha.get(sha)
            if candidate is None or len(candidate.versions) != 1 or len(candidate.trees) > 1:
                verdict[sha] = False
                break
            if candidate.trees and candidate.trees[0] != candidate.tree:
                verdict[sha] = False
                break
            if not candidate.parents:
                verdict[sha] = True
                break
            if len(candidate.parents) > 1:
                verdict[sha] = False
                break
            chain.append(sha)
            sha = candidate.parents[0]
        for link in reversed(chain):
            verdict[link] = verdict[sha]
        return verdict[chain[0] if chain else sha]

    good = [Pristine(c.commit, c.versions[0], c.tree) for c in candidates if valid(c.commit)]
    return good, len(good) != len(candidates)


def blob(repo: Path, commit: str, path: str) -> str | None:
    done = run_git(repo, "rev-parse", "-q", "--verify", f"{commit}:{path}")
    return done.stdout.strip() if done.returncode == 0 else None


def base_for(repo: Path, pristines: Sequence[Pristine]) -> Pristine | None:
    """The newest pristine commit whose answers file is the one HEAD records."""
    answers = blob(repo, "HEAD", ANSWERS_FILE)
    return next((p for p in pristines if answers is not None and blob(repo, p.commit, ANSWERS_FILE) == answers), None)
