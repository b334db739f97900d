"""The few git operations mlscaffold needs, run through the git CLI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from mlscaffold.errors import MlscaffoldError


def run_git(
    cwd: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``cwd`` (with extra ``env``) and return the completed process, whatever its status."""
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            input=stdin,
            env={**os.environ, **env} if env else None,
        )
    except FileNotFoundError:
        raise MlscaffoldError("git is not installed: install git, or pass --no-git") from None


def git(cwd: Path, *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> str:
    """Run ``git args`` in ``cwd`` and return its stdout; a failure raises with git's own message."""
    done = run_git(cwd, *args, env=env, stdin=stdin)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise MlscaffoldError(f"git {args[0]} failed in {cwd}: {message[-1] if message else done.returncode}")
    return done.stdout


def config_value(cwd: Path, key: str) -> str:
    """A git config value as git sees it from ``cwd`` (empty when unset)."""
    return run_git(cwd, "config", "--get", key).stdout.strip()


def identity(cwd: Path, *, fallback_name: str, fallback_email: str) -> list[str]:
    """``-c`` options giving git an identity when the machine has none configured (a fresh CI runner).

    GIT_AUTHOR_*/GIT_COMMITTER_* variables, when set, still win over these.
    """
    options: list[str] = []
    if not config_value(cwd, "user.name"):
        options += ["-c", f"user.name={fallback_name}"]
    if not config_value(cwd, "user.email"):
        options += ["-c", f"user.email={fallback_email}"]
    return options


#: Options that make a render's files go into git exactly as written: no ignore rules but the render's own
#: (``add --force`` plus no global excludes file) and no line-ending conversion.
VERBATIM = ("-c", "core.excludesFile=/dev/null", "-c", "core.autocrlf=false", "-c", "core.safecrlf=false")


def tree_of(repo: Path, files: Path, env: Mapping[str, str]) -> str:
    """Write every file under ``files`` into ``repo``'s object store as a tree; return its id.

    ``env`` must name a scratch ``GIT_INDEX_FILE``. The user's ignore rules (``.git/info/exclude``, a global
    excludes file, ``.gitignore``) are out of play: a render is committed whole.
    """
    git(repo, *VERBATIM, f"--work-tree={files}", "add", "--all", "--force", env=env)
    return git(repo, "write-tree", env=env).strip()


def init_repository(path: Path) -> None:
    branch = config_value(path, "init.defaultBranch") or "main"
    git(path, "init", "--quiet", f"--initial-branch={branch}")
