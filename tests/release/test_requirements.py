"""requirements.py: the Bento's requirements keep every hash, and bentoml is linked to its locked wheel."""

from __future__ import annotations

import pytest

from mltemplate.errors import CommandError
from mltemplate.release import requirements

LOCK = {
    "package": [
        {
            "name": "bentoml",
            "version": "1.0.0",
            "wheels": [{"url": "https://files.example/bentoml-1.0.0.whl", "hash": "sha256:ab"}],
        },
        {"name": "two", "wheels": [{"url": "u1", "hash": "h1"}, {"url": "u2", "hash": "h2"}]},
    ]
}
EXPORTED = """# via x
anyio==4.0 \\
    --hash=sha256:01 \\
    --hash=sha256:02
bentoml==1.0.0 ; python_full_version >= '3.11' \\
    --hash=sha256:ab \\
    --hash=sha256:cd
zipp==3.0 \\
    --hash=sha256:03
"""


def test_bentoml_becomes_its_locked_wheel_with_its_hash_and_marker() -> None:
    linked = requirements.link(EXPORTED, LOCK)
    assert (
        "bentoml @ https://files.example/bentoml-1.0.0.whl ; python_full_version >= '3.11' \\\n    --hash=sha256:ab\n"
        in (linked)
    )
    assert "bentoml==" not in linked


def test_other_entries_are_kept_with_their_hashes() -> None:
    linked = requirements.link(EXPORTED, LOCK)
    assert "anyio==4.0 \\\n    --hash=sha256:01 \\\n    --hash=sha256:02\n" in linked
    assert linked.endswith("zipp==3.0 \\\n    --hash=sha256:03\n")


def test_a_missing_entry_is_an_error() -> None:
    with pytest.raises(CommandError, match="no pinned bentoml==<version> entry"):
        requirements.link("zipp==3.0\n", LOCK)


@pytest.mark.parametrize(
    ("name", "message"), [("absent", "package 'absent' not found"), ("two", "one wheel of two, found 2")]
)
def test_the_lock_must_hold_one_wheel(name: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        requirements.locked_wheel(LOCK, name)
