"""Rendering a new project: checks first, then copier into a scratch directory, then one move into place.

Nothing here prints or imports a CLI library: progress goes through a callback, failures raise
:class:`~mlscaffold.errors.MlscaffoldError`. Only copier's public API is called.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from copier import run_copy

from mlscaffold import template as tpl
from mlscaffold.answers import coerce
from mlscaffold.errors import MlscaffoldError, UserError
from mlscaffold.gitutil import init_and_commit

Progress = Callable[[str], None]
ANSWERS_FILE = ".copier-answers.yml"
#: The trailer that marks a commit holding a pristine render of the template (the base of the next update).
TEMPLATE_TRAILER = "Mlscaffold-Template"
ANSWERS_HEADER = "# Changes here will be overwritten by Copier; NEVER EDIT MANUALLY\n"

_VALIDATION = re.compile(r"^Validation error for question '(?P<key>[^']+)': (?P<msg>.*)$", re.S)
_CHOICE = re.compile(r"^Invalid choice for '(?P<key>[^']+)': '(?P<value>.*)' is not in (?P<valid>.*)$", re.S)


@dataclass(frozen=True)
class NewResult:
    """What :func:`new_project` made."""

    path: Path
    files: int
    answers: dict[str, Any]
    commit: str | None


def _quiet(_: str) -> None:
    pass


def check_destination(dest: Path) -> None:
    """DEST must not exist, or be an empty directory: anything else is left untouched."""
    if dest.is_symlink() and not dest.exists():
        raise UserError(f"destination '{dest}' is a dangling symlink: choose a new or empty directory")
    if not dest.exists():
        return
    if not dest.is_dir():
        raise UserError(f"destination '{dest}' exists and is a file: choose a new or empty directory")
    if any(dest.iterdir()):
        raise UserError(f"destination '{dest}' exists and is not empty: choose a new or empty directory")


def new_project(
    dest: Path | str,
    *,
    data: Mapping[str, Any] | None = None,
    defaults: bool = False,
    template: str | None = None,
    vcs_ref: str | None = None,
    git: bool = True,
    trust: bool = False,
    progress: Progress = _quiet,
) -> NewResult:
    """Render a new project into ``dest``.

    ``data`` holds answers (raw ``--data`` strings or typed values); ``defaults`` answers every other question with
    its default instead of prompting. Without ``template`` the template bundled with mlscaffold is used, and the
    answers file records :data:`~mlscaffold.template.TEMPLATE_REPOSITORY` at the tag of this version.
    """
    from mlscaffold import __version__

    target = Path(dest).expanduser().absolute()
    check_destination(target)
    source = Source.resolve(template, vcs_ref)
    config = tpl.read_config(source.src, vcs_ref)
    answers = coerce(data or {}, tpl.questions(config)) if config is not None else dict(data or {})
    if not defaults and not stdin_is_terminal():
        missing = [q.name for q in tpl.questions(config or {}).values() if q.asked and q.name not in answers]
        if missing or config is None:
            raise UserError(
                f"cannot ask for the {len(missing) or ''} answers not given: standard input is not a terminal; "
                "pass --defaults, or give the answers with --data KEY=VALUE or --data-file FILE"
            )

    with tempfile.TemporaryDirectory(prefix="mlscaffold-new-") as tmp:
        render = Path(tmp) / "project"
        progress(f"Rendering the project into {target}")
        recorded = render_template(
            source, render, answers, scratch=Path(tmp), defaults=defaults, unsafe=source.bundled or trust
        )
        commit = None
        if git:
            progress("Creating the git repository")
            commit = init_and_commit(
                render,
                f"Initial commit from mlscaffold {__version__}\n\n{TEMPLATE_TRAILER}: {recorded.get('_commit', '')}",
                fallback_name=str(recorded.get("author_name", "mlscaffold")),
                fallback_email=str(recorded.get("author_email", "mlscaffold@localhost")),
            )
        files = sum(1 for p in render.rglob("*") if p.is_file() and ".git" not in p.relative_to(render).parts)
        _move_into_place(render, target)
    return NewResult(path=target, files=files, answers=recorded, commit=commit)


@dataclass(frozen=True)
class Source:
    """Where a render comes from: the bundled template, or a path / git URL (at ``vcs_ref``)."""

    src: str
    bundled: bool
    vcs_ref: str | None = None

    @classmethod
    def resolve(cls, template: str | None, vcs_ref: str | None = None) -> Source:
        if template is None:
            return cls(str(tpl.bundled_template()), bundled=True, vcs_ref=vcs_ref)
        return cls(_template_source(template), bundled=False, vcs_ref=vcs_ref)


def render_template(
    source: Source,
    dst: Path,
    answers: Mapping[str, Any],
    *,
    scratch: Path,
    defaults: bool,
    unsafe: bool,
    user_defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Render ``source`` into the new directory ``dst``; return the answers it recorded.

    A bundled render is made from a plain copy of the template (so a source checkout renders its working tree,
    not its last tag) and records :data:`~mlscaffold.template.TEMPLATE_REPOSITORY` at this version's tag.
    """
    from mlscaffold import __version__

    src = str(_snapshot(Path(source.src), scratch / "template-snapshot")) if source.bundled else source.src
    _run_copy(
        src,
        dst,
        dict(answers),
        defaults=defaults,
        vcs_ref=None if source.bundled else source.vcs_ref,
        unsafe=unsafe,
        user_defaults=dict(user_defaults or {}),
    )
    return _pin_source(dst, version=__version__) if source.bundled else read_answers(dst)


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _template_source(template: str) -> str:
    """Local template paths become absolute (copier records them literally); URLs pass through."""
    if tpl.is_git_url(template):
        return template
    path = Path(template).expanduser()
    if not path.is_dir():
        raise UserError(f"--template '{template}': no such directory; expected a copier template path or git URL")
    return str(path.absolute())


def _snapshot(root: Path, into: Path) -> Path:
    into.mkdir(parents=True)
    shutil.copy2(root / tpl.CONFIG_FILE, into / tpl.CONFIG_FILE)
    shutil.copytree(root / "template", into / "template", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


def _run_copy(
    src: str,
    dst: Path,
    data: dict[str, Any],
    *,
    defaults: bool,
    vcs_ref: str | None,
    unsafe: bool,
    user_defaults: dict[str, Any],
) -> None:
    with copier_errors(src):
        run_copy(
            src,
            dst,
            data=data,
            user_defaults=user_defaults,
            defaults=defaults,
            vcs_ref=vcs_ref,
            unsafe=unsafe,
            quiet=True,
            cleanup_on_error=True,
        )


@contextlib.contextmanager
def copier_errors(src: str) -> Iterator[None]:
    """Run a copier call quietly and turn the errors it raises on bad input into one-line :class:`UserError`."""
    from copier.errors import CopierError, InteractiveSessionError, UnsafeTemplateError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    except InteractiveSessionError:
        raise UserError(
            "cannot ask the questions: standard input is not a terminal; "
            "pass --defaults, or give the answers with --data KEY=VALUE or --data-file FILE"
        ) from None
    except UnsafeTemplateError:
        raise UserError(f"the template '{src}' runs tasks or migrations: pass --trust if you trust it") from None
    except ValueError as exc:
        raise answer_error(exc) from None
    except CopierError as exc:
        raise UserError(_first_line(str(exc)) or type(exc).__name__) from None


def answer_error(exc: ValueError) -> MlscaffoldError:
    text = str(exc).strip()
    if match := _VALIDATION.match(text):
        return UserError(f"{match['key']}: {' '.join(match['msg'].split())}")
    if match := _CHOICE.match(text):
        return UserError(f"{match['key']}: '{match['value']}' is not a valid choice: choose one of {match['valid']}")
    return UserError(f"invalid answer: {_first_line(text)}")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def read_answers(project: Path) -> dict[str, Any]:
    path = project / ANSWERS_FILE
    if not path.is_file():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return dict(loaded) if isinstance(loaded, dict) else {}


def _pin_source(project: Path, *, version: str) -> dict[str, Any]:
    """Record where the bundled template comes from: its release tag in the template repository."""
    answers = read_answers(project)
    answers.pop("_commit", None)
    answers.pop("_src_path", None)
    pinned = {"_commit": f"v{version}", "_src_path": tpl.TEMPLATE_REPOSITORY, **answers}
    body = yaml.safe_dump(pinned, sort_keys=False, default_flow_style=False, allow_unicode=True)
    (project / ANSWERS_FILE).write_text(ANSWERS_HEADER + body, encoding="utf-8")
    return pinned


def _move_into_place(render: Path, target: Path) -> None:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(render), str(target))
        return
    for child in render.iterdir():
        shutil.move(str(child), str(target / child.name))
