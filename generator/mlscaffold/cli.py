"""The ``mlscaffold`` command line: switches and exit codes only; the work lives in the engine modules.

Each command imports its engine module when it runs (the one deliberate exception to the package's rule of
top-level imports only): ``--help`` and ``--version`` then load nothing but Typer and the answer parser.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlscaffold._version import __version__
from mlscaffold.answers import load_data_file, parse_data_args
from mlscaffold.errors import MlscaffoldError, UserError

if TYPE_CHECKING:
    from mlscaffold.update import UpdateResult

app = typer.Typer(
    name="mlscaffold",
    help="Generate GitOps-ready machine-learning project repositories (copier + Argo).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_INTERRUPTED = 130

# Options that several commands share, declared once.
ProjectArgument = Annotated[
    Path, typer.Argument(metavar="PROJECT", help="Project directory [default: .].", show_default=False)
]
VcsRefOption = Annotated[
    str | None,
    typer.Option("--vcs-ref", metavar="REF", help="Git tag, branch or commit of --template.", show_default=False),
]
TrustOption = Annotated[bool, typer.Option("--trust", help="Allow a --template that runs tasks or migrations.")]


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlscaffold {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Generate GitOps-ready machine-learning project repositories (copier + Argo)."""


@app.command()
def new(
    dest: Annotated[
        Path,
        typer.Argument(metavar="DEST", help="Directory to create; must not exist, or be empty.", show_default=False),
    ],
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Use the default for every answer not given; never prompt.")
    ] = False,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            "-d",
            metavar="KEY=VALUE",
            help="An answer, as a YAML scalar or list; repeatable.",
            show_default=False,
        ),
    ] = None,
    data_file: Annotated[
        Path | None,
        typer.Option(
            "--data-file", metavar="FILE.yml", help="A YAML mapping of answers; --data wins.", show_default=False
        ),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="SRC",
            help="Template path or git URL [default: the one bundled with mlscaffold].",
            show_default=False,
        ),
    ] = None,
    data_sample: Annotated[
        Path | None,
        typer.Option(
            "--data-sample",
            metavar="FILE",
            help="Your own sample table (CSV, or Parquet with pyarrow): the project's data contract is inferred "
            "from it and it becomes data/sample.csv (answer data_sample).",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="COL",
            help="The label column of --data-sample (answer target) [default: the answer's default in copier.yml].",
            show_default=False,
        ),
    ] = None,
    vcs_ref: VcsRefOption = None,
    no_git: Annotated[bool, typer.Option("--no-git", help="Do not make the project a git repository.")] = False,
    trust: TrustOption = False,
) -> None:
    """Render a new ML project repository into DEST.

    Asks for every answer not given (or takes defaults with --defaults), then renders the project, makes it a git
    repository with one commit, and prints the next steps. Bad answers are reported before anything is written.
    """
    from mlscaffold.engine import new_project, stdin_is_terminal
    from mlscaffold.sample import default_target

    answers = load_data_file(data_file) if data_file is not None else {}
    answers.update(parse_data_args(data or []))
    if data_sample is not None:
        answers["data_sample"] = str(data_sample)
    if target is not None:
        answers["target"] = target  # without a data sample: refused by sample.prepare, as a --data target is
    if not defaults and stdin_is_terminal() and "data_sample" not in answers:
        # Asked here, not by copier: the contract is inferred from the file before copier asks the rest.
        answers["data_sample"] = typer.prompt(
            "Data sample (a CSV or Parquet file; empty for the generated card-transaction sample)",
            default="",
            show_default=False,
        ).strip()
        if answers["data_sample"] and "target" not in answers:
            answers["target"] = typer.prompt("Label column of the data sample", default=default_target())
    started = time.perf_counter()
    result = new_project(
        dest,
        data=answers,
        defaults=defaults,
        template=template,
        vcs_ref=vcs_ref,
        git=not no_git,
        trust=trust,
        progress=_say,
    )
    elapsed = time.perf_counter() - started
    committed = f", committed as {result.commit[:12]}" if result.commit else ""
    typer.echo(f"Created {result.path} ({result.files} files{committed}) in {elapsed:.1f} s.")
    typer.echo("Next steps:")
    typer.echo(f"  cd {_shown(result.path)}")
    typer.echo("  make install pipeline   # set up .venv, then validate, train, evaluate, gate and register")
    typer.echo("  make test               # the project's own test suite")
    typer.echo("  make serve              # serve the champion model (the project README says how to call it)")


@app.command()
def update(
    project: ProjectArgument = Path("."),
    defaults: Annotated[
        bool, typer.Option("--defaults", help="Answer new questions with their defaults; never prompt.")
    ] = False,
    data: Annotated[
        list[str] | None,
        typer.Option("--data", "-d", metavar="KEY=VALUE", help="Change an answer; repeatable.", show_default=False),
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            "--template",
            metavar="SRC",
            help="Template path or git URL [default: the recorded one; the bundled one for mlscaffold renders].",
            show_default=False,
        ),
    ] = None,
    vcs_ref: VcsRefOption = None,
    conflict: Annotated[
        str,
        typer.Option(
            "--conflict",
            metavar="inline|rej",
            help="Leave conflicts as markers in the file (inline) or the template's hunks in FILE.rej (rej).",
        ),
    ] = "inline",
    pretend: Annotated[
        bool, typer.Option("--pretend", help="Write nothing; list what would change, per file.")
    ] = False,
    trust: TrustOption = False,
    rebuild_base: Annotated[
        bool,
        typer.Option(
            "--rebuild-base",
            help="Render the project's recorded version again as the merge base (after a rebase or squash-merge "
            "dropped the last template render from the history).",
        ),
    ] = False,
    allow_downgrade: Annotated[
        bool, typer.Option("--allow-downgrade", help="Allow --vcs-ref to name a version older than the project's.")
    ] = False,
) -> None:
    """Bring a generated project to the newest template version, keeping your edits.

    Renders the new version once with the recorded answers and merges it into your branch with git (three-way,
    from the last template render). Refuses uncommitted changes. Conflicts are listed and make the exit code 1.
    On any failure the project is left exactly as it was.
    """
    from mlscaffold.update import update_project

    if conflict not in ("inline", "rej"):
        raise UserError(f"--conflict '{conflict}': choose inline or rej")
    result = update_project(
        project,
        data=parse_data_args(data or []),
        defaults=defaults,
        template=template,
        vcs_ref=vcs_ref,
        conflict="rej" if conflict == "rej" else "inline",
        pretend=pretend,
        trust=trust,
        rebuild_base=rebuild_base,
        allow_downgrade=allow_downgrade,
        progress=_say,
    )
    _report_update(project, result)


def _report_update(project: Path, result: UpdateResult) -> None:
    from mlscaffold.merge import ACTION_HELP

    versions = f"{result.from_version} -> {result.to_version}"
    via = " through copier update" if result.via_copier else ""
    if result.up_to_date and not result.via_copier:
        typer.echo(f"{project}: already up to date with the template ({result.to_version})")
        return
    for change in result.changes:
        typer.echo(f"  {change.action:13s} {change}  ({ACTION_HELP[change.action]})")
    if result.pretend:
        blocked = sum(c.action == "blocked" for c in result.changes)
        refusal = f"; the update would refuse: {blocked} file(s) of yours in the way" if blocked else ""
        typer.echo(
            f"Would update {project}{via} ({versions}): {len(result.changes)} file(s){refusal}; nothing written."
        )
        return
    for reject in result.rejects:
        _say(f"rejected hunks: {reject}")
    if result.conflicts:
        _say(f"conflict: {len(result.conflicts)} file(s) need your decision: {', '.join(result.conflicts)}")
        if result.via_copier:
            _say("Resolve them, then commit; or 'git reset --hard && git clean -fd' to undo the update.")
        elif result.rejects:
            _say(
                "Each file holds your version; apply the template's hunks from its .rej by hand, 'git add' the file, "
                "then 'git commit'; or 'git merge --abort' to undo the whole update."
            )
        else:
            _say("Resolve them, 'git add' each, then 'git commit'; or 'git merge --abort' to undo the whole update.")
        raise typer.Exit(1)
    committed = f", committed as {result.commit[:12]}" if result.commit else ""
    rebuilt = " (merge base re-established)" if result.rebuilt_base else ""
    typer.echo(f"Updated {project}{via} ({versions}){rebuilt}{committed}.")


@app.command()
def check(
    project: ProjectArgument = Path("."),
    template: Annotated[
        str | None,
        typer.Option(
            "--template", metavar="SRC", help="Template to compare with [default: as update].", show_default=False
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    schema_location: Annotated[
        list[str] | None,
        typer.Option(
            "--schema-location",
            metavar="LOC",
            help="As for validate: where custom-resource schemas are; repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Tell CI whether the project is behind the template or broken.

    Exit 0: on the newest template version and valid. Exit 2: a newer template version exists. Exit 1: broken
    (answers file missing, a merge in progress, conflict markers, or `mlscaffold validate` fails).
    """
    from mlscaffold.check import check_project
    from mlscaffold.validate import schema_locations

    if not project.is_dir():
        raise UserError(f"project '{project}' is not a directory: pass the path of a generated project")
    locations = schema_locations(schema_location or [])
    report = check_project(project.absolute(), template=template, locations=locations, progress=_say)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        for problem in [*report.problems, *report.unverified]:
            _say(problem)
        if report.problems:
            _say(f"{project}: broken ({len(report.problems)} problem(s))")
        elif report.unverified:
            _say(
                f"{project}: not verified: {len(report.unverified)} resource(s) have no schema here (the schema "
                "locations are missing or unreachable, not the project): pass --schema-location DIR"
            )
        elif report.update_available:
            typer.echo(f"{project}: update available: {report.current_version} -> {report.latest_version}")
        else:
            typer.echo(f"{project}: up to date ({report.current_version}) and valid")
    raise typer.Exit(report.exit_code)


@app.command()
def validate(
    project: ProjectArgument = Path("."),
    schema_location: Annotated[
        list[str] | None,
        typer.Option(
            "--schema-location",
            metavar="LOC",
            help="Directory, URL or {group}/{kind}_{version}.json template of custom-resource schemas; repeatable. "
            "Searched before $MLSCAFFOLD_SCHEMA_LOCATION and the public CRDs catalog.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate a generated project strictly: YAML, Kustomize builds, Kubernetes/Argo resources and CI files.

    Prints one line per problem (path[:doc]: field.path: message) and exits 1 when there is any.
    """
    from mlscaffold.validate import schema_locations, validate_project

    if not project.is_dir():
        raise UserError(f"project '{project}' is not a directory: pass the path of a generated project")
    report = validate_project(project, schema_locations(schema_location or []), progress=_say)
    for problem in report.problems:
        _say(str(problem))
    summary = f"{report.files} YAML files, {report.builds} Kustomize builds, {report.resources} resources"
    if report.problems:
        _say(f"{len(report.problems)} problem(s) in {project} ({summary})")
        raise typer.Exit(1)
    typer.echo(f"{project}: valid ({summary})")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return the exit code; every expected failure is one line on stderr."""
    debug = os.environ.get("MLSCAFFOLD_DEBUG", "") not in ("", "0")
    try:
        code = app(args=argv, prog_name="mlscaffold", standalone_mode=False)
    except MlscaffoldError as exc:
        if debug:
            raise
        _say(f"error: {exc}")
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except (KeyboardInterrupt, typer.Abort, EOFError):
        _say("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        show = getattr(exc, "show", None)
        if isinstance(exc, typer.TyperException) and callable(show):
            show()  # a usage error: Click's own message and usage line
            return 1
        if debug:
            raise
        _say(f"error: unexpected {type(exc).__name__}: {exc} (set MLSCAFFOLD_DEBUG=1 for the traceback)")
        return 1
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
