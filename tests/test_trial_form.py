"""The static trial form (trial_form/) keeps the rules its CSP and its threat model rest on: no
inline script or style, nothing from another origin, no way for text to become markup, and plain
words for every refusal the trial endpoint can answer with. Its behaviour is tested in Chromium
(tests/browser/test_trial_form_in_chromium.py)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORM = ROOT / "trial_form"
SCRIPT = (FORM / "trial-form.js").read_text(encoding="utf-8")

# What POST /v1/trial-activations/offline-activate can refuse with, short of a 5xx.
TRIAL_REFUSALS = [
    "MALFORMED_REQUEST",
    "UNSUPPORTED_VERSION",
    "BAD_SIGNATURE",
    "REQUEST_TOO_LARGE",
    "REQUEST_EXPIRED",
    "REQUEST_FROM_FUTURE",
    "PRODUCT_NOT_FOUND",
    "PRODUCT_MISMATCH",
    "TRIAL_NOT_ALLOWED",
    "RATE_LIMITED",
    "TRIAL_DAILY_LIMIT",
    "INVALID_ARGUMENT",
]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _page() -> list[tuple[str, dict[str, str | None]]]:
    parser = _Page()
    parser.feed((FORM / "index.html").read_text(encoding="utf-8"))
    return parser.tags


def test_the_page_loads_only_its_own_files_and_nothing_inline() -> None:
    tags = _page()
    assert "style" not in {tag for tag, _ in tags}
    for tag, attrs in tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                assert re.fullmatch(r"[a-z0-9-]+\.(js|css|svg)", value), value
                assert (FORM / value).is_file(), value
    scripts = [attrs["src"] for tag, attrs in tags if tag == "script"]
    assert scripts == ["config.js", "trial-form.js"]  # the config first, both classic scripts
    assert all(attrs.get("type") is None for tag, attrs in tags if tag == "script")


def test_the_page_has_a_strict_csp() -> None:
    [csp] = [
        a["content"] for t, a in _page() if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["base-uri"] == "'none'"
    assert "unsafe" not in csp and "*" not in directives["connect-src"].replace(":*", "")


@pytest.mark.parametrize(
    "sink", ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(", "srcdoc"]
)
def test_the_script_never_turns_text_into_markup_or_code(sink: str) -> None:
    assert sink not in SCRIPT


def test_the_script_and_stylesheet_reach_no_other_origin() -> None:
    css = (FORM / "trial-form.css").read_text(encoding="utf-8")
    assert "@import" not in css and "url(" not in css
    code = re.sub(r"//.*", "", SCRIPT)  # URLs in comments are not fetched
    assert not re.search(r"https?://", code)


@pytest.mark.parametrize("code", TRIAL_REFUSALS)
def test_every_trial_refusal_has_plain_words(code: str) -> None:
    assert re.search(rf"\b{code}: ", SCRIPT), code


def test_the_pages_workflow_publishes_the_form() -> None:
    workflow = (ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8")
    assert "actions/upload-pages-artifact@" in workflow and "actions/deploy-pages@" in workflow
    assert re.search(r"path: trial_form\b", workflow)
