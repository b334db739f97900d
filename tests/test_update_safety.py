"""`mlscaffold update` never loses a user's work, whatever they did to their history: each scenario ends with every
user edit in the work tree, or with a one-line refusal and the project exactly as it was. Real git, real tagged
template repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from helpers import A_LINES, V1, Invoke, TemplateRepo, commit_all, git, head, tree_files
from helpers import answers_of as answers

USER = ["-c", "user.name=u", "-c", "user.email=u@example.org"]


def snapshot(project: Path) -> tuple[str, str, str, dict[str, bytes]]:
    """Branch, refs, status (ignored files included) and every file's bytes: 'exactly as it was'."""
    files = {p: (project / p).read_bytes() for p in tree_files(project)}
    return (
        head(project),
        git(project, "for-each-ref"),
        git(project, "status", "--porcelain", "--ignored", "--untracked-files=all"),
        files,
    )


def refused(result: object, project: Path, before: tuple[str, str, str, dict[str, bytes]], *words: str) -> None:
    code, err = result.code, result.err  # type: ignore[attr-defined]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 1, err
    assert len(errors) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in errors[0], errors[0]
    assert snapshot(project) == before


def user_work(project: Path) -> None:
    (project / "notes").mkdir()
    (project / "notes" / "user.md").write_text("my notes\n")
    (project / "a.txt").write_text(A_LINES.replace("line 2\n", "line 2 by the user\n"))
    commit_all(project, "user work")


def assert_user_work(project: Path) -> None:
    assert (project / "notes" / "user.md").read_text() == "my notes\n"
    assert "line 2 by the user\n" in (project / "a.txt").read_text()


# 1. A rebased update, a squash-merged update: the next update must not merge from an older base.
def test_rebased_update_is_refused_then_rebuilt_base_keeps_everything(
    cli: Invoke, tpl: TemplateRepo, project: Path
) -> None:
    user_work(project)
    tpl.write({"template/new.txt": "v2\n"}).release("v2.0.0")
    git(project, "checkout", "-q", "-b", "template-update")
    assert cli("update", project).code == 0
    git(project, "checkout", "-q", "main")
    (project / "notes" / "more.md").write_text("more notes\n")
    commit_all(project, "new work on main")
    git(project, "checkout", "-q", "template-update")
    git(project, *USER, "rebase", "-q", "main")
    assert answers(project)["_commit"] == "v2.0.0"  # the rebased branch holds the v2 render, its base is gone

    tpl.write({"template/a.txt": A_LINES.replace("line 18\n", "line 18 from v3\n")}).release("v3.0.0")
    before = snapshot(project)
    refusal = cli("update", project)
    refused(refusal, project, before, "v2.0.0", "--rebuild-base", "rebased")

    rebuilt = cli("update", project, "--rebuild-base")
    assert rebuilt.code == 0, rebuilt.err
    assert_user_work(project)
    assert (project / "notes" / "more.md").read_text() == "more notes\n"
    assert "line 18 from v3\n" in (project / "a.txt").read_text()
    assert (project / "new.txt").read_text() == "v2\n"
    assert answers(project)["_commit"] == "v3.0.0"
    assert git(project, "status", "--porcelain") == ""
    assert "already up to date" in cli("update", project).out


def test_squash_merged_update_quoting_the_trailer_is_not_a_base(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    user_work(project)
    tpl.write({"template/new.txt": "v2\n"}).release("v2.0.0")
    git(project, "checkout", "-q", "-b", "template-update")
    assert cli("update", project).code == 0
    git(project, "checkout", "-q", "main")
    git(project, "merge", "-q", "--squash", "template-update")
    # GitHub's default squash message quotes the squashed commits; here the quote even ends the message, so the
    # trailer line is a real trailer of the squash commit.
    message = "Update the template (#1)\n\n* Template render v2.0.0\n\nMlscaffold-Template: v2.0.0\n"
    git(project, *USER, "commit", "-q", "-m", message)
    git(project, "branch", "-q", "-D", "template-update")
    git(project, "reflog", "expire", "--expire=now", "--all")
    git(project, "gc", "-q", "--prune=now")

    tpl.write({"template/a.txt": A_LINES.replace("line 18\n", "line 18 from v3\n")}).release("v3.0.0")
    before = snapshot(project)
    refused(cli("update", project), project, before, "--rebuild-base")
    assert cli("update", project, "--rebuild-base").code == 0
    assert_user_work(project)
    assert "line 18 from v3\n" in (project / "a.txt").read_text()
    assert answers(project)["_commit"] == "v3.0.0"


def test_rebuild_base_needs_the_recorded_version_at_hand(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    user_work(project)
    git(project, *USER, "commit", "-q", "--amend", "--no-edit", "--allow-empty")  # harmless: base still found
    tpl.write({"template/new.txt": "v2\n"}).release("v2.0.0")
    git(tpl.path, "tag", "-d", "v1.0.0")
    before = snapshot(project)
    refused(cli("update", project, "--rebuild-base"), project, before, "v1.0.0")


# 2. Paths the user's excludes list: renders are committed whole, so they are neither deleted nor a failure.
@pytest.mark.parametrize("where", ["info/exclude", "global excludes file"])
def test_excluded_template_paths_are_kept_and_updated(
    cli: Invoke, tpl: TemplateRepo, project: Path, where: str
) -> None:
    if where == "info/exclude":
        (project / ".git" / "info" / "exclude").write_text(".github/\n")
    else:
        ignore = project.parent / "global-ignore"
        ignore.write_text(".github/\n")
        git(project, "config", "--global", "core.excludesFile", str(ignore))
    ci = project / ".github" / "workflows" / "ci.yml"
    ci.write_text(ci.read_text().replace("on: push\n", "on: [push, pull_request]\n"))
    git(project, "add", "--force", str(ci))
    commit_all(project, "user edits an excluded, tracked file")
    ci_template = "template/{% if ci_provider == 'github' %}.github{% endif %}/workflows/ci.yml"
    tpl.write({ci_template: V1[ci_template] + "      - run: make lint\n"})
    tpl.write({"template/a.txt": A_LINES.replace("line 18\n", "line 18 from v2\n")}).release("v2.0.0")
    result = cli("update", project)
    assert result.code == 0, result.err
    assert "hint:" not in result.err
    text = ci.read_text()
    assert "on: [push, pull_request]\n" in text and "make lint" in text
    assert git(project, "ls-files", ".github").strip() == ".github/workflows/ci.yml"
    assert git(project, "status", "--porcelain") == ""


# 3. Downgrades.
def test_downgrade_is_refused(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    tpl.write({"template/new.txt": "v2\n"}).release("v2.0.0")
    assert cli("update", project).code == 0
    before = snapshot(project)
    refused(cli("update", project, "--vcs-ref", "v1.0.0"), project, before, "v1.0.0", "older", "--allow-downgrade")
    assert cli("update", project, "--vcs-ref", "v1.0.0", "--allow-downgrade").code == 0
    assert answers(project)["_commit"] == "v1.0.0"
    assert not (project / "new.txt").exists()


# 4. Files the template moves: the plan and the merge see the same renames.
def plan_lines(out: str) -> list[str]:
    return sorted(line.split("  (")[0].strip() for line in out.splitlines() if line.startswith("  "))


def test_moved_and_edited_file_follows_the_move_and_pretend_says_so(
    cli: Invoke, tpl: TemplateRepo, project: Path
) -> None:
    tpl.write({"template/docs/guide.md": A_LINES}).release("v1.1.0")
    assert cli("update", project).code == 0
    (project / "docs" / "guide.md").write_text(A_LINES.replace("line 3\n", "line 3 by the user\n"))
    commit_all(project, "user edit")
    tpl.remove("template/docs/guide.md")
    tpl.write({"template/guide/README.md": A_LINES.replace("line 18\n", "line 18 from v2\n")}).release("v2.0.0")
    pretend = cli("update", project, "--pretend")
    assert pretend.code == 0, pretend.err
    assert "moved         docs/guide.md -> guide/README.md" in pretend.out
    result = cli("update", project)
    assert result.code == 0, result.err
    assert plan_lines(result.out) == plan_lines(pretend.out)
    moved = (project / "guide" / "README.md").read_text()
    assert "line 3 by the user\n" in moved and "line 18 from v2\n" in moved
    assert not (project / "docs" / "guide.md").exists()
    assert git(project, "status", "--porcelain") == ""


def test_answer_that_swaps_similar_files_carries_the_edit(cli: Invoke, tmp_path: Path) -> None:
    """Like `-d deployment_strategy=rolling`: rollout.yaml becomes deployment.yaml, nearly the same file."""
    body = "kind: {{ 'Deployment' if strategy == 'rolling' else 'Rollout' }}\n" + A_LINES
    tpl = TemplateRepo(tmp_path / "tpl").write({
        "copier.yml": "_subdirectory: template\nstrategy: {type: str, choices: [rolling, canary], default: canary}\n",
        "template/{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers | to_nice_yaml }}",
        "template/{{ 'deployment' if strategy == 'rolling' else 'rollout' }}.yaml.jinja": body,
    }).release("v1.0.0")  # fmt: skip
    project = tmp_path / "project"
    assert cli("new", project, "--defaults", "--template", tpl.path).code == 0
    (project / "rollout.yaml").write_text((project / "rollout.yaml").read_text().replace("line 9\n", "line 9 mine\n"))
    commit_all(project, "user edit")
    pretend = cli("update", project, "--pretend", "-d", "strategy=rolling")
    result = cli("update", project, "-d", "strategy=rolling")
    assert result.code == 0, result.err
    assert plan_lines(result.out) == plan_lines(pretend.out)
    text = (project / "deployment.yaml").read_text()
    assert text.startswith("kind: Deployment\n") and "line 9 mine\n" in text
    assert not (project / "rollout.yaml").exists()


# 5. --conflict rej: every conflict it writes keeps git's unmerged state; those it cannot express are refused.
def test_rej_for_a_renamed_file_keeps_the_merge_unfinished(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    tpl.write({"template/docs/guide.md": A_LINES}).release("v1.1.0")
    assert cli("update", project).code == 0
    (project / "docs" / "guide.md").write_text(A_LINES.replace("line 10\n", "line 10 by the user\n"))
    commit_all(project, "user edit")
    tpl.remove("template/docs/guide.md")
    tpl.write({"template/guide.md": A_LINES.replace("line 10\n", "line 10 by the template\n")}).release("v2.0.0")
    result = cli("update", project, "--conflict", "rej")
    assert result.code == 1
    assert "guide.md.rej" in result.err
    assert "line 10 by the user\n" in (project / "guide.md").read_text()
    assert "+line 10 by the template" in (project / "guide.md.rej").read_text()
    assert "guide.md" in git(project, "diff", "--name-only", "--diff-filter=U")
    commit = subprocess.run(["git", *USER, "commit", "-qm", "x"], cwd=project, capture_output=True, text=True)
    assert commit.returncode != 0  # a plain commit cannot drop the template's change
    (project / "guide.md.rej").unlink()
    git(project, "merge", "--abort")
    assert (project / "docs" / "guide.md").exists() and not (project / "guide.md").exists()
    assert git(project, "status", "--porcelain") == ""


@pytest.mark.parametrize("kind", ["add/add", "binary"])
def test_rej_refuses_what_it_cannot_express(cli: Invoke, tpl: TemplateRepo, project: Path, kind: str) -> None:
    if kind == "add/add":
        (project / "n.txt").write_text("the user's n\n")
        tpl.write({"template/n.txt": "the template's n\n"})
    else:
        tpl.write({"template/logo.bin": "\0v1\0"}).release("v1.1.0")
        assert cli("update", project).code == 0
        (project / "logo.bin").write_bytes(b"\0user\0")
        tpl.write({"template/logo.bin": "\0v2\0"})
    commit_all(project, "user edit")
    tpl.release("v2.0.0")
    before = snapshot(project)
    refused(cli("update", project, "--conflict", "rej"), project, before, "--conflict inline")
    inline = cli("update", project)
    assert inline.code == 1
    assert ("n.txt" if kind == "add/add" else "logo.bin") in inline.err


# 6. A failed update changes nothing, migrations included; and `git merge --abort` undoes all of a conflict.
MIGRATING_V2 = {
    "_subdirectory": "template",
    "_exclude": ["_migrations"],
    "name": {"type": "str", "default": "demo", "validator": "{% if name == 'bad' %}name must not be bad{% endif %}"},
    "ci_provider": {"type": "str", "choices": ["github", "gitlab", "none"], "default": "github"},
    "_migrations": [
        {
            "version": "v2.0.0",
            "when": "{{ _stage == 'before' }}",
            "command": ["{{ _copier_python }}", "-c", "import os; os.rename('old.txt', 'moved-by-migration.txt')"],
        }
    ],
}


def test_failed_update_leaves_no_half_migration(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    (project / "a.txt").write_text(A_LINES.replace("line 10\n", "line 10 by the user\n"))
    commit_all(project, "user edit")
    tpl.write({"copier.yml": yaml.safe_dump(MIGRATING_V2, sort_keys=False)})
    tpl.write({"template/a.txt": A_LINES.replace("line 10\n", "line 10 by the template\n")}).release("v2.0.0")
    before = snapshot(project)
    refused(cli("update", project, "--trust", "-d", "name=bad"), project, before, "name must not be bad")

    conflicted = cli("update", project, "--trust")
    assert conflicted.code == 1
    assert (project / "moved-by-migration.txt").exists()
    assert "git merge --abort" in conflicted.err
    git(project, "merge", "--abort")
    assert snapshot(project) == before  # the migration is undone with the merge: no migration commit left


# 7. A new template file where an ignored local file is: refused before anything is written.
def test_ignored_local_file_in_the_way_is_refused(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    (project / ".gitignore").write_text("config/local.yaml\n")
    commit_all(project, "ignore my local config")
    (project / "config").mkdir()
    (project / "config" / "local.yaml").write_text("password: mine\n")
    tpl.write({"template/config/local.yaml": "password: change-me\n"}).release("v2.0.0")
    pretend = cli("update", project, "--pretend")
    assert "blocked       config/local.yaml" in pretend.out
    before = snapshot(project)
    refused(cli("update", project), project, before, "config/local.yaml")
    assert (project / "config" / "local.yaml").read_text() == "password: mine\n"


# 8. No silent fallbacks.
def test_shallow_clone_is_refused(cli: Invoke, tpl: TemplateRepo, project: Path, tmp_path: Path) -> None:
    user_work(project)
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{project}", str(shallow))
    tpl.write({"template/new.txt": "v2\n"}).release("v2.0.0")
    before = snapshot(shallow)
    refused(cli("update", shallow), shallow, before, "shallow", "--unshallow")


def test_copier_fallback_is_announced_and_pretends_per_file(cli: Invoke, tpl: TemplateRepo, tmp_path: Path) -> None:
    dest = tmp_path / "plain"
    assert cli("new", dest, "--defaults", "--no-git", "--template", tpl.path).code == 0
    git(dest, "init", "-q", "-b", "main")
    (dest / "a.txt").write_text(A_LINES.replace("line 10\n", "line 10 by the user\n"))
    commit_all(dest, "first commit, by hand")
    tpl.write({"template/a.txt": A_LINES.replace("line 10\n", "line 10 by the template\n"), "template/n.txt": "n\n"})
    tpl.release("v2.0.0")
    before = snapshot(dest)
    pretend = cli("update", dest, "--pretend")
    assert pretend.code == 0, pretend.err
    assert "through 'copier update'" in pretend.err
    assert "added         n.txt" in pretend.out
    assert snapshot(dest) == before
    result = cli("update", dest)
    assert result.code == 1
    assert "git merge --abort" not in result.err and "git reset --hard" in result.err


# 9. Smaller refusals and reports.
def test_committed_conflict_markers_and_paused_rebase_are_refused(
    cli: Invoke, tpl: TemplateRepo, project: Path
) -> None:
    tpl.write({"template/new.txt": "v2\n"}).release("v2.0.0")
    (project / "a.txt").write_text("<<<<<<< HEAD\nmine\n=======\ntheirs\n>>>>>>> other\n")
    commit_all(project, "oops")
    before = snapshot(project)
    refused(cli("update", project), project, before, "conflict markers", "a.txt:1")

    (project / "a.txt").write_text(A_LINES)
    commit_all(project, "fixed")
    git(project, "checkout", "-q", "-b", "side", "HEAD~1")
    (project / "a.txt").write_text("side\n")
    commit_all(project, "side")
    subprocess.run(["git", *USER, "rebase", "-q", "main"], cwd=project, capture_output=True, check=False)
    assert (project / ".git" / "rebase-merge").exists()
    status = git(project, "status", "--porcelain")
    result = cli("update", project)
    assert result.code == 1 and "rebase in progress" in result.error_lines[0]
    assert git(project, "status", "--porcelain") == status


def test_missing_bundled_template_is_named_as_such(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlscaffold.template as template

    monkeypatch.setattr(template, "CONFIG_FILE", "no-such-copier.yml")
    result = cli("new", tmp_path / "p", "--defaults")
    assert result.code == 1
    assert "bundled with mlscaffold is missing" in result.error_lines[0]
    assert "--template '" not in result.error_lines[0]


def test_check_reports_an_untagged_or_unreachable_template(
    cli: Invoke, tpl: TemplateRepo, project: Path, tmp_path: Path
) -> None:
    git(tpl.path, "tag", "-d", "v1.0.0")
    untagged = cli("check", project)
    assert untagged.code == 1
    assert "no release tags" in untagged.err and "up to date" not in untagged.out
    unreachable = cli("check", project, "--template", f"file://{tmp_path}/no-such-template.git", "--json")
    assert unreachable.code == 1
    assert any("cannot list the releases" in p for p in yaml.safe_load(unreachable.out)["problems"])


def test_check_without_reachable_schemas_says_so(cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The public catalog stands in as a closed loopback port (this machine reaches no public host anyway)."""
    import mlscaffold.validate as validate

    project = tmp_path / "real"
    assert cli("new", project, "--defaults").code == 0
    monkeypatch.delenv("MLSCAFFOLD_SCHEMA_LOCATION", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(validate, "DEFAULT_CATALOG", "http://127.0.0.1:9")
    result = cli("check", project)
    assert result.code == 1
    assert "not verified" in result.err and "broken" not in result.err
    assert "unreachable" in result.err
