"""`mlscaffold update`: bring a project to a newer template version with a three-way git merge.

Every render mlscaffold makes is committed as a *pristine* commit (see :mod:`mlscaffold.pristine`): the project's
first commit, then one per update, merged into the user's branch, so the last render lives in the project's own
history. An update is a short pipeline of steps, each in its own method of :class:`Update`:

1. ``preflight``: the project is a clean, complete (not shallow) git work tree with nothing paused;
2. ``find_base``: the last pristine render the branch really contains (or, with ``--rebuild-base``, the recorded
   version rendered again); a rewritten or missing base is refused, never merged from an older one;
3. ``migrate``: the template's ``before`` migrations, run on a scratch checkout of HEAD;
4. ``render``: the new version, once, with the recorded answers, committed on top of the base (object store only);
5. ``plan``: ``git merge-tree`` merges the render into the (migrated) tree, still in the object store;
6. ``apply``: one step writes the work tree: a merge commit, or git's merge state with the conflicts.

Nothing before ``apply`` writes the branch, the index or the work tree; ``apply`` undoes itself on failure. So an
update that fails at any step leaves the project exactly as it was. ``--pretend`` runs steps 1-5 with a scratch
object store. A project without any pristine commit (made by plain ``copier copy``) is updated through
``copier update``, announced as such.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from mlscaffold import merge, pristine, sample
from mlscaffold import template as tpl
from mlscaffold.answers import ANSWERS_FILE, coerce, parse_answers, read_answers, version_of
from mlscaffold.engine import RenderOptions, copier_errors, render_template
from mlscaffold.errors import MlscaffoldError, UserError
from mlscaffold.gitutil import git, identity, run_git, tree_of
from mlscaffold.merge import ACTION_HELP, Change, Conflict
from mlscaffold.migrate import Migration, Stage, pending, run_migrations
from mlscaffold.template import Source, source_for
from mlscaffold.versions import bundled_version, refuse_downgrade, target_version

__all__ = ["ACTION_HELP", "Change", "UpdateOptions", "UpdateResult", "update_project"]


@dataclass(frozen=True)
class UpdateOptions:
    render: RenderOptions = field(default_factory=RenderOptions)
    conflict: Conflict = "inline"
    pretend: bool = False
    rebuild_base: bool = False
    allow_downgrade: bool = False


@dataclass
class UpdateResult:
    """What an update did (or, with ``pretend``, would do)."""

    from_version: str | None
    to_version: str | None
    changes: list[Change] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)
    commit: str | None = None
    pretend: bool = False
    via_copier: bool = False
    migrations: int = 0
    rebuilt_base: bool = False

    @property
    def up_to_date(self) -> bool:
        return not self.changes and not self.conflicts and not self.rebuilt_base


def update_project(
    project: Path | str,
    *,
    data: Mapping[str, Any] | None = None,
    defaults: bool = False,
    template: str | None = None,
    vcs_ref: str | None = None,
    conflict: Conflict = "inline",
    pretend: bool = False,
    trust: bool = False,
    rebuild_base: bool = False,
    allow_downgrade: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> UpdateResult:
    """Update the project at ``project`` to the newest template version (or ``vcs_ref`` of ``template``)."""
    render = RenderOptions(data or {}, defaults, template, vcs_ref, trust, progress)
    return Update(Path(project), UpdateOptions(render, conflict, pretend, rebuild_base, allow_downgrade)).run()


class Update:
    """One update of one project, as steps; see the module docstring."""

    def __init__(self, project: Path, options: UpdateOptions) -> None:
        self.root = project.expanduser().absolute()
        self.options = options
        self.say = options.render.progress

    # -- the pipeline -------------------------------------------------------------------------------------------
    def run(self) -> UpdateResult:
        self.preflight()
        recorded = read_answers(self.root)
        source = source_for(recorded, self.options.render.template, self.options.render.vcs_ref)
        pristines, impostors = pristine.recognised(self.root)
        if not pristines and not impostors:
            return CopierUpdate(self.root, self.options, source).run(recorded)
        target = target_version(source)
        if not self.options.allow_downgrade:
            refuse_downgrade(version_of(recorded), target)
        config = tpl.read_config(source.src, target if source.is_git_repository else None)
        questions = tpl.questions(config) if config is not None else {}
        changes = coerce(self.options.render.data, questions) if config is not None else dict(self.options.render.data)
        migrations = pending(config or {}, version_of(recorded), target)
        if migrations and not self.options.render.unsafe(source):
            raise UserError(f"the template {source.src} runs migrations: pass --trust if you trust it")
        with self.scratch() as work:
            base = self.find_base(work, pristines, recorded, source)
            ours, answers = self.migrate(work, migrations, "before", source, target, recorded)
            theirs, new_recorded = self.render(work, source, base, answers, changes, questions)
            result = UpdateResult(version_of(recorded), version_of(new_recorded), pretend=self.options.pretend)
            result.migrations = len(migrations)
            result.rebuilt_base = base.commit not in {p.commit for p in pristines}
            if not result.rebuilt_base and ours == "HEAD" and theirs.tree == base.tree:
                return result
            plan = self.plan(work, ours, theirs.commit, base)
            plan = self.migrate_after(work, plan, migrations, source, target, new_recorded, base)
            result.changes = plan.changes
            result.conflicts = sorted(plan.conflicts)
            if self.options.pretend:
                return result
            self.apply(work, plan, result)
        return result

    # -- the steps ----------------------------------------------------------------------------------------------
    def preflight(self) -> None:
        """The project is the top of a complete git work tree, nothing uncommitted, nothing paused."""
        root = self.root
        if not root.is_dir():
            raise UserError(f"project '{root}' is not a directory: pass the path of a generated project")
        if not (root / ANSWERS_FILE).is_file():
            raise UserError(f"'{root}' has no {ANSWERS_FILE}: it was not generated by mlscaffold or copier")
        top = run_git(root, "rev-parse", "--show-toplevel")
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root.resolve():
            raise UserError(f"'{root}' is not the top of a git repository: update needs the project's git history")
        if run_git(root, "rev-parse", "-q", "--verify", "HEAD").returncode != 0:
            raise UserError(f"'{root}' has no commits yet: commit the project first, then update")
        if git(root, "rev-parse", "--is-shallow-repository").strip() == "true":
            raise UserError(
                f"'{root}' is a shallow clone: the last template render may be cut off from the history; "
                "run 'git fetch --unshallow' (in CI: fetch-depth: 0) and update again"
            )
        for marker, what in (
            ("MERGE_HEAD", "a merge"),
            ("rebase-merge", "a rebase"),
            ("rebase-apply", "a rebase or git am"),
            ("CHERRY_PICK_HEAD", "a cherry-pick"),
            ("REVERT_HEAD", "a revert"),
        ):
            if Path(root, git(root, "rev-parse", "--git-path", marker).strip()).exists():
                raise UserError(f"'{root}' has {what} in progress: finish it (or abort it), then update")
        status = git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
        if status:
            raise UserError(
                f"'{root}' has uncommitted changes ({len(status)} path(s), e.g. {status[0][3:]}): "
                "commit or stash them first"
            )
        markers = run_git(root, "grep", "-n", "-I", "-E", "^(<{7}|>{7})( |$)", "HEAD", "--")
        if markers.returncode == 0 and markers.stdout:
            where = markers.stdout.splitlines()[0].removeprefix("HEAD:").split(":", 2)
            raise UserError(
                f"'{root}' has conflict markers committed ({where[0]}:{where[1]}): resolve them and commit first"
            )

    def find_base(
        self, work: Work, pristines: list[pristine.Pristine], recorded: Mapping[str, Any], source: Source
    ) -> pristine.Pristine:
        """The pristine render HEAD's answers file comes from; or, with --rebuild-base, that version rendered again."""
        base = pristine.base_for(self.root, pristines)
        version = version_of(recorded)
        if base is not None and not self.options.rebuild_base:
            return base
        if not self.options.rebuild_base:
            last = f"the newest one in this branch is {pristines[0].version} at {pristines[0].commit[:12]}"
            raise UserError(
                f"the template render this project was last updated to ({version}) is not in this branch's history "
                f"({last if pristines else 'none is left'}): it was rebased, squash-merged or updated by other "
                f"means; merging from an older render would undo your work. Run 'mlscaffold update --rebuild-base' "
                f"to render {version} again as the merge base"
            )
        at_hand = self._template_at(source, version)
        self.say(f"Rendering the recorded version {version} again as the merge base")
        render = work.dir / "base"
        render_template(
            at_hand,
            render,
            {k: v for k, v in recorded.items() if not k.startswith("_")},
            scratch=work.dir,
            defaults=True,
            options=self.options.render,
            vcs_ref=None if at_hand.bundled else version,
        )
        sample.carry_over(recorded, self.root, "HEAD", render, work.env)
        tree = tree_of(self.root, render, work.index("base"))
        parents = [pristines[0].commit] if pristines else []
        commit = pristine.commit_render(
            self.root, tree, parents, f"Template render {version} (re-established)", str(version), self.who(recorded),
            work.env,
        )  # fmt: skip
        return pristine.Pristine(commit, str(version), tree)

    def migrate(
        self,
        work: Work,
        migrations: list[Migration],
        stage: Stage,
        source: Source,
        target: str | None,
        recorded: Mapping[str, Any],
    ) -> tuple[str, dict[str, Any]]:
        """Run the ``before`` migrations on a scratch checkout of HEAD: the commit to merge into, and the answers."""
        if not migrations:
            return "HEAD", dict(recorded)
        self.say(f"Running {len(migrations)} template migration(s) ({version_of(recorded)} -> {target}), {stage} stage")
        checkout, tree, ran = self._run_stage(work, "HEAD", migrations, stage, source, target, recorded)
        if not ran or tree == git(self.root, "rev-parse", "HEAD^{tree}", env=work.env).strip():
            return "HEAD", dict(recorded)
        message = f"Template migrations to {target}"
        commit = git(self.root, *self.who(recorded), "commit-tree", tree, "-p", "HEAD", "-m", message, env=work.env)
        return commit.strip(), read_answers(checkout)

    def migrate_after(
        self,
        work: Work,
        plan: merge.Plan,
        migrations: list[Migration],
        source: Source,
        target: str | None,
        recorded: Mapping[str, Any],
        base: pristine.Pristine,
    ) -> merge.Plan:
        """Run the ``after`` migrations on a scratch checkout of the merged tree."""
        if not migrations:
            return plan
        _checkout, tree, ran = self._run_stage(work, plan.tree, migrations, "after", source, target, recorded)
        if not ran or tree == plan.tree:
            return plan
        return merge.with_tree(self.root, plan, tree, base.commit, self.root, work.env)

    def render(
        self,
        work: Work,
        source: Source,
        base: pristine.Pristine,
        answers: Mapping[str, Any],
        changes: Mapping[str, Any],
        questions: Mapping[str, tpl.Question],
    ) -> tuple[pristine.Pristine, dict[str, Any]]:
        """Render the new version once and commit it on top of the base (object store only)."""
        kept = {  # the recorded answers the new version still asks (settings and computed values dropped)
            k: v
            for k, v in answers.items()
            if not k.startswith("_") and (not questions or (k in questions and questions[k].asked))
        }
        interactive = self.options.render.interactive
        self.say(f"Rendering the template with the recorded answers (was {version_of(answers) or 'unknown'})")
        out = work.dir / "project"
        recorded = render_template(
            source,
            out,
            changes if interactive else {**kept, **changes},
            scratch=work.dir,
            defaults=not interactive,
            options=self.options.render,
            user_defaults=kept if interactive else None,
        )
        sample.carry_over(recorded, self.root, base.commit, out, work.env)
        tree = tree_of(self.root, out, work.index("render"))
        version = str(recorded.get("_commit", ""))
        parents = [base.commit]
        commit = pristine.commit_render(
            self.root, tree, parents, f"Template render {version}", version, self.who(recorded), work.env
        )
        return pristine.Pristine(commit, version, tree), recorded

    def plan(self, work: Work, ours: str, theirs: str, base: pristine.Pristine) -> merge.Plan:
        """Merge the render into the user's tree in the object store: the per-file plan."""
        head = git(self.root, "rev-parse", "HEAD").strip()
        ours_commit = git(self.root, "rev-parse", ours, env=work.env).strip()
        if base.commit not in git(self.root, "rev-list", "--parents", "-n", "1", theirs, env=work.env):
            raise MlscaffoldError("internal error: the render is not committed on its base")
        if git(self.root, "merge-base", ours_commit, theirs, env=work.env).strip() != base.commit:
            # A re-established base: record it as merged into the user's tree, so it is the merge base.
            tree = git(self.root, "rev-parse", f"{ours_commit}^{{tree}}", env=work.env).strip()
            who = self.who({})
            ours_commit = git(
                self.root, *who, "commit-tree", tree, "-p", ours_commit, "-p", base.commit, "-m", "base", env=work.env
            ).strip()
        return merge.plan(
            self.root, head=head, ours=ours_commit, theirs=theirs, base=base.commit, root=self.root, env=work.env,
            scratch=work.dir,
        )  # fmt: skip

    def apply(self, work: Work, plan: merge.Plan, result: UpdateResult) -> None:
        """Refuse what would overwrite the user's files; then write the work tree in one step."""
        if plan.blocked:
            raise UserError(
                f"the template {result.to_version} adds {', '.join(plan.blocked)}, where an untracked or ignored "
                "file of yours is: move it away (or commit it), then update again; nothing was changed"
            )
        merge.check_expressible(plan, self.options.conflict, self.root, work.env)
        self.say(f"Merging the template's changes ({len(plan.changes)} files) into your branch")
        message = f"Update the mlscaffold template to {result.to_version} (from {result.from_version})"
        result.commit, result.rejects = merge.apply(
            self.root, plan, message=message, who=self.who(read_answers(self.root)), conflict=self.options.conflict
        )

    # -- helpers ------------------------------------------------------------------------------------------------
    def _run_stage(
        self,
        work: Work,
        tree_ish: str,
        migrations: list[Migration],
        stage: Stage,
        source: Source,
        target: str | None,
        recorded: Mapping[str, Any],
    ) -> tuple[Path, str, int]:
        """One stage of migrations on a scratch checkout of ``tree_ish``: the checkout, its tree, how many ran."""
        checkout = work.checkout(tree_ish, stage)
        ran = run_migrations(
            migrations,
            stage=stage,
            project=checkout,
            template_root=self._materialize(source, target, work.dir),
            answers={k: v for k, v in recorded.items() if not k.startswith("_")},
            version_from=version_of(recorded),
            version_to=target,
        )
        return checkout, tree_of(self.root, checkout, work.index(f"migrated-{stage}")), ran

    def who(self, answers: Mapping[str, Any]) -> list[str]:
        return identity(
            self.root,
            fallback_name=str(answers.get("author_name", "mlscaffold")),
            fallback_email=str(answers.get("author_email", "mlscaffold@localhost")),
        )

    @contextmanager
    def scratch(self) -> Iterator[Work]:
        with tempfile.TemporaryDirectory(prefix="mlscaffold-update-") as tmp:
            yield Work(self.root, Path(tmp), pretend=self.options.pretend)

    def _template_at(self, source: Source, version: str | None) -> Source:
        """The template at the project's recorded version, where it is at hand."""
        if source.bundled:
            if version != bundled_version():
                raise UserError(
                    f"cannot render {version} again: the installed mlscaffold carries only {bundled_version()}; "
                    f"pass --template <a checkout of mlscaffold with the tag {version}>"
                )
            return source
        if not source.is_git_repository and not tpl.is_git_url(source.src):
            raise UserError(f"cannot render {version} again from {source.src}: it is not a git repository with tags")
        return replace(source, vcs_ref=version)

    @staticmethod
    def _materialize(source: Source, version: str | None, scratch: Path) -> Path:
        """A directory holding the template at ``version``, for the migration scripts it ships."""
        if source.bundled or not (source.is_git_repository or tpl.is_git_url(source.src)):
            return Path(source.src)
        into = scratch / "template-at-version"
        if not into.exists():
            branch = ["--branch", version] if version else []
            git(scratch, "clone", "--quiet", "--depth", "1", *branch, source.src, str(into))
        return into


@dataclass
class Work:
    """The scratch space of one update: a temp folder, scratch indexes, and (pretending) a scratch object store."""

    root: Path
    dir: Path
    pretend: bool

    def __post_init__(self) -> None:
        self.env: dict[str, str] = {}
        if self.pretend:  # new objects go to a scratch store: the project's .git is not written
            (self.dir / "objects").mkdir()
            objects = (self.root / git(self.root, "rev-parse", "--git-path", "objects").strip()).resolve()
            self.env = {
                "GIT_OBJECT_DIRECTORY": str(self.dir / "objects"),
                "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects),
            }

    def index(self, name: str) -> dict[str, str]:
        return {**self.env, "GIT_INDEX_FILE": str(self.dir / f"{name}.index")}

    def checkout(self, commit: str, name: str) -> Path:
        """The files of ``commit`` in a scratch folder (the project itself is not touched)."""
        into = self.dir / f"checkout-{name}"
        into.mkdir()
        env = self.index(f"checkout-{name}")
        git(self.root, "read-tree", commit, env=env)
        git(self.root, "checkout-index", "--all", "--force", f"--prefix={into}/", env=env)
        return into


class CopierUpdate:
    """Projects without a pristine commit: ``copier update`` re-renders the old and new versions from the source."""

    def __init__(self, root: Path, options: UpdateOptions, source: Source) -> None:
        self.root, self.options, self.source = root, options, source

    def run(self, recorded: Mapping[str, Any]) -> UpdateResult:
        if self.source.bundled:
            raise UserError(
                f"'{self.root}' has no mlscaffold render commit ({pristine.TEMPLATE_TRAILER}: trailer) in its history "
                "and records no template checkout: pass --template <tagged checkout of mlscaffold> to update it "
                "with copier"
            )
        self.options.render.progress(
            f"No mlscaffold render commit in the history: updating through 'copier update' from {self.source.src}"
        )
        if not self.options.pretend:
            return self._update(self.root, recorded)
        with tempfile.TemporaryDirectory(prefix="mlscaffold-copier-pretend-") as tmp:
            clone = Path(tmp) / "project"
            git(self.root, "clone", "--quiet", "--shared", str(self.root), str(clone))
            result = self._update(clone, recorded)
            result.pretend = True
            return result

    def _update(self, root: Path, recorded: Mapping[str, Any]) -> UpdateResult:
        from copier import run_update

        render = self.options.render
        config = tpl.read_config(self.source.src, self.source.vcs_ref)
        changes = coerce(render.data, tpl.questions(config)) if config is not None else dict(render.data)
        with copier_errors(self.source.src):
            run_update(
                str(root),
                data=changes,
                defaults=not render.interactive,
                vcs_ref=self.source.vcs_ref,
                conflict=self.options.conflict,
                overwrite=True,
                skip_answered=True,
                unsafe=render.trust,
                quiet=True,
            )
        after = parse_answers((root / ANSWERS_FILE).read_text(encoding="utf-8"))
        result = UpdateResult(version_of(recorded), version_of(after), via_copier=True)
        result.conflicts = sorted(set(git(root, "diff", "--name-only", "--diff-filter=U", "-z").split("\0")) - {""})
        status = git(root, "status", "--porcelain", "--untracked-files=all", "-z").split("\0")
        result.rejects = sorted(line[3:] for line in status if line.endswith(".rej"))
        result.changes = [
            Change(line[3:], "conflict" if line[3:] in result.conflicts else _copier_action(line[:2]))
            for line in status
            if line and not line.endswith(".rej")
        ]
        return result


def _copier_action(status: str) -> merge.Action:
    if "?" in status or "A" in status:
        return "added"
    return "deleted" if "D" in status else "updated"
