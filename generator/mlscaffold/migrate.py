"""copier ``_migrations``, run the way ``copier update`` runs them, for the pristine-merge update.

Same selection (``version_from < version <= version_to``, PEP 440), same condition (``when``, by default the
``after`` stage), same Jinja context (the answers, ``_stage``, ``_version_from``/``_to``/``_current``,
``_copier_python``, ``_copier_conf``) and the same environment variables (``STAGE``, ``VERSION_FROM``, ...), so one
``_migrations`` list serves both ``copier update`` and ``mlscaffold update``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlscaffold.errors import MlscaffoldError
from mlscaffold.versions import parse_version

Stage = Literal["before", "after"]
_FALSE = {"", "0", "false", "no", "off", "n", "none", "null"}


@dataclass(frozen=True)
class Migration:
    command: str | list[str]
    version: str | None
    when: str | bool
    working_directory: str


def migrations_of(config: Mapping[str, Any]) -> list[Migration]:
    result: list[Migration] = []
    for entry in config.get("_migrations") or []:
        if isinstance(entry, (str, list)):
            result.append(Migration(entry, None, "{{ _stage == 'after' }}", "."))
        elif isinstance(entry, dict) and "command" in entry:
            result.append(
                Migration(
                    entry["command"],
                    str(entry["version"]) if "version" in entry else None,
                    entry.get("when", "{{ _stage == 'after' }}"),
                    str(entry.get("working_directory", ".")),
                )
            )
    return result


def pending(config: Mapping[str, Any], version_from: str | None, version_to: str | None) -> list[Migration]:
    """The migrations an update from ``version_from`` to ``version_to`` runs (copier's rule)."""
    start, end = parse_version(version_from), parse_version(version_to)
    if start is None or end is None:
        return []
    out = []
    for migration in migrations_of(config):
        if migration.version is not None:
            at = parse_version(migration.version)
            if at is None or not (start < at <= end):
                continue
        out.append(migration)
    return out


def run_migrations(
    migrations: list[Migration],
    *,
    stage: Stage,
    project: Path,
    template_root: Path,
    answers: Mapping[str, Any],
    version_from: str | None,
    version_to: str | None,
) -> int:
    """Run the migrations of ``stage`` in ``project``; return how many ran. A failing one raises."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        undefined=StrictUndefined, extensions=["jinja2_ansible_filters.AnsibleCoreFiltersExtension"]
    )
    ran = 0
    for migration in migrations:
        extra = {
            "stage": stage,
            "version_from": version_from,
            "version_to": version_to,
            "version_current": migration.version,
            "copier_operation": "update",
        }
        context = {
            **answers,
            **{f"_{k}": v for k, v in extra.items()},
            "_copier_python": sys.executable,
            "_copier_conf": {"src_path": str(template_root), "dst_path": str(project)},
        }

        def render(value: Any, context: dict[str, Any] = context) -> str:
            return env.from_string(str(value)).render(context)

        condition = migration.when
        if not (condition if isinstance(condition, bool) else render(condition).strip().lower() not in _FALSE):
            continue
        command: str | list[str]
        command = (
            render(migration.command) if isinstance(migration.command, str) else [render(p) for p in migration.command]
        )
        variables = {k.upper(): str(v) for k, v in extra.items() if v is not None}
        done = subprocess.run(
            command,
            shell=isinstance(command, str),
            cwd=project / render(migration.working_directory),
            env={**os.environ, **variables},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise MlscaffoldError(
                f"migration {migration.version or ''} failed ({done.returncode}): {command!r}"
                + (f": {detail[-1]}" if detail else "")
            )
        ran += 1
    return ran
