"""The few git operations mlscaffold needs, run through the git CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mlscaffold.errors import MlscaffoldError


def git(cwd: Path, *args: str) -> str:
    """Run ``git args`` in ``cwd`` and return its stdout; a failure raises with git's own message."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise MlscaffoldError("git is not installed: install git, or pass --no-git") from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise MlscaffoldError(f"git {args[0]} failed in {cwd}: {message[-1] if message else done.returncode}")
    return done.stdout


def config_value(cwd: Path, key: str) -> str:
    """A git config value as git sees it from ``cwd`` (empty when unset)."""
    done = subprocess.run(["git", "config", "--get", key], cwd=cwd, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def init_and_commit(path: Path, message: str, *, fallback_name: str, fallback_email: str) -> str:
    """Make ``path`` a git repository with one commit holding every file; return the commit id."""
    branch = config_value(path, "init.defaultBranch") or "main"
    git(path, "init", "--quiet", f"--initial-branch={branch}")
    identity: list[str] = []
    if not config_value(path, "user.name"):
        identity += ["-c", f"user.name={fallback_name}"]
    if not config_value(path, "user.email"):
        identity += ["-c", f"user.email={fallback_email}"]
    git(path, "add", "--all")
    git(path, *identity, "commit", "--quiet", "--no-verify", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()
