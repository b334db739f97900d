"""Where the copier template lives and what it asks.

The template ships inside the wheel (``mlscaffold/_template``); in a source checkout it is the repository root.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlscaffold.errors import UserError

#: Where releases of this template are tagged (``vX.Y.Z``); recorded as ``_src_path`` for renders of the bundled copy.
TEMPLATE_REPOSITORY = "https://github.com/mlscaffold/mlscaffold.git"
CONFIG_FILE = "copier.yml"


def bundled_template() -> Path:
    """The template that ships with this mlscaffold: the wheel's copy, or the source checkout it runs from."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_template", here.parents[1]):
        if (candidate / CONFIG_FILE).is_file() and (candidate / "template").is_dir():
            return candidate
    raise UserError(
        f"the template bundled with mlscaffold is missing under {here} (a broken install): "
        "reinstall mlscaffold, or pass --template <a copier template path or git URL>"
    )


@dataclass(frozen=True)
class Source:
    """Where a render comes from: the bundled template, or a path / git URL (at ``vcs_ref``)."""

    src: str
    bundled: bool
    vcs_ref: str | None = None

    @classmethod
    def resolve(cls, template: str | None, vcs_ref: str | None = None) -> Source:
        if template is None:
            return cls(str(bundled_template()), bundled=True, vcs_ref=vcs_ref)
        return cls(_template_source(template), bundled=False, vcs_ref=vcs_ref)

    @property
    def is_git_repository(self) -> bool:
        """A local template that is a git checkout (so its tags select versions)."""
        return not self.bundled and not is_git_url(self.src) and (Path(self.src) / ".git").exists()


def source_for(recorded: Mapping[str, Any], template: str | None, vcs_ref: str | None) -> Source:
    """The template an update or check of a project uses: ``--template``, else the one its answers record."""
    if template is not None:
        return Source.resolve(template, vcs_ref)
    src_path = recorded.get("_src_path")
    if src_path in (None, TEMPLATE_REPOSITORY):
        if vcs_ref is not None:
            raise UserError(
                f"--vcs-ref '{vcs_ref}' needs --template: the installed mlscaffold carries only its own version"
            )
        return Source.resolve(None)
    return Source.resolve(str(src_path), vcs_ref)


def _template_source(template: str) -> str:
    """Local template paths become absolute (copier records them literally); URLs pass through."""
    if is_git_url(template):
        return template
    path = Path(template).expanduser()
    if not path.is_dir():
        raise UserError(f"--template '{template}': no such directory; expected a copier template path or git URL")
    return str(path.absolute())


@dataclass(frozen=True)
class Question:
    """One copier question, as far as mlscaffold checks answers before copier sees them."""

    name: str
    type: str
    choices: tuple[str, ...] | None
    multiselect: bool
    asked: bool


def is_git_url(src: str) -> bool:
    """A remote template (a URL, scp-style ``git@host:path`` or copier's ``gh:``/``gl:`` shortcuts), not a path."""
    return "://" in src or src.startswith(("git@", "gh:", "gl:"))


def read_config(src: str, vcs_ref: str | None = None) -> dict[str, Any] | None:
    """The template's copier.yml as a mapping, or None when ``src`` is remote (copier checks it after cloning)."""
    import yaml

    if is_git_url(src):
        return None
    root = Path(src)
    if vcs_ref:
        shown = subprocess.run(
            ["git", "-C", str(root), "show", f"{vcs_ref}:{CONFIG_FILE}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if shown.returncode != 0:
            raise UserError(f"--vcs-ref '{vcs_ref}': no {CONFIG_FILE} at that ref of {src}")
        text = shown.stdout
    else:
        path = root / CONFIG_FILE
        if not path.is_file():
            raise UserError(f"--template '{src}': no {CONFIG_FILE} there; expected a copier template directory")
        text = path.read_text(encoding="utf-8")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{src}/{CONFIG_FILE} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise UserError(f"{src}/{CONFIG_FILE} is not a mapping of questions")
    return config


def questions(config: dict[str, Any]) -> dict[str, Question]:
    """The questions of a copier.yml mapping, in order (settings, keys starting with ``_``, excluded)."""
    result: dict[str, Question] = {}
    for name, spec in config.items():
        if name.startswith("_"):
            continue
        if not isinstance(spec, dict):
            # copier's short form `key: default` is a str/bool/... question with that default.
            spec = {"default": spec, "type": _infer_type(spec)}
        choices = spec.get("choices")
        if isinstance(choices, dict):
            choices = list(choices.values())
        result[name] = Question(
            name=name,
            type=str(spec.get("type") or _infer_type(spec.get("default"))),
            choices=tuple(str(c.get("value") if isinstance(c, dict) else c) for c in choices) if choices else None,
            multiselect=bool(spec.get("multiselect", False)),
            asked=spec.get("when", True) is not False,
        )
    return result


def _infer_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, dict)):
        return "yaml"
    return "str"
