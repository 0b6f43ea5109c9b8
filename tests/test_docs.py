"""The docs stay in step with the code: every error code is documented, every command the README
names exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from offline_service.cli import build_parser
from offline_service.errors import Code

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("code", list(Code))
def test_every_error_code_is_documented(code: Code) -> None:
    assert f"`{code.value}`" in (ROOT / "docs" / "ERRORS.md").read_text(encoding="utf-8")


def _verbs(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.add(f"{prefix}{name}")
                found |= _verbs(sub, f"{prefix}{name} ")
    return found


def test_every_command_in_the_readme_exists() -> None:
    verbs = _verbs(build_parser())
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = re.findall(r"offline-service ([a-z]+(?: [a-z]+)?)", readme)
    assert named
    for phrase in named:
        words = phrase.split()
        assert phrase in verbs or words[0] in verbs, phrase
