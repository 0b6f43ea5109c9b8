"""Errors as the portal shows them: one plain sentence per code (words.py) with the code beneath;
the portal's own 404, 403 and 405 pages in its frame while the API keeps its JSON; and the flash
cookie that carries a refused form's problem to its page, read back as the hostile input it may be."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from offline_service.errors import Code
from offline_service.next_steps import next_step
from offline_service.web.kit import FLASH_BYTES, FLASH_COOKIE, KEPT
from offline_service.web.words import DETAILED, LINKS, PLAIN_WORDS, VARIANTS, wait_words
from tests.web.pages import has_inline_script, text
from tests.web.portal import Portal, refused, shown_text, submit

# The client SDK's codes, about response files on the machine: no portal page shows them.
CLIENT_CODES = {
    Code.MALFORMED_RESPONSE,
    Code.UNKNOWN_SIGNING_KEY,
    Code.WRONG_PRODUCT,
    Code.WRONG_MACHINE,
    Code.RESPONSE_EXPIRED,
    Code.CLOCK_ROLLBACK,
    Code.TRIAL_EXPIRED,
    Code.NOT_ACTIVATED,
    Code.UNEXPECTED_RESPONSE,
}
# The CLI's only (account customize --logo; restore).
CLI_CODES = {Code.BAD_IMAGE, Code.BAD_BACKUP, Code.WEBHOOK_URL_REFUSED}
JARGON = re.compile(r"\b(JWS|typ|compact|serialization|payload|base64\w*|JSON|nonce|jwk|kid|HTTP)\b", re.I)

# -- the words -----------------------------------------------------------------------------------


def test_every_code_a_page_can_show_has_plain_words() -> None:
    shown = set(Code) - CLIENT_CODES - CLI_CODES - {Code.OK}
    assert shown <= set(PLAIN_WORDS), sorted(shown - set(PLAIN_WORDS))
    assert Code.OK not in PLAIN_WORDS


@pytest.mark.parametrize(
    "sentence",
    [*PLAIN_WORDS.values(), *(v[1] for v in VARIANTS.values()), wait_words(1), wait_words(900)],
)
def test_the_words_say_what_happened_and_what_to_do_without_jargon(sentence: str) -> None:
    assert not JARGON.search(sentence), sentence
    assert sentence[0].isupper() and sentence.endswith((".", "?")), sentence
    # What happened, then what to do: at least two parts, each a short sentence.
    assert len(re.findall(r"[.:;?]( |$)", sentence)) >= 2, sentence
    assert len(sentence) <= 200, sentence


def test_links_and_variants_are_local_and_name_words_of_their_sentence() -> None:
    for code, (href, words) in LINKS.items():
        assert href.startswith("/") and not href.startswith("//") and words in PLAIN_WORDS[code]
    for name, (code, sentence, link) in VARIANTS.items():
        assert re.fullmatch(r"[a-z][a-z-]*", name) and code in PLAIN_WORDS
        if link is not None:
            assert link[0].startswith("/") and not link[0].startswith("//") and link[1] in sentence
    assert set(PLAIN_WORDS) >= DETAILED
    assert wait_words(1) == "Too many failed attempts. Wait 1 second, then try again."
    assert wait_words(119) == "Too many failed attempts. Wait 119 seconds, then try again."
    assert wait_words(121) == "Too many failed attempts. Wait 3 minutes, then try again."


def test_no_secret_field_can_travel_with_a_refused_form() -> None:
    for name in KEPT:
        assert not re.search(r"password|token|csrf|confirm|secret|key", name), name
    assert KEPT["text"] > FLASH_BYTES  # a long pasted text is dropped, and the page says so


def test_an_error_shows_its_sentence_with_the_code_beneath_and_no_engine_words(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    page = refused(client, submit(client, "/activate", {"text": "not a request"}), "MALFORMED_REQUEST")
    alert = re.search(r'<div class="notice error" role="alert"[^>]*>(.*?)</div>', page.text, re.S)
    assert alert, page.text
    assert re.fullmatch(
        r'\s*(?:\{#.*?#\}\s*)?<p class="plain">This is not a request file the portal can read\.[^<]*</p>\s*'
        r'<p class="code">Code: MALFORMED_REQUEST</p>\s*',
        alert.group(1),
        re.S,
    ), alert.group(1)
    assert "JWS" not in page.text and "compact" not in page.text


# -- the portal's own error pages ----------------------------------------------------------------


def test_an_unknown_path_is_a_page_of_the_portal_with_its_menu_and_a_way_back(portal: Portal) -> None:
    bob = portal.login("bob@example.com")
    for path in ("/no/such/page", "/licenses/lic_0123456789abcdef0123456789abcdef/nothing"):
        page = bob.get(path)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html"), path
        assert "<h1>Not found</h1>" in page.text and "Code: NOT_FOUND" in page.text
        assert '<nav id="main-menu"' in page.text and "Signed in as" in page.text  # the portal's frame
        assert '<a href="/">Back to the dashboard</a>' in page.text
        assert "This page does not exist, or you may not see it." in page.text
    anonymous = portal.client().get("/no/such/page")
    assert anonymous.status_code == 404 and "Code: NOT_FOUND" in anonymous.text
    assert '<nav id="main-menu"' not in anonymous.text and '<a href="/login">' in anonymous.text


def test_an_unknown_id_and_a_forbidden_page_have_their_status_in_the_frame(portal: Portal) -> None:
    bob = portal.login("bob@example.com")
    missing = bob.get("/licenses/lic_0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and "Code: LICENSE_NOT_FOUND" in missing.text
    assert "<h1>Not found</h1>" in missing.text and '<nav id="main-menu"' in missing.text
    forbidden = bob.get("/organization/users")
    assert forbidden.status_code == 403 and "<h1>Not allowed</h1>" in forbidden.text
    assert "Code: FORBIDDEN" in forbidden.text and '<nav id="main-menu"' in forbidden.text


def test_a_method_a_page_does_not_take_is_a_portal_page_naming_the_allowed_ones(portal: Portal) -> None:
    bob = portal.login("bob@example.com")
    response = bob.get("/logout")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert "<h1>Not available this way</h1>" in response.text and '<nav id="main-menu"' in response.text
    assert "This address cannot be used that way." in response.text
    assert "Code: INVALID_ARGUMENT" in response.text


def test_the_api_keeps_its_json_errors(portal: Portal) -> None:
    client = portal.login("bob@example.com")  # a session cookie changes nothing on the API's paths
    for path, status, code in (
        ("/v1/nothing-here", 404, "NOT_FOUND"),
        ("/v1/licenses/lic_0123456789abcdef0123456789abcdef", 401, "UNAUTHENTICATED"),
        ("/.well-known/nothing", 404, "NOT_FOUND"),
    ):
        response = client.get(path)
        assert response.status_code == status and response.headers["content-type"] == "application/json"
        assert set(response.json()) == {"code", "message", "nextStep"} and response.json()["code"] == code, (
            path
        )
        assert response.json()["nextStep"] == next_step(code)
    wrong = client.delete("/v1/accounts/login")
    assert (
        wrong.status_code == 405 and wrong.json()["code"] == "INVALID_ARGUMENT" and "allow" in wrong.headers
    )


def test_the_error_page_has_the_accounts_look_on_its_domain(make_site: Any) -> None:
    from offline_service.branding import services as branding
    from tests.factories import NOW

    site = make_site()
    branding.customize(
        site.svc.store,
        site.acme,
        data_dir=site.svc.settings.data_dir,
        now=NOW,
        portal_name="Acme <Portal>",
        custom_domain="portal.acme.example",
    )
    browser = TestClient(site.client.app, base_url="http://portal.acme.example", follow_redirects=False)
    page = browser.get("/no/such/page")
    assert page.status_code == 404 and "Acme &lt;Portal&gt;" in page.text
    assert "<title>Not found · Acme &lt;Portal&gt;</title>" in page.text


# -- the flash cookie, read back as hostile input --------------------------------------------------


def _flash(payload: Any) -> str:
    return quote(json.dumps(payload), safe="")


def _shown(client: TestClient, path: str, raw: str) -> Any:
    """``path`` with a flash cookie of ``raw`` (as a hostile browser could send it)."""
    client.cookies.set(FLASH_COOKIE, raw, path=path)
    page = client.get(path)
    assert page.status_code == 200, page.text
    assert not has_inline_script(page.text) and "<b>" not in page.text and "<img" not in page.text
    cleared = page.headers.get("set-cookie", "")
    assert f"{FLASH_COOKIE}=" in cleared and "Max-Age=0" in cleared  # dropped, whatever it held
    return page


HOSTILE_FLASHES = {
    "not json": "{{{",
    "bad percent": "%ZZ%",
    "not utf-8": "%FF%FE",
    "deep": quote("[" * 5000, safe=""),
    "a list": _flash(["INVALID_ARGUMENT"]),
    "unknown code": _flash({"p": "/activate", "c": "NO_SUCH_CODE", "m": "<b>boo</b>"}),
    "ok": _flash({"p": "/activate", "c": "OK"}),
    "a client code": _flash({"p": "/activate", "c": "WRONG_MACHINE"}),
    "code not a string": _flash({"p": "/activate", "c": ["INVALID_ARGUMENT"]}),
    "another page": _flash({"p": "/deactivate", "c": "INVALID_ARGUMENT"}),
    "no page": _flash({"c": "INVALID_ARGUMENT"}),
    "too long": _flash({"p": "/activate", "c": "INVALID_ARGUMENT", "v": {"text": "A" * 20_000}}),
}


@pytest.mark.parametrize("raw", HOSTILE_FLASHES.values(), ids=HOSTILE_FLASHES.keys())
def test_a_flash_that_is_not_ours_shows_nothing(portal: Portal, raw: str) -> None:
    client = portal.login("bob@example.com")
    page = _shown(client, "/activate", raw)
    assert 'role="alert"' not in page.text and "Code:" not in page.text


def test_a_flash_with_html_and_strange_values_is_shown_escaped_and_cut(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    payload = {
        "p": "/activate",
        "c": "INVALID_ARGUMENT",
        "m": "<img src=x onerror=alert(1)>" + "m" * 5000,
        "w": "response-file",  # a variant of another code: the code's own words
        "s": 10**12,
        "f": '"><b>form</b>',
        "v": {
            "text": "<b>pasted</b>\x00\x1b[31m",
            "validity": "<b>",
            "password": "hunter2 secret",
            "csrf": "x" * 43,
            "email": ["not", "a", "string"],
        },
        "x": [["unhashable"], "text", 7],
    }
    page = _shown(client, "/activate", _flash(payload))
    assert "Code: INVALID_ARGUMENT" in page.text and 'role="alert"' in page.text
    assert PLAIN_WORDS[Code.INVALID_ARGUMENT] in page.text  # never the words of another code
    assert "This is a response file" not in page.text
    detail = re.search(r'<p class="detail">Details: ([^<]*)</p>', page.text)
    assert detail and detail.group(1).startswith("&lt;img src=x onerror=alert(1)&gt;")
    assert len(detail.group(1)) < 400  # cut to its length
    assert "&lt;b&gt;pasted&lt;/b&gt;" in page.text and "\x00" not in page.text and "\x1b" not in page.text
    assert "hunter2" not in page.text and "x" * 43 not in page.text
    assert "paste it again" in page.text  # "x" named the text as dropped, even with junk beside it


def test_a_flash_keeps_only_known_fields_each_cut_to_its_length(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    payload = {
        "p": "/profile",
        "c": "CONFLICT",
        "f": "name",
        "v": {"first_name": "y" * 5000, "last_name": "Ok"},
    }
    page = _shown(client, "/profile", _flash(payload))
    assert f'value="{"y" * 100}"' in page.text and "y" * 101 not in page.text
    assert 'value="Ok"' in page.text
    assert 'aria-describedby="messages"' in page.text  # the form it names says so


@pytest.mark.parametrize("seconds", [0, -5, 10**9, "30", 1.5, None, True])
def test_a_flash_with_a_strange_wait_says_the_plain_words(portal: Portal, seconds: Any) -> None:
    client = portal.client()
    page = _shown(client, "/login", _flash({"p": "/login", "c": "RATE_LIMITED", "s": seconds}))
    assert PLAIN_WORDS[Code.RATE_LIMITED] in page.text


def test_a_flash_with_a_wait_says_how_long(portal: Portal) -> None:
    client = portal.client()
    page = _shown(client, "/login", _flash({"p": "/login", "c": "RATE_LIMITED", "s": 30}))
    assert "Too many failed attempts. Wait 30 seconds, then try again." in page.text


# -- what the flash carries --------------------------------------------------------------------


def test_pasted_text_is_kept_when_it_fits_and_else_asked_for_again(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    short = "not a request " * 100  # 1,400 characters
    page = refused(
        client, submit(client, "/activate", {"text": short, "validity": "30"}), "MALFORMED_REQUEST"
    )
    assert short.strip() in page.text and '<option value="30" selected>' in page.text
    assert "paste it again" not in page.text
    long = "not a request " * 400  # 5,600 characters: more than the cookie can carry
    posted = submit(client, "/activate", {"text": long, "validity": "30"})
    assert len(posted.headers["set-cookie"]) < 4096
    page = refused(client, posted, "MALFORMED_REQUEST")
    assert "not a request not a request" not in page.text
    assert "The text you pasted was too long to keep here: paste it again." in shown_text(page.text)
    assert '<option value="30" selected>' in page.text  # what fits is still kept


def test_the_flash_cookie_is_secure_behind_https(portal: Portal) -> None:
    client = TestClient(portal.app, base_url="https://testserver", follow_redirects=False)
    posted = submit(
        client, "/login", {"account": "acme", "email": "bob@example.com", "password": "wrong 1234"}
    )
    assert posted.status_code == 303
    cookie = next(c for c in posted.headers.get_list("set-cookie") if c.startswith(f"{FLASH_COOKIE}="))
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/login" in cookie and "Max-Age=60" in cookie
    assert "wrong" not in cookie
    page = client.get(posted.headers["location"])
    assert "Code: INVALID_CREDENTIALS" in page.text
    assert "INVALID_CREDENTIALS" not in client.get("/login").text  # shown once


def test_text_of_a_refusal_names_no_internal_path(portal: Portal) -> None:
    client = portal.login("bob@example.com")
    page = refused(client, submit(client, "/activate", {}), "INVALID_ARGUMENT")
    body = text(page.text)
    assert str(portal.svc.settings.data_dir) not in body and "Traceback" not in body


def test_an_upload_over_the_limit_goes_back_to_its_page_and_other_bodies_get_the_portal_page(
    portal: Portal,
) -> None:
    client = portal.login("bob@example.com")
    before = portal.snapshot()
    big = {"file": ("huge.pdf", b"%PDF" + b"x" * (80 * 1024), "application/pdf")}
    page = refused(client, submit(client, "/activate", {}, files=big), "REQUEST_TOO_LARGE")
    assert "This file is larger than this page takes." in page.text and "64 KiB at most" in page.text
    assert portal.snapshot() == before
    too_much = client.post("/profile/name", data={"first_name": "x" * (80 * 1024)})
    assert too_much.status_code == 413 and too_much.headers["content-type"].startswith("text/html")
    assert "<h1>Too large</h1>" in too_much.text and '<nav id="main-menu"' in too_much.text
    api = client.post("/v1/accounts/login", content=b"{" + b" " * (80 * 1024) + b"}")
    assert api.status_code == 413 and api.json()["code"] == "REQUEST_TOO_LARGE"
