"""The README's five-minute walkthrough, run as written: twice in a row, from the repository root,
with a home of its own (the client's witness lives there). It must succeed both times and leave
nothing in the repository."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Five-minute walkthrough") :]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "the walkthrough's commands"
    return found.group(1)


def _untracked() -> set[str]:
    listed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # Python's byte-code caches come and go with any import; they are not the walkthrough's.
    return {line for line in listed.splitlines() if "__pycache__" not in line}


def test_the_five_minute_walkthrough_runs_twice_and_leaves_nothing(tmp_path: Path) -> None:
    script = _walkthrough()
    before = _untracked()
    env = {**os.environ, "HOME": str(tmp_path)}
    for run in (1, 2):
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, (run, done.stdout[-2000:], done.stderr[-2000:])
        assert "activated: trial" in done.stdout, done.stdout[-2000:]
    assert _untracked() == before
