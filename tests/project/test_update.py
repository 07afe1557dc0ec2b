"""update.py's merge: the template's changes come in over the version the project was made from, the team's stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltemplate.errors import CommandError
from mltemplate.project.update import _keep_owned, merge, update


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


BASE = {
    "README.md": "# churn-model\n\nintro\n\nusage\n",
    "src/pkg/train.py": "def train():\n    return 1\n\n\ndef score():\n    return 2\n",
    "params.yaml": "name: churn-model\nseed: 42\nsplit:\n  test_size: 0.25\n",
    "dvc.lock": "md5: template\n",
}


def test_changes_to_different_lines_merge_and_the_teams_params_stay(tmp_path: Path) -> None:
    base = tree(tmp_path / "base", BASE)
    theirs = tree(tmp_path / "theirs", {**BASE, "README.md": BASE["README.md"] + "\nchangelog\n", "new.py": "x = 1\n"})
    ours_files = {**BASE, "params.yaml": BASE["params.yaml"].replace("0.25", "0.3")}
    ours_files["src/pkg/train.py"] = BASE["src/pkg/train.py"].replace("return 2", "return 3")
    ours = tree(tmp_path / "ours", ours_files)
    merged, conflicts = merge(base, theirs, ours, sorted(ours_files), tmp_path)
    assert conflicts == []
    assert (merged / "README.md").read_text().endswith("changelog\n")
    assert (merged / "new.py").read_text() == "x = 1\n"
    assert "return 3" in (merged / "src/pkg/train.py").read_text()
    assert "test_size: 0.3" in (merged / "params.yaml").read_text()


def test_a_line_both_sides_changed_is_a_conflict_and_the_rest_merges(tmp_path: Path) -> None:
    base = tree(tmp_path / "base", BASE)
    theirs = tree(tmp_path / "theirs", {**BASE, "README.md": BASE["README.md"].replace("intro", "template intro")})
    theirs_train = BASE["src/pkg/train.py"].replace("return 1", "return 10")
    (theirs / "src/pkg/train.py").write_text(theirs_train)
    ours = tree(tmp_path / "ours", {**BASE, "README.md": BASE["README.md"].replace("intro", "our intro")})
    merged, conflicts = merge(base, theirs, ours, sorted(BASE), tmp_path)
    assert conflicts == ["README.md"]
    readme = (merged / "README.md").read_text()
    assert "<<<<<<<" in readme
    assert "our intro" in readme
    assert "template intro" in readme
    assert "return 10" in (merged / "src/pkg/train.py").read_text()


def test_the_new_template_outputs_and_data_pointers_give_way_to_the_projects(tmp_path: Path) -> None:
    base = tree(tmp_path / "base", BASE)
    theirs = tree(tmp_path / "theirs", {**BASE, "dvc.lock": "md5: template v2\n", "plots/new.json": "{}\n"})
    _keep_owned(base, theirs)
    assert (theirs / "dvc.lock").read_text() == "md5: template\n"
    assert not (theirs / "plots/new.json").exists()
    ours = tree(tmp_path / "ours", {**BASE, "dvc.lock": "md5: project\n"})
    merged, conflicts = merge(base, theirs, ours, sorted(BASE), tmp_path)
    assert (conflicts, (merged / "dvc.lock").read_text()) == ([], "md5: project\n")


def test_the_template_itself_is_not_updated(tmp_path: Path) -> None:
    (tmp_path / "copier.yml").write_text("name: {type: str}\n")
    with pytest.raises(CommandError, match="the template itself"):
        update(root=tmp_path)


def test_a_project_without_answers_cannot_update(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a project made by `make init`"):
        update(root=tmp_path)
