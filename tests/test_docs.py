"""The docs stay in step with the code: every error code is documented, every command the README
names exists, and the license-key matching docs/FORMAT.md describes is what the service does."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from offline_service.cli import build_parser
from offline_service.errors import Code
from offline_service.fileformat.messages import Kind
from offline_service.ids import normalize_license_key
from offline_service.licensing import services as admin
from offline_service.next_steps import markdown_table, next_step
from tests.factories import World

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("code", list(Code))
def test_every_error_code_is_documented(code: Code) -> None:
    assert f"`{code.value}`" in (ROOT / "docs" / "ERRORS.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("code", [code for code in Code if code is not Code.OK])
def test_every_error_code_has_a_next_step(code: Code) -> None:
    step = next_step(code)
    assert step.strip() and "\n" not in step and "|" not in step


def test_docs_errors_lists_the_same_next_steps() -> None:
    text = (ROOT / "docs" / "ERRORS.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- next-steps: begin -->\n(.*?)<!-- next-steps: end -->", text, re.S)
    assert found, "docs/ERRORS.md has lost its Next steps table"
    # Made with `python -m offline_service.next_steps`; paste its output between the markers.
    assert found.group(1) == markdown_table()


def _verbs(parser: argparse.ArgumentParser, prefix: str = "") -> set[str]:
    found = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.add(f"{prefix}{name}")
                found |= _verbs(sub, f"{prefix}{name} ")
    return found


# The README and the docs its command reference moved to (the full command table is in docs/CLI.md).
_COMMAND_DOCS = ["README.md", "docs/CLI.md", "docs/PORTAL.md", "docs/TESTING.md"]


@pytest.mark.parametrize("doc", _COMMAND_DOCS)
def test_every_command_in_the_readme_exists(doc: str) -> None:
    verbs = _verbs(build_parser())
    text = (ROOT / doc).read_text(encoding="utf-8")
    named = re.findall(r"offline-service ([a-z]+(?: [a-z]+)?)", text)
    assert named
    for phrase in named:
        words = phrase.split()
        assert phrase in verbs or words[0] in verbs, (doc, phrase)


def test_the_readme_links_every_doc() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Documentation\n", 1)[1].split("\n## ", 1)[0]
    for path in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{path.name})" in section, f"README Documentation does not list docs/{path.name}"


def _documented_key_variants() -> tuple[str, list[str], list[str]]:
    """From docs/FORMAT.md: the example key, the typed forms said to name it, and those said not to."""
    text = " ".join((ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8").split())
    same = re.search(r"These all name the key `([^`]+)`: ((?:`[^`]+`(?:, | and )?)+)", text)
    other = re.search(r"These name no key: ((?:`[^`]+`(?:, | and )?)+)", text)
    assert same and other, "docs/FORMAT.md no longer shows how typed license keys are matched"
    return same.group(1), re.findall(r"`([^`]+)`", same.group(2)), re.findall(r"`([^`]+)`", other.group(1))


def test_license_keys_are_matched_as_docs_format_says(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    key, same, other = _documented_key_variants()
    assert len(same) >= 4 and len(other) >= 3
    monkeypatch.setattr(admin, "new_license_key", lambda: key)
    lic = world.license(activations=len(same) + len(other))
    assert lic.key == key
    for i, typed in enumerate(same):
        assert normalize_license_key(typed) == key, typed
        request = world.machine(f"same{i}").request(Kind.ACTIVATION, world.product.id, license_key=typed)
        assert world.process(request).code is Code.OK, typed
    for i, typed in enumerate(other):
        request = world.machine(f"other{i}").request(Kind.ACTIVATION, world.product.id, license_key=typed)
        assert world.process(request).code is Code.LICENSE_NOT_FOUND, typed


# Module names every domain package may have without the layout naming them: the README's Layout
# section introduces them once for all domains.
_CONVENTIONAL = {
    "__init__",
    "models",
    "services",
    "store",
    "cli",
    "api",
    "pages",
    "openapi",
    "representations",
}


def _layout() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout\n", 1)[1]
    return section.split("\n## ", 1)[0]


def test_the_readme_layout_names_every_package_and_module() -> None:
    layout = _layout()
    package = ROOT / "offline_service"
    missing = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        if len(rel.parts) > 2 or "migrations" in rel.parts:
            continue
        if len(rel.parts) == 2 and f"{rel.parts[0]}/" not in layout:
            missing.append(f"{rel.parts[0]}/")
        stem = path.stem
        if stem.startswith("__") or (len(rel.parts) == 2 and stem in _CONVENTIONAL):
            continue
        if not stem.startswith("_") and not re.search(rf"(?<![\w/]){re.escape(stem)}\.py\b", layout):
            missing.append(str(rel))
    assert not missing, f"README Layout does not say where these live: {sorted(set(missing))}"
