"""`mlscaffold update` and `mlscaffold check` on tagged template repositories: no scenario loses a user's edit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import A_LINES, REPO, V1, Invoke, TemplateRepo, commit_all, git, head, tree_files
from helpers import answers_of as answers


def test_no_op_update(cli: Invoke, project: Path) -> None:
    before = head(project)
    result = cli("update", project)
    assert result.code == 0, result.err
    assert "already up to date" in result.out
    assert head(project) == before
    assert git(project, "status", "--porcelain") == ""


def test_template_change_in_untouched_file_and_user_edit_elsewhere_merge(
    cli: Invoke, tpl: TemplateRepo, project: Path
) -> None:
    (project / "a.txt").write_text(A_LINES.replace("line 2\n", "line 2 edited by the user\n"))
    commit_all(project, "user edit")
    tpl.write({"template/a.txt": A_LINES.replace("line 18\n", "line 18 from v2\n"), "template/new.txt": "v2\n"})
    tpl.write({"template/README.md.jinja": "# {{ name }}\n\nNow with docs.\n"}).release("v2.0.0")
    result = cli("update", project)
    assert result.code == 0, result.err
    text = (project / "a.txt").read_text()
    assert "line 2 edited by the user\n" in text
    assert "line 18 from v2\n" in text
    assert (project / "new.txt").read_text() == "v2\n"
    assert "Now with docs." in (project / "README.md").read_text()
    assert answers(project)["_commit"] == "v2.0.0"
    assert git(project, "status", "--porcelain") == ""
    for line in ("merged        a.txt", "added         new.txt", "updated       README.md"):
        assert line in result.out
    # The next update merges from this version's render: a no-op now.
    assert "already up to date" in cli("update", project).out


def test_same_region_conflict_keeps_both_sides_and_exits_1(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    (project / "a.txt").write_text(A_LINES.replace("line 10\n", "line 10 by the user\n"))
    commit_all(project, "user edit")
    tpl.write({"template/a.txt": A_LINES.replace("line 10\n", "line 10 by the template\n")}).release("v2.0.0")
    result = cli("update", project)
    assert result.code == 1
    assert "conflict: 1 file(s) need your decision: a.txt" in result.err
    text = (project / "a.txt").read_text()
    assert "<<<<<<< HEAD\nline 10 by the user\n=======\nline 10 by the template\n>>>>>>> mlscaffold/template" in text
    assert git(project, "diff", "--name-only", "--diff-filter=U").split() == ["a.txt"]
    check = cli("check", project)
    assert check.code == 1
    assert "a.txt:" in check.err and "conflict marker" in check.err
    # Resolving and committing completes the update: the template render becomes the base of the next one.
    (project / "a.txt").write_text(A_LINES.replace("line 10\n", "line 10 by both\n"))
    commit_all(project, "resolve")
    assert answers(project)["_commit"] == "v2.0.0"
    assert "already up to date" in cli("update", project).out


def test_conflict_rej_keeps_the_user_version_and_writes_the_template_hunk(
    cli: Invoke, tpl: TemplateRepo, project: Path
) -> None:
    (project / "a.txt").write_text(A_LINES.replace("line 10\n", "line 10 by the user\n"))
    commit_all(project, "user edit")
    tpl.write({"template/a.txt": A_LINES.replace("line 10\n", "line 10 by the template\n")}).release("v2.0.0")
    result = cli("update", project, "--conflict", "rej")
    assert result.code == 1
    assert "a.txt.rej" in result.err
    assert "line 10 by the user\n" in (project / "a.txt").read_text()
    assert "<<<<<<<" not in (project / "a.txt").read_text()
    assert "+line 10 by the template" in (project / "a.txt.rej").read_text()


def test_user_deleted_file_stays_deleted(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    (project / "kept.txt").unlink()
    commit_all(project, "I do not want this file")
    tpl.write({"template/kept.txt": "changed in v2\n"}).release("v2.0.0")
    result = cli("update", project)
    assert result.code == 0, result.err
    assert "kept-deleted  kept.txt" in result.out
    assert not (project / "kept.txt").exists()
    assert git(project, "status", "--porcelain") == ""


def test_template_deleted_file_is_removed_unless_the_user_changed_it(
    cli: Invoke, tpl: TemplateRepo, project: Path
) -> None:
    (project / "kept.txt").write_text("my own content\n")
    commit_all(project, "user edit")
    tpl.remove("template/old.txt", "template/kept.txt").release("v2.0.0")
    result = cli("update", project)
    assert result.code == 0, result.err
    assert not (project / "old.txt").exists()
    assert (project / "kept.txt").read_text() == "my own content\n"
    assert "deleted       old.txt" in result.out
    assert "kept-changed  kept.txt" in result.out


def test_new_question_gets_its_default(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    tpl.write({
        "copier.yml": V1["copier.yml"] + "license: {type: str, choices: [MIT, Apache-2.0], default: MIT}\n",
        "template/LICENSE.jinja": "{{ license }}\n",
    }).release("v2.0.0")  # fmt: skip
    assert cli("update", project).code == 0
    assert (project / "LICENSE").read_text() == "MIT\n"
    assert answers(project)["license"] == "MIT"


def test_changing_an_answer_swaps_conditional_files(cli: Invoke, project: Path) -> None:
    (project / "README.md").write_text("# demo\n\nmy notes\n")
    commit_all(project, "user edit")
    result = cli("update", project, "-d", "ci_provider=gitlab")
    assert result.code == 0, result.err
    assert not (project / ".github").exists()
    assert (project / ".gitlab-ci.yml").is_file()
    assert answers(project)["ci_provider"] == "gitlab"
    assert "my notes" in (project / "README.md").read_text()


def test_bad_answer_during_update_writes_nothing(cli: Invoke, project: Path) -> None:
    before = head(project)
    result = cli("update", project, "-d", "ci_provider=jenkins")
    assert result.code == 1
    assert result.error_lines == [
        "error: ci_provider: 'jenkins' is not a valid choice: choose one of github, gitlab, none"
    ]
    assert head(project) == before
    assert git(project, "status", "--porcelain") == ""


def git_state(project: Path) -> tuple[str, str, set[str], str]:
    objects = project / ".git" / "objects"
    return (
        head(project),
        git(project, "for-each-ref"),
        {p.relative_to(objects).as_posix() for p in objects.rglob("*")},
        git(project, "status", "--porcelain"),
    )


def test_pretend_lists_per_file_and_writes_nothing(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    (project / "a.txt").write_text(A_LINES.replace("line 10\n", "line 10 by the user\n"))
    commit_all(project, "user edit")
    tpl.write({"template/a.txt": A_LINES.replace("line 10\n", "line 10 by the template\n"), "template/n.txt": "n\n"})
    tpl.remove("template/old.txt").release("v2.0.0")
    before = git_state(project)
    files_before = {p: (project / p).read_bytes() for p in tree_files(project)}
    result = cli("update", project, "--pretend")
    assert result.code == 0, result.err
    for line in (
        "conflict      a.txt",
        "added         n.txt",
        "deleted       old.txt",
        "updated       .copier-answers.yml",
    ):
        assert line in result.out
    assert "nothing written" in result.out
    assert git_state(project) == before
    assert {p: (project / p).read_bytes() for p in tree_files(project)} == files_before


@pytest.mark.parametrize("dirt", ["modified", "untracked"])
def test_dirty_tree_is_refused(cli: Invoke, tpl: TemplateRepo, project: Path, dirt: str) -> None:
    tpl.write({"template/n.txt": "n\n"}).release("v2.0.0")
    if dirt == "modified":
        (project / "a.txt").write_text("uncommitted\n")
    else:
        (project / "scratch.txt").write_text("untracked\n")
    before = head(project)
    result = cli("update", project)
    assert result.code == 1
    assert len(result.error_lines) == 1
    assert "uncommitted changes" in result.error_lines[0]
    assert head(project) == before
    assert not (project / "n.txt").exists()


def test_interrupted_update_leaves_the_repository_as_it_was(
    cli: Invoke, tpl: TemplateRepo, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlscaffold.merge as merge

    tpl.write({"template/n.txt": "n\n"}).release("v2.0.0")
    before = git_state(project)
    real_git = merge.git

    def interrupted(repo: Path, *args: str, **kwargs: object) -> str:
        if args[:2] == ("update-ref", "-m"):  # after the work tree was written, before the branch moves
            assert (project / "n.txt").exists()
            raise KeyboardInterrupt
        return real_git(repo, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(merge, "git", interrupted)
    result = cli("update", project)
    assert result.code == 130
    assert head(project) == before[0]
    assert git(project, "for-each-ref") == before[1]
    assert git(project, "status", "--porcelain", "--ignored") == ""
    assert not (project / "n.txt").exists()
    monkeypatch.undo()
    assert cli("update", project).code == 0
    assert (project / "n.txt").exists()


def test_conflicted_update_is_undone_by_merge_abort(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    (project / "a.txt").write_text(A_LINES.replace("line 10\n", "line 10 by the user\n"))
    commit_all(project, "user edit")
    before = head(project)
    tpl.write({"template/a.txt": A_LINES.replace("line 10\n", "line 10 by the template\n")}).release("v2.0.0")
    assert cli("update", project).code == 1
    again = cli("update", project)
    assert again.code == 1
    assert "merge in progress" in again.error_lines[0]
    git(project, "merge", "--abort")
    assert head(project) == before
    assert git(project, "status", "--porcelain") == ""
    assert "line 10 by the user" in (project / "a.txt").read_text()


def test_vcs_ref_selects_an_older_release(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    tpl.write({"template/n.txt": "n\n"}).release("v2.0.0")
    tpl.write({"template/m.txt": "m\n"}).release("v3.0.0")
    assert cli("update", project, "--vcs-ref", "v2.0.0").code == 0
    assert answers(project)["_commit"] == "v2.0.0"
    assert (project / "n.txt").exists() and not (project / "m.txt").exists()
    check = cli("check", project, "--json")
    assert check.code == 2
    report = json.loads(check.out)
    assert report["update_available"] is True
    assert (report["current_version"], report["latest_version"]) == ("v2.0.0", "v3.0.0")


def test_check_exit_codes(cli: Invoke, tpl: TemplateRepo, project: Path) -> None:
    ok = cli("check", project, "--json")
    assert ok.code == 0, ok.err
    assert json.loads(ok.out) | {"project": ""} == {
        "project": "",
        "current_version": "v1.0.0",
        "latest_version": "v1.0.0",
        "update_available": False,
        "problems": [],
        "unverified": [],
        "valid": True,
    }
    tpl.write({"template/n.txt": "n\n"}).release("v1.1.0")
    behind = cli("check", project)
    assert behind.code == 2
    assert "update available: v1.0.0 -> v1.1.0" in behind.out
    (project / ".copier-answers.yml").unlink()
    commit_all(project, "lose the answers")
    broken = cli("check", project, "--json")
    assert broken.code == 1
    assert any(".copier-answers.yml: missing" in p for p in json.loads(broken.out)["problems"])


def test_plain_copier_copy_and_update_work_on_the_same_template(tpl: TemplateRepo, tmp_path: Path) -> None:
    copier = [sys.executable, "-m", "copier"]
    dest = tmp_path / "plain"
    subprocess.run(
        [*copier, "copy", "--trust", "--defaults", str(tpl.path), str(dest)], check=True, capture_output=True
    )
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "copier copy")
    tpl.write({"template/n.txt": "n\n"}).release("v2.0.0")
    subprocess.run([*copier, "update", "--trust", "--defaults"], cwd=dest, check=True, capture_output=True)
    assert (dest / "n.txt").exists()
    assert answers(dest)["_commit"] == "v2.0.0"


def test_project_without_pristine_commit_updates_through_copier(cli: Invoke, tpl: TemplateRepo, tmp_path: Path) -> None:
    dest = tmp_path / "plain"
    assert cli("new", dest, "--defaults", "--no-git", "--template", tpl.path).code == 0
    git(dest, "init", "-q", "-b", "main")
    (dest / "a.txt").write_text(A_LINES.replace("line 2\n", "line 2 by the user\n"))
    commit_all(dest, "first commit, by hand")
    tpl.write({"template/a.txt": A_LINES.replace("line 18\n", "line 18 from v2\n")}).release("v2.0.0")
    result = cli("update", dest)
    assert result.code == 0, result.err
    text = (dest / "a.txt").read_text()
    assert "line 2 by the user" in text and "line 18 from v2" in text
    assert answers(dest)["_commit"] == "v2.0.0"


MIGRATIONS = REPO / "template" / "_migrations"


def test_migration_renames_an_answer_and_moves_a_file(cli: Invoke, tmp_path: Path) -> None:
    """v2 renames the answer `registry` to `model_registry` and moves conf/app.cfg to config/app.cfg, through the
    migration scripts the real template ships; the user's answer and the user's edit of the moved file survive."""
    scripts = {f"template/_migrations/{p.name}": p.read_text() for p in MIGRATIONS.glob("*.py")}
    tpl = TemplateRepo(tmp_path / "tpl").write({
        **scripts,
        "copier.yml": "_subdirectory: template\n_exclude: [_migrations]\n"
        "registry: {type: str, choices: [mlflow, none], default: mlflow}\n",
        "template/{{ _copier_conf.answers_file }}.jinja": "{{ _copier_answers | to_nice_yaml }}",
        "template/conf/app.cfg.jinja": "registry = {{ registry }}\n" + A_LINES,
    }).release("v1.0.0")  # fmt: skip
    project = tmp_path / "project"
    assert cli("new", project, "--defaults", "--template", tpl.path, "-d", "registry=none").code == 0
    (project / "conf" / "app.cfg").write_text("registry = none\n" + A_LINES.replace("line 3\n", "line 3 mine\n"))
    commit_all(project, "user edit")

    script = "{{ _copier_conf.src_path }}/template/_migrations"
    before = "{{ _stage == 'before' }}"
    v2_config = {
        "_subdirectory": "template",
        "_exclude": ["_migrations"],
        "model_registry": {"type": "str", "choices": ["mlflow", "none"], "default": "mlflow"},
        "_migrations": [
            {"version": "v2.0.0", "when": before, "command": ["{{ _copier_python }}", f"{script}/{name}", *args]}
            for name, args in (
                ("rename_answer.py", ["registry", "model_registry"]),
                ("move_path.py", ["conf/app.cfg", "config/app.cfg"]),
            )
        ],
    }
    v2_app = "registry = {{ model_registry }}\n" + A_LINES.replace("line 19\n", "line 19 v2\n")
    tpl.remove("template/conf/app.cfg.jinja").write({
        "copier.yml": yaml.safe_dump(v2_config, sort_keys=False),
        "template/config/app.cfg.jinja": v2_app,
    }).release("v2.0.0")  # fmt: skip

    plain = tmp_path / "plain-copier"
    subprocess.run(["git", "clone", "-q", str(project), str(plain)], check=True)
    # Without trust, a template that runs migrations is refused and nothing changes.
    refused = cli("update", project)
    assert refused.code == 1 and "--trust" in refused.error_lines[0]
    result = cli("update", project, "--trust")
    assert result.code == 0, result.err
    assert answers(project)["model_registry"] == "none" and "registry" not in answers(project)
    assert not (project / "conf" / "app.cfg").exists()
    moved = (project / "config" / "app.cfg").read_text()
    assert "line 3 mine\n" in moved and "line 19 v2\n" in moved and moved.startswith("registry = none\n")
    assert git(project, "status", "--porcelain") == ""

    # Plain copier runs the same migrations from the same _migrations list.
    subprocess.run(
        [sys.executable, "-m", "copier", "update", "--trust", "--defaults"], cwd=plain, check=True, capture_output=True
    )
    assert answers(plain)["model_registry"] == "none"
    moved = (plain / "config" / "app.cfg").read_text()
    assert "line 3 mine\n" in moved and "line 19 v2\n" in moved
