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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlscaffold import pristine, sample
from mlscaffold import template as tpl
from mlscaffold._version import __version__
from mlscaffold.answers import coerce, read_answers, write_answers
from mlscaffold.errors import MlscaffoldError, UserError
from mlscaffold.gitutil import git, identity, init_repository, tree_of
from mlscaffold.template import Source

Progress = Callable[[str], None]

_VALIDATION = re.compile(r"^Validation error for question '(?P<key>[^']+)': (?P<msg>.*)$", re.S)
_CHOICE = re.compile(r"^Invalid choice for '(?P<key>[^']+)': '(?P<value>.*)' is not in (?P<valid>.*)$", re.S)


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class RenderOptions:
    """What a render takes from the command line, shared by ``new``, ``update`` and the copier fallback."""

    data: Mapping[str, Any] = field(default_factory=dict)
    defaults: bool = False
    template: str | None = None
    vcs_ref: str | None = None
    trust: bool = False
    progress: Progress = _quiet

    @property
    def interactive(self) -> bool:
        return not self.defaults and stdin_is_terminal()

    def unsafe(self, source: Source) -> bool:
        """copier runs tasks and migrations of the bundled template, or of one the user trusts."""
        return source.bundled or self.trust


@dataclass(frozen=True)
class NewResult:
    """What :func:`new_project` made."""

    path: Path
    files: int
    answers: dict[str, Any]
    commit: str | None


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
    options = RenderOptions(data or {}, defaults, template, vcs_ref, trust, progress)
    target = Path(dest).expanduser().absolute()
    check_destination(target)
    source = Source.resolve(template, vcs_ref)
    config = tpl.read_config(source.src, vcs_ref)
    answers = coerce(options.data, tpl.questions(config)) if config is not None else dict(options.data)
    data_sample = sample.prepare(answers, None if tpl.is_git_url(source.src) else source.src, config)
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
        recorded = render_template(source, render, answers, scratch=Path(tmp), defaults=defaults, options=options)
        if data_sample is not None:
            progress(f"Copying the data sample {data_sample.path} to {sample.SAMPLE_PATH}")
            data_sample.copy_into(render)
        commit = None
        if git:
            progress("Creating the git repository")
            commit = commit_new_project(render, recorded)
        files = sum(1 for p in render.rglob("*") if p.is_file() and ".git" not in p.relative_to(render).parts)
        _move_into_place(render, target)
    return NewResult(path=target, files=files, answers=recorded, commit=commit)


def commit_new_project(project: Path, recorded: Mapping[str, Any]) -> str:
    """Make ``project`` a git repository whose one commit is the pristine render (every file it holds)."""
    init_repository(project)
    tree = tree_of(project, project, {})
    who = identity(
        project,
        fallback_name=str(recorded.get("author_name", "mlscaffold")),
        fallback_email=str(recorded.get("author_email", "mlscaffold@localhost")),
    )
    title = f"Initial commit from mlscaffold {__version__}"
    commit = pristine.commit_render(project, tree, [], title, str(recorded.get("_commit", "")), who, {})
    git(project, "update-ref", "-m", "mlscaffold new", "HEAD", commit)
    return commit


def render_template(
    source: Source,
    dst: Path,
    answers: Mapping[str, Any],
    *,
    scratch: Path,
    defaults: bool,
    options: RenderOptions,
    user_defaults: Mapping[str, Any] | None = None,
    vcs_ref: str | None = None,
) -> dict[str, Any]:
    """Render ``source`` (at ``vcs_ref``, default ``source.vcs_ref``) into the new directory ``dst``; return the
    answers it recorded.

    A bundled render is made from a plain copy of the template (so a source checkout renders its working tree,
    not its last tag) and records :data:`~mlscaffold.template.TEMPLATE_REPOSITORY` at this version's tag.
    """
    src = str(_snapshot(Path(source.src), scratch / "template-snapshot")) if source.bundled else source.src
    from copier import run_copy

    with copier_errors(src):
        run_copy(
            src,
            dst,
            data=dict(answers),
            user_defaults=dict(user_defaults or {}),
            defaults=defaults,
            vcs_ref=None if source.bundled else (vcs_ref or source.vcs_ref),
            unsafe=options.unsafe(source),
            quiet=True,
            cleanup_on_error=True,
        )
    return _pin_source(dst) if source.bundled else read_answers(dst)


def stdin_is_terminal() -> bool:
    return sys.stdin is not None and sys.stdin.isatty()


def _snapshot(root: Path, into: Path) -> Path:
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    shutil.copy2(root / tpl.CONFIG_FILE, into / tpl.CONFIG_FILE)
    shutil.copytree(root / "template", into / "template", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return into


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


def _pin_source(project: Path) -> dict[str, Any]:
    """Record where the bundled template comes from: its release tag in the template repository."""
    answers = read_answers(project)
    answers.pop("_commit", None)
    answers.pop("_src_path", None)
    pinned = {"_commit": f"v{__version__}", "_src_path": tpl.TEMPLATE_REPOSITORY, **answers}
    write_answers(project, pinned)
    return pinned


def _move_into_place(render: Path, target: Path) -> None:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(render), str(target))
        return
    for child in render.iterdir():
        shutil.move(str(child), str(target / child.name))
