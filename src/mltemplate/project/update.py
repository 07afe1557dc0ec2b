"""`make update-template [TEMPLATE=<git url or path>] [VERSION=<ref>]`: bring the template's later changes into the
project as a three-way merge. Copier renders the template for the project twice, at the version .copier-answers.yml
records (the base) and at the new one; git merges the new render into the project over that base, in a scratch
repository, so a line conflicts only where both the template and the team changed it, and renames and deletions
follow. The team's data pointers and outputs (owned.KEPT) stay as they are; the result is left uncommitted."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from mltemplate.errors import CommandError
from mltemplate.project import names, owned
from mltemplate.project.render import (
    ANSWERS,
    TEMPLATE_MARKER,
    Answers,
    copy_files,
    files,
    git,
    read_answers,
    remove_files,
    render,
    require_clean,
    tracked,
    write_answers,
)


@dataclass(frozen=True)
class Update:
    old: str
    new: str
    changed: list[str]
    conflicts: list[str]


def has_commit(repo: Path, commit: str) -> bool:
    try:
        git("cat-file", "-e", f"{commit}^{{commit}}", cwd=repo)
    except CommandError:
        return False
    return True


def _snapshot(repo: Path, tree: Path, names_: list[str], message: str) -> None:
    """Make the scratch repository's work tree hold exactly `names_` from `tree`, and commit it."""
    remove_files(repo, [name for name in files(repo) if name not in set(names_)])
    copy_files(tree, repo, names_)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", message, cwd=repo)


def merge(base: Path, theirs: Path, ours: Path, ours_files: list[str], scratch: Path) -> tuple[Path, list[str]]:
    """Three-way merge in a scratch repository: `theirs` (the new template) into `ours` (the project), with `base`
    (the old template) as their common ancestor. Returns the merged work tree, all of it staged, whose changes
    against the tag `project` are the update, and its conflicted paths."""
    repo = scratch / "merge"
    repo.mkdir()
    git("init", "-q", "-b", "base", cwd=repo)
    _snapshot(repo, base, files(base), "template, as the project was made from it")
    git("checkout", "-q", "-b", "template", cwd=repo)
    _snapshot(repo, theirs, files(theirs), "template, new version")
    git("checkout", "-q", "-b", "work", "base", cwd=repo)
    _snapshot(repo, ours, ours_files, "project")
    git("tag", "project", cwd=repo)
    conflicts: list[str] = []
    try:
        git("merge", "-q", "--no-edit", "-m", "update from the template", "template", cwd=repo)
    except CommandError:
        conflicts = [n for n in git("diff", "--name-only", "--diff-filter=U", cwd=repo).splitlines() if n]
        if not conflicts:
            raise
    git("add", "-A", cwd=repo)
    return repo, conflicts


def _keep_owned(base: Path, theirs: Path) -> None:
    """The new template's data pointers and outputs are the old one's: the merge then keeps the project's."""
    kept = [n for n in files(base) if owned.matches(n, owned.KEPT)]
    for name in [n for n in files(theirs) if owned.matches(n, owned.KEPT) and n not in set(kept)]:
        (theirs / name).unlink()
    copy_files(base, theirs, kept)


def update(*, template: str = "", version: str = "", root: Path | None = None) -> Update:
    """Merge the template at `version` (default: its default branch) into the project at `root`."""
    root = root or Path.cwd()
    if (root / TEMPLATE_MARKER).is_file():
        raise CommandError(f"this is the template itself ({TEMPLATE_MARKER}): `make init NAME=<name>` makes a project")
    answers = read_answers(root)
    source = names.check_template(template or answers.source) if (template or answers.source) else ""
    if not source:
        raise CommandError(f"{ANSWERS} records no template source: give TEMPLATE=<git url or path of the template>")
    ref = names.check_ref(version) if version else "HEAD"
    require_clean(root)
    with tempfile.TemporaryDirectory(prefix="update-template-") as scratch_dir:
        scratch = Path(scratch_dir)
        clone = scratch / "template"
        git("clone", "-q", "--no-checkout", "--", source, str(clone), cwd=scratch)
        new = git("rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}", cwd=clone).strip()
        if not git("ls-tree", "--name-only", new, "--", TEMPLATE_MARKER.as_posix(), cwd=clone).strip():
            raise CommandError(f"{source} at {new[:12]} has no {TEMPLATE_MARKER}: it is not the template")
        # A fork or a copy holds the version it was made from in its own history; after an update, the template does.
        old_source = root if has_commit(root, answers.commit) else clone
        if not has_commit(old_source, answers.commit):
            raise CommandError(f"neither the project nor {source} has the template version {answers.commit[:12]}")
        if new == answers.commit:
            return Update(old=answers.commit, new=new, changed=[], conflicts=[])
        base, theirs = scratch / "base", scratch / "theirs"
        render(str(old_source), answers.commit, name=answers.name, dest=base)
        render(str(clone), new, name=answers.name, dest=theirs)
        _keep_owned(base, theirs)
        ours = [name for name in tracked(root) if name != ANSWERS.as_posix()]
        for tree in (base, theirs):
            (tree / ANSWERS).unlink(missing_ok=True)  # written below, not merged
        merged, conflicts = merge(base, theirs, root, ours, scratch)
        status = git("diff", "--cached", "--name-status", "--no-renames", "project", cwd=merged)
        changes = [line.split("\t", 1) for line in status.splitlines() if line]
        remove_files(root, [path for status, path in changes if status == "D"])
        copy_files(merged, root, [path for status, path in changes if status != "D"])
    write_answers(root, Answers(commit=new, source=template or answers.source, name=answers.name))
    return Update(old=answers.commit, new=new, changed=sorted(path for _, path in changes), conflicts=conflicts)
