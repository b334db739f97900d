"""Template versions: parsing tags, the newest release of a template, and where an update goes.

Releases are tagged ``vX.Y.Z``; the template bundled with mlscaffold is at this package's own version.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.version import InvalidVersion, Version

from mlscaffold._version import __version__
from mlscaffold.errors import MlscaffoldError, UserError
from mlscaffold.gitutil import run_git
from mlscaffold.template import Source, is_git_url


class TemplateUnreachable(MlscaffoldError):
    """The template's releases cannot be listed (a failed ``git ls-remote``, a path that is not a repository)."""


def parse_version(text: str | None) -> Version | None:
    """A template version from a tag or a ``git describe`` string (``v0.2.0``, ``v0.2.0-3-gabc123``)."""
    if not text:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        match = re.match(r"^v?(\d+(?:\.\d+)*)", text)
        return Version(match.group(1)) if match else None


def bundled_version() -> str:
    return f"v{__version__}"


def release_tags(src: str) -> list[str]:
    """The tags of the template at ``src`` (a git URL or a local repository); unreachable is an error."""
    if is_git_url(src):
        done = run_git(Path.cwd(), "ls-remote", "--tags", "--refs", src)
        tags = [line.split("refs/tags/", 1)[-1] for line in done.stdout.splitlines()]
    else:
        done = run_git(Path(src), "tag", "--list")
        tags = done.stdout.split()
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"git exited with {done.returncode}"])[-1]
        raise TemplateUnreachable(f"cannot list the releases of the template {src}: {reason}")
    return tags


def latest_version(source: Source) -> str | None:
    """The newest release: this package's version for the bundled template, else the highest ``vX.Y.Z`` tag.

    None when the template has no release tags; :class:`TemplateUnreachable` when they cannot be listed.
    """
    if source.bundled:
        return bundled_version()
    versions = [(v, t) for t in release_tags(source.src) if (v := parse_version(t)) is not None and not v.is_prerelease]
    return max(versions)[1] if versions else None


def target_version(source: Source) -> str | None:
    """The version an update goes to: ``--vcs-ref`` when given, else the newest release."""
    if source.bundled:
        return bundled_version()
    return source.vcs_ref or latest_version(source)


def is_downgrade(current: str | None, target: str | None) -> bool:
    now, then = parse_version(current), parse_version(target)
    return now is not None and then is not None and then < now


def refuse_downgrade(current: str | None, target: str | None) -> None:
    if is_downgrade(current, target):
        raise UserError(
            f"the project is at template {current}; {target} is older: an update never downgrades "
            "(pass --allow-downgrade to render the older version anyway)"
        )
