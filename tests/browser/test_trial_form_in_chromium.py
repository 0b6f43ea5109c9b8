"""The static trial form (trial_form/) in a real browser, served from its own origin and talking
to a live ``offline-service serve`` on another port: a person gives it the trial request file the
app wrote, and carries back a response that ``offline-client activate`` accepts."""

from __future__ import annotations

import base64
import itertools
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Download, Page, Route, expect

from offline_service.fileformat.keyring import Keyring
from tests.browser.harness import CSP_REPORTER, Console, FormSite, TrialService, copy_form

pytestmark = pytest.mark.slow

TRIAL_PATH = "/v1/trial-activations/offline-activate"
DAY = 86_400
GRANTED = "Trial granted"
UNVERIFIED = "The trial response could not be verified, so it is not offered for download"
DOWNLOAD_NAME = re.compile(r"[A-Za-z0-9._-]+-trl_[A-Za-z0-9]+-trial\.response")
_CASES = itertools.count()  # each published copy of the form gets its own directory


# -- the app's side: offline-client, as a person (or the app) runs it ----------------------------


def offline_client(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "offline_service.client.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Machine:
    """An installation of the app on an offline machine: a state directory and a fingerprint."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.state = root / f"{name}-state"
        self.fingerprint = f"fp-{name}-{time.monotonic_ns()}"  # a machine of its own in every test

    def trial_request(self, product_id: str, name: str = "trial.req") -> Path:
        out = self.root / name
        done = offline_client(
            "trial-request",
            *("--product", product_id, "--state", self.state, "--out", out),
            *("--fingerprint", self.fingerprint),
        )
        assert done.returncode == 0, done.stderr
        return out

    def activate(self, response: Path, service: TrialService) -> str:
        """``offline-client activate`` with the trial product's published keys; its output."""
        jwks = self.root / "jwks.json"
        jwks.write_text(json.dumps(Keyring(service.keys).jwks(service.product_id)), encoding="utf-8")
        done = offline_client("activate", response, "--state", self.state, "--jwks", jwks)
        assert done.returncode == 0, done.stderr
        return done.stdout


def ask_directly(service: TrialService, request: Path) -> dict[str, Any]:
    """The service's answer to a trial request sent without the page (no browser, no CORS)."""
    body = {"productId": service.product_id, "offlineRequest": request.read_text()}
    post = urllib.request.Request(
        f"{service.url}{TRIAL_PATH}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(post, timeout=30) as answer:
        found: dict[str, Any] = json.load(answer)
        return found


def payload_of(token: str) -> dict[str, Any]:
    segment = token.strip().split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return decoded


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# -- the person's side: the page ----------------------------------------------------------------


@pytest.fixture
def api_calls(page: Page, trial_service: TrialService) -> list[str]:
    """Every request the page makes to the service (method and URL)."""
    seen: list[str] = []
    page.on(
        "request",
        lambda r: seen.append(f"{r.method} {r.url}") if r.url.startswith(trial_service.url) else None,
    )
    return seen


@pytest.fixture
def form(form_site: FormSite, trial_service: TrialService) -> Callable[..., str]:
    """Publishes a copy of the form with the service's configuration (and any overrides); its URL."""

    def publish(**overrides: Any) -> str:
        return form_site.publish(f"case{next(_CASES)}", trial_service.config(**overrides))

    return publish


def unexpected(console: Console, *known: str) -> list[str]:
    """The console's problems, less those holding one of the ``known`` texts."""
    return [p for p in console.problems if not any(k in p for k in known)]


def submit(page: Page, product: str, request: Path) -> None:
    page.get_by_label("Product to try").select_option(label=product)
    page.get_by_label("The file the app wrote").set_input_files(request)
    page.get_by_role("button", name="Get the trial response").click()


def download(page: Page) -> Download:
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the trial response").click()
    return info.value


def expect_no_download(page: Page) -> None:
    expect(page.get_by_role("button", name="Download the trial response")).to_be_hidden()


def test_a_trial_from_the_form_is_accepted_by_offline_client(
    page: Page,
    form: Callable[..., str],
    trial_service: TrialService,
    console: Console,
    tmp_path: Path,
    api_calls: list[str],
) -> None:
    machine = Machine(tmp_path, "lab-pc")
    request = machine.trial_request(trial_service.product_id)
    page.goto(form())
    expect(page.get_by_role("heading", name="Trial for an offline machine")).to_be_visible()
    submit(page, "Trial App", request)

    expect(page.get_by_role("heading", name=GRANTED)).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Trial granted and verified.")
    got = download(page)
    assert DOWNLOAD_NAME.fullmatch(got.suggested_filename), got.suggested_filename
    response = tmp_path / got.suggested_filename
    got.save_as(response)
    granted = payload_of(response.read_text(encoding="ascii"))
    assert granted["kind"] == "trial" and granted["fingerprint"] == machine.fingerprint
    assert granted["trialEndsAt"] - granted["iat"] == 14 * DAY
    result = page.get_by_role("region", name=GRANTED)
    expect(result.locator("#result-ends")).to_have_attribute("datetime", iso(granted["trialEndsAt"]))
    expect(result).to_contain_text("Trial App")
    expect(result).to_contain_text("(published by the service)")

    # Back on the offline machine, the client verifies it against the product's keys and applies it.
    assert "activated: trial" in machine.activate(response, trial_service)
    status = offline_client("status", "--state", machine.state)
    assert status.returncode == 0 and status.stdout.startswith("valid: trial"), status
    # The keys were not pinned, so the page read them from the service: one trial, one JWKS.
    assert [c.split("?")[0] for c in api_calls] == [
        f"POST {trial_service.url}{TRIAL_PATH}",
        f"GET {trial_service.url}/.well-known/jwks.json",
    ]
    assert console.problems == [], "\n".join(console.problems)


def _extend(answer: dict[str, Any]) -> None:
    """A year more of trial: the payload changed (and the answer's trialEndsAt), the signature kept."""
    header, _, signature = answer["offlineResponse"].split(".")
    changed = payload_of(answer["offlineResponse"])
    changed["trialEndsAt"] += 365 * DAY
    answer["trialEndsAt"] = changed["trialEndsAt"]
    answer["offlineResponse"] = ".".join((header, b64url(json.dumps(changed).encode()), signature))


def _flip_signature(answer: dict[str, Any]) -> None:
    """One byte of the signature changed (the text still canonical base64url)."""
    header, payload, signature = answer["offlineResponse"].split(".")
    middle = len(signature) // 2
    swapped = "B" if signature[middle] == "A" else "A"
    answer["offlineResponse"] = ".".join(
        (header, payload, signature[:middle] + swapped + signature[middle + 1 :])
    )


def _garble(answer: dict[str, Any]) -> None:
    answer["offlineResponse"] = answer["offlineResponse"].replace(".", "x", 1)


@pytest.mark.parametrize(
    ("tamper", "says"),
    [
        (_extend, "its signature does not match the service's key"),
        (_flip_signature, "its signature does not match the service's key"),
        (_garble, "it is not a valid response file"),
    ],
    ids=["trial-extended", "signature-byte-flipped", "not-a-jws"],
)
def test_a_tampered_response_is_refused_and_not_offered(
    page: Page,
    form: Callable[..., str],
    trial_service: TrialService,
    console: Console,
    tmp_path: Path,
    tamper: Callable[[dict[str, Any]], None],
    says: str,
) -> None:
    """Someone between the page and the service (a proxy, an extension) changes the answer."""

    def change_answer(route: Route) -> None:
        answer = route.fetch()
        body = answer.json()
        tamper(body)
        route.fulfill(response=answer, body=json.dumps(body))

    page.route(f"{trial_service.url}{TRIAL_PATH}", change_answer)
    page.goto(form())
    submit(page, "Trial App", Machine(tmp_path, "victim").trial_request(trial_service.product_id))
    expect(page.get_by_role("alert")).to_contain_text(f"{UNVERIFIED}: {says}.")
    expect(page.get_by_role("heading", name=GRANTED)).to_be_hidden()
    expect_no_download(page)
    assert console.problems == [], "\n".join(console.problems)


def test_a_response_for_another_request_is_refused(
    page: Page, form: Callable[..., str], trial_service: TrialService, console: Console, tmp_path: Path
) -> None:
    """A genuine, validly signed response, but for another machine's request, is not offered."""
    someone_elses = ask_directly(
        trial_service, Machine(tmp_path, "other").trial_request(trial_service.product_id, "o.req")
    )

    def swap(route: Route) -> None:
        route.fulfill(response=route.fetch(), body=json.dumps(someone_elses))

    page.route(f"{trial_service.url}{TRIAL_PATH}", swap)
    page.goto(form())
    submit(page, "Trial App", Machine(tmp_path, "mine").trial_request(trial_service.product_id))
    expect(page.get_by_role("alert")).to_contain_text(f"{UNVERIFIED}: it does not answer this request")
    expect_no_download(page)
    assert console.problems == [], "\n".join(console.problems)


def test_a_machine_that_had_its_trial_gets_the_same_trial_again(
    page: Page, form: Callable[..., str], trial_service: TrialService, console: Console, tmp_path: Path
) -> None:
    machine = Machine(tmp_path, "returning")
    url = form()
    page.goto(url)
    submit(page, "Trial App", machine.trial_request(trial_service.product_id, "first.req"))
    expect(page.get_by_role("heading", name=GRANTED)).to_be_visible()
    first = tmp_path / "first.response"
    download(page).save_as(first)
    ends = payload_of(first.read_text())["trialEndsAt"]
    machine.activate(first, trial_service)

    # Later, the same machine asks again (a reinstall, or hoping for more).
    page.reload()
    submit(page, "Trial App", machine.trial_request(trial_service.product_id, "second.req"))
    result = page.get_by_role("region", name="Trial already used")
    expect(result).to_contain_text(
        "This machine already had its trial of Trial App; a trial is never extended."
    )
    expect(result.locator("#result-ends")).to_have_attribute("datetime", iso(ends))  # the same end
    expect(page.get_by_role("status")).to_have_text("This machine already had its trial.")
    again = tmp_path / "again.response"
    download(page).save_as(again)
    assert payload_of(again.read_text())["trialEndsAt"] == ends
    assert "activated: trial" in machine.activate(again, trial_service)
    assert console.problems == [], "\n".join(console.problems)


def test_an_ended_trial_is_shown_as_ended_and_not_offered(
    page: Page, form: Callable[..., str], trial_service: TrialService, console: Console, tmp_path: Path
) -> None:
    machine = Machine(tmp_path, "expired")
    ends = ask_directly(trial_service, machine.trial_request(trial_service.product_id, "a.req"))[
        "trialEndsAt"
    ]
    # Fifteen days on, as far as the page's clock is concerned: the 14-day trial has ended.
    page.clock.set_fixed_time(time.time() + 15 * DAY)
    page.goto(form())
    submit(page, "Trial App", machine.trial_request(trial_service.product_id, "b.req"))
    result = page.get_by_role("region", name="Trial already used")
    expect(result).to_contain_text("This machine already had its trial of Trial App, and it ended on")
    expect(result.locator("#result-ends")).to_have_attribute("datetime", iso(ends))
    expect_no_download(page)
    assert console.problems == [], "\n".join(console.problems)


def test_a_product_without_trials_is_refused_in_plain_words(
    page: Page, form: Callable[..., str], trial_service: TrialService, console: Console, tmp_path: Path
) -> None:
    page.goto(form())
    submit(page, "No Trials", Machine(tmp_path, "hopeful").trial_request(trial_service.no_trials_id))
    expect(page.get_by_role("alert")).to_have_text(
        "Trials are not offered for this product. Buy a license, or ask the vendor. (TRIAL_NOT_ALLOWED)"
    )
    expect(page.get_by_role("region", name=GRANTED)).to_be_hidden()
    expect_no_download(page)
    # The browser itself logs the refusal (a 422) on the console; nothing else may be there.
    assert (
        unexpected(console, f"status of 422 (Unprocessable Entity) ({trial_service.url}{TRIAL_PATH})") == []
    )


def test_a_service_that_is_down_is_reported_as_unreachable(
    page: Page, form: Callable[..., str], trial_service: TrialService, console: Console, tmp_path: Path
) -> None:
    with socket.socket() as s:  # a port that was free a moment ago, and that nothing listens on
        s.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{s.getsockname()[1]}"
    page.goto(form(apiBaseUrl=down))
    submit(page, "Trial App", Machine(tmp_path, "offline").trial_request(trial_service.product_id))
    expect(page.get_by_role("alert")).to_contain_text(f"The trial service at {down} could not be reached.")
    expect_no_download(page)
    # The failed load is recorded (the recorder does see failures), and nothing else went wrong.
    assert f"failed to load {down}{TRIAL_PATH}: net::ERR_CONNECTION_REFUSED" in console.problems
    assert unexpected(console, f"{down}{TRIAL_PATH}") == [], console.problems


def _activation_request(tmp: Path, service: TrialService) -> Path:
    out = tmp / "activation.req"
    done = offline_client(
        "request",
        *("--product", service.product_id, "--key", "ABCDE-FGHIJ-KLMNO-PQRST-UVWXY"),
        *("--state", tmp / "lic-state", "--out", out, "--fingerprint", "fp-licensed"),
    )
    assert done.returncode == 0, done.stderr
    return out


def _response_file(tmp: Path, service: TrialService) -> Path:
    out = tmp / "trial.response"
    answer = ask_directly(service, Machine(tmp, "answered").trial_request(service.product_id))
    out.write_text(answer["offlineResponse"] + "\n", encoding="ascii")
    return out


def _file(name: str, data: bytes) -> Callable[[Path, TrialService], Path]:
    def make(tmp: Path, service: TrialService) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return make


NOT_A_REQUEST = [
    (_activation_request, "This is an activation request (it is for a license key), not a trial request."),
    (_response_file, "This is a response file, not a request."),
    (
        lambda tmp, service: Machine(tmp, "other-product").trial_request(service.no_trials_id),
        "This trial request is for No Trials, not Trial App. Choose No Trials above",
    ),
    (
        _file("notes.txt", b"Dear vendor, please send a trial.\n"),
        "This is not a trial request file: it is not in the format the app writes.",
    ),
    (_file("photo.jpg", bytes(range(256)) * 8), "“photo.jpg” is not a trial request: it is not a text file."),
    (_file("huge.req", b"A" * 16385), "“huge.req” is too large to be a trial request (at most 16 KiB)."),
    (_file("a.b.c", b"a.b.c\n"), "This is not a trial request file: it is not in the format the app writes."),
    ("pasted garbage", "This is not a trial request file: it is not in the format the app writes."),
    (None, "Choose the trial request file, drop it on the page, or paste its text."),
]


@pytest.mark.parametrize(
    ("given", "says"),
    NOT_A_REQUEST,
    ids=[
        "activation-request",
        "response-file",
        "other-product",
        "text",
        "binary",
        "too-large",
        "dots",
        "pasted",
        "nothing",
    ],
)
def test_what_is_not_a_trial_request_is_refused_before_sending(
    page: Page,
    form: Callable[..., str],
    trial_service: TrialService,
    console: Console,
    tmp_path: Path,
    api_calls: list[str],
    given: Callable[[Path, TrialService], Path] | str | None,
    says: str,
) -> None:
    page.goto(form())
    page.get_by_label("Product to try").select_option(label="Trial App")
    if callable(given):
        page.get_by_label("The file the app wrote").set_input_files(given(tmp_path, trial_service))
    elif given is not None:
        page.get_by_label("Or paste its text").fill(given)
    page.get_by_role("button", name="Get the trial response").click()
    expect(page.get_by_role("alert")).to_contain_text(says)
    expect(page.get_by_role("region", name=GRANTED)).to_be_hidden()
    assert api_calls == []  # refused on the page: the service never saw it
    assert console.problems == [], "\n".join(console.problems)


def test_pinned_keys_are_used_instead_of_the_service_s(
    page: Page,
    form: Callable[..., str],
    trial_service: TrialService,
    console: Console,
    tmp_path: Path,
    api_calls: list[str],
) -> None:
    keyring = Keyring(trial_service.keys)
    pinned = trial_service.config()["products"]
    pinned[0]["jwks"] = keyring.jwks(trial_service.product_id)
    page.goto(form(products=pinned))
    submit(page, "Trial App", Machine(tmp_path, "pinned").trial_request(trial_service.product_id))
    expect(page.get_by_role("region", name=GRANTED)).to_contain_text("(pinned in this page)")
    download(page)
    assert [c.split(" ")[0] for c in api_calls] == ["POST"]  # no JWKS fetched

    # Pinned keys that did not sign the response: refused, even though the service publishes the
    # right one (the other product's key, relabelled for this product).
    wrong = keyring.jwks(trial_service.no_trials_id)
    for key in wrong["keys"]:
        key["product"] = trial_service.product_id
    pinned[0]["jwks"] = wrong
    page.goto(form(products=pinned))
    submit(page, "Trial App", Machine(tmp_path, "mispinned").trial_request(trial_service.product_id))
    expect(page.get_by_role("alert")).to_contain_text(
        f"{UNVERIFIED}: it is signed with a key that is not one of Trial App's keys."
    )
    expect_no_download(page)
    assert [c.split(" ")[0] for c in api_calls] == ["POST", "POST"]
    assert console.problems == [], "\n".join(console.problems)


@pytest.mark.parametrize(
    ("status", "headers", "body", "says"),
    [
        (
            429,
            {"retry-after": "120"},
            {"code": "RATE_LIMITED", "message": "x"},
            "Too many requests from your network. Try again in 2 minutes. (RATE_LIMITED)",
        ),
        (
            429,
            {"retry-after": "7200"},
            {"code": "TRIAL_DAILY_LIMIT", "message": "x"},
            "Your network has had as many new trials today as the service gives to one address. Try again in 2 hours. (TRIAL_DAILY_LIMIT)",
        ),
        (
            422,
            {},
            {"code": "REQUEST_EXPIRED", "message": "x"},
            "The request is too old, or the machine's clock is behind.",
        ),
        (
            404,
            {},
            {"code": "PRODUCT_NOT_FOUND", "message": "x"},
            "This page's list of products is out of date: tell the vendor. (PRODUCT_NOT_FOUND)",
        ),
        (
            503,
            {},
            {"code": "STORAGE_ERROR", "message": "x"},
            "The trial service had a problem of its own (HTTP 503, STORAGE_ERROR).",
        ),
        (
            502,
            {"content-type": "text/html"},
            "<h1>Bad gateway</h1>",
            "The trial service had a problem of its own (HTTP 502).",
        ),
        (
            400,
            {},
            {"code": "SOMETHING_NEW", "message": "<img src=x id=injected>"},
            "The trial service refused the request: <img src=x id=injected> (SOMETHING_NEW).",
        ),
        (
            200,
            {},
            "not json",
            "The trial service gave an answer this page does not understand; nothing was offered.",
        ),
        (
            200,
            {},
            {"offlineResponse": "x" * 70_000},
            "The trial service sent an answer far larger than any it should; it was not used.",
        ),
    ],
    ids=[
        "rate-limited",
        "daily-limit",
        "expired",
        "unknown-product",
        "storage",
        "bad-gateway",
        "unknown-code",
        "not-json",
        "huge",
    ],
)
def test_every_refusal_is_said_in_plain_words(
    page: Page,
    form: Callable[..., str],
    form_site: FormSite,
    trial_service: TrialService,
    console: Console,
    tmp_path: Path,
    status: int,
    headers: dict[str, str],
    body: object,
    says: str,
) -> None:
    """The service's answers as they may come (from it or from a proxy in front of it)."""
    url = f"{trial_service.url}{TRIAL_PATH}"
    cors = {"access-control-allow-origin": form_site.url, "access-control-expose-headers": "Retry-After"}
    text = body if isinstance(body, str) else json.dumps(body)
    page.route(
        url,
        lambda route: route.fulfill(
            status=status, headers={"content-type": "application/json", **cors, **headers}, body=text
        ),
    )
    page.goto(form())
    submit(page, "Trial App", Machine(tmp_path, "refused").trial_request(trial_service.product_id))
    expect(page.get_by_role("alert")).to_contain_text(says)
    expect(page.get_by_role("region", name=GRANTED)).to_be_hidden()
    assert page.locator("#injected").count() == 0  # text, never markup
    assert unexpected(console, f"status of {status}") == [], console.problems


def test_the_form_opened_from_disk_works_with_a_service_that_allows_null(
    page: Page, trial_service: TrialService, console: Console, tmp_path: Path
) -> None:
    index = copy_form(tmp_path / "unzipped-form", trial_service.config())
    machine = Machine(tmp_path, "from-disk")
    page.goto(index.as_uri())
    submit(page, "Trial App", machine.trial_request(trial_service.product_id))
    expect(page.get_by_role("heading", name=GRANTED)).to_be_visible()
    got = download(page)
    response = tmp_path / got.suggested_filename
    got.save_as(response)
    assert "activated: trial" in machine.activate(response, trial_service)
    assert console.problems == [], "\n".join(console.problems)


def test_keyboard_only_on_a_phone_screen(
    page: Page, form: Callable[..., str], trial_service: TrialService, console: Console, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 320, "height": 640})
    page.goto(form())
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # nothing to scroll sideways
    token = Machine(tmp_path, "keyboard").trial_request(trial_service.product_id).read_text()

    def focused() -> str:
        return str(page.evaluate("document.activeElement.id"))

    def focus_is_visible() -> None:
        style = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()"
        )
        assert style[0] != "none" and style[1] >= 2, (focused(), style)

    page.keyboard.press("Tab")
    assert focused() == "product"
    focus_is_visible()
    page.keyboard.press("ArrowDown")  # from "Choose one" to the first product
    assert page.get_by_label("Product to try").input_value() == trial_service.product_id
    page.keyboard.press("Tab")
    assert focused() == "request-file"
    focus_is_visible()
    page.keyboard.press("Tab")
    assert focused() == "request-text"
    focus_is_visible()
    page.keyboard.insert_text(token)
    page.keyboard.press("Tab")
    assert focused() == "submit"
    focus_is_visible()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=GRANTED)).to_be_focused()  # where a screen reader lands
    page.keyboard.press("Tab")
    assert focused() == "download"
    focus_is_visible()
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    assert DOWNLOAD_NAME.fullmatch(info.value.suggested_filename)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    # The status line is announced politely; problems are alerts.
    assert page.get_by_role("status").get_attribute("aria-live") == "polite"
    assert console.problems == [], "\n".join(console.problems)


def test_the_page_connects_only_to_the_configured_service(
    page: Page, form: Callable[..., str], form_site: FormSite, trial_service: TrialService, console: Console
) -> None:
    page.goto(form())
    csp = page.locator("meta[http-equiv='Content-Security-Policy']").first.get_attribute("content") or ""
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
    fetch = "url => fetch(url).then(() => 'fetched', () => 'refused')"
    jwks = f"{trial_service.url}/.well-known/jwks.json?product={trial_service.product_id}"
    assert page.evaluate(fetch, jwks) == "fetched"
    # The meta tag allows any port of localhost; the page narrowed that to the configured origin.
    elsewhere = form_site.url.replace("127.0.0.1", "localhost")
    assert page.evaluate(fetch, f"{elsewhere}/") == "refused"
    expect_violation(page, console, "connect-src")


def test_a_service_the_csp_does_not_allow_is_named(
    page: Page, form: Callable[..., str], trial_service: TrialService, console: Console, tmp_path: Path
) -> None:
    page.goto(form(apiBaseUrl="http://192.0.2.1:8000"))  # plain http to a non-local host
    submit(page, "Trial App", Machine(tmp_path, "csp").trial_request(trial_service.product_id))
    expect(page.get_by_role("alert")).to_contain_text(
        "This page may not connect to http://192.0.2.1:8000: its Content-Security-Policy does not allow it."
    )
    expect_violation(page, console, "connect-src")


def expect_violation(page: Page, console: Console, directive: str) -> None:
    for _ in range(20):  # reports arrive asynchronously
        if any(f"CSP violation: {directive}" in p for p in console.problems):
            return
        page.wait_for_timeout(100)
    raise AssertionError(console.messages)


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"products": []}, "products in config.js must list between 1 and 200 products."),
        ({"apiBaseUrl": "javascript:alert(1)"}, "apiBaseUrl in config.js must be an http(s) URL"),
        ({"products": [{"name": "X", "id": "bad id!"}]}, "product 1 in config.js needs an id"),
        ({"portalUrl": "javascript:alert(1)"}, "portalUrl in config.js must be an http(s) URL"),
        ({"portalUrl": "not a url"}, "portalUrl in config.js is not a URL."),
    ],
    ids=["no-products", "not-http", "bad-id", "portal-not-http", "portal-not-a-url"],
)
def test_a_page_that_is_not_set_up_says_so(
    page: Page, form: Callable[..., str], console: Console, config: dict[str, Any], says: str
) -> None:
    page.goto(form(**config))
    expect(page.get_by_role("alert")).to_contain_text(f"This page is not set up: {says}")
    expect(page.get_by_role("button", name="Get the trial response")).to_be_disabled()
    assert console.problems == [], "\n".join(console.problems)


# -- each label said once; times in the browser's zone; the portal's address ----------------------

# For every control of the form: what assistive technology says of it. Its fieldset's legend, its
# label, aria-label, placeholder, title, description, and a select's empty choice.
_SAID = """
form => Array.from(form.querySelectorAll("input, select, textarea")).map(control => {
  const text = el => (el ? el.textContent.replace(/\\s+/g, " ").trim() : "");
  const legend = control.closest("fieldset")?.querySelector("legend");
  const described = (control.getAttribute("aria-describedby") || "").split(/\\s+/)
    .map(id => text(document.getElementById(id)));
  const empty = control.tagName === "SELECT" ? Array.from(control.options).filter(o => !o.value) : [];
  return {
    id: control.id,
    said: [
      text(legend),
      ...Array.from(control.labels || [], text),
      control.getAttribute("aria-label") || "",
      control.getAttribute("placeholder") || "",
      control.getAttribute("title") || "",
      ...described,
      ...empty.map(text),
    ].filter(Boolean),
  };
})
"""


def test_each_control_is_named_once(
    page: Page, form: Callable[..., str], trial_service: TrialService, console: Console
) -> None:
    page.goto(form())
    controls = page.locator("#trial-form").evaluate(_SAID)
    assert {c["id"] for c in controls} == {"product", "request-file", "request-text"}
    for control in controls:
        said = [s.lower().rstrip(".") for s in control["said"]]
        assert said, control  # every control is named
        for i, one in enumerate(said):
            for other in said[i + 1 :]:
                assert one not in other and other not in one, (control["id"], control["said"])
    # What the accessibility tree holds: one group, each control by one name.
    expect(page.get_by_role("group")).to_have_count(1)
    expect(page.get_by_role("group", name="Trial request file")).to_be_visible()
    expect(page.get_by_role("combobox", name="Product to try", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Or paste its text", exact=True)).to_be_visible()
    expect(page.get_by_label("The file the app wrote", exact=True)).to_have_attribute("type", "file")
    assert console.problems == [], "\n".join(console.problems)


def test_times_are_shown_in_the_browsers_zone_with_its_names(
    browser: Browser, form: Callable[..., str], trial_service: TrialService, tmp_path: Path
) -> None:
    console = Console()
    context = browser.new_context(accept_downloads=True, timezone_id="Asia/Tokyo", locale="en-US")
    context.add_init_script(CSP_REPORTER)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", console.on_console)
    page.on("pageerror", lambda exc: console.problems.append(f"page error: {exc}"))
    try:
        request = Machine(tmp_path, "tokyo").trial_request(trial_service.product_id)
        page.goto(form())
        submit(page, "Trial App", request)
        result = page.get_by_role("region", name=GRANTED)
        expect(result).to_be_visible()
        ends_at = result.locator("#result-ends")
        ends = int(
            datetime.strptime(ends_at.get_attribute("datetime") or "", "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=UTC)
            .timestamp()
        )
        in_tokyo = datetime.fromtimestamp(ends, ZoneInfo("Asia/Tokyo"))
        for shown in (ends_at.inner_text(), result.locator("#result-apply").inner_text()):
            # The zone's short name and its IANA name; not the raw UTC of the datetime attribute.
            assert shown.endswith("GMT+9 (Asia/Tokyo)"), shown
            assert "Z" not in shown and "UTC" not in shown, shown
        date = f"{in_tokyo.strftime('%B')} {in_tokyo.day}, {in_tokyo.year}"
        assert date in ends_at.inner_text() and in_tokyo.strftime("%A") in ends_at.inner_text()
        expect(result.locator("#result-note")).to_contain_text("GMT+9 (Asia/Tokyo)")
        assert console.problems == [], "\n".join(console.problems)
    finally:
        context.close()


@pytest.mark.parametrize("portal", ["https://portal.example.com/activate?account=acme", None])
def test_the_customer_portal_is_a_link_when_its_address_is_configured(
    page: Page,
    form: Callable[..., str],
    trial_service: TrialService,
    console: Console,
    tmp_path: Path,
    api_calls: list[str],
    portal: str | None,
) -> None:
    page.goto(form(portalUrl=portal) if portal else form())
    page.get_by_label("Product to try").select_option(label="Trial App")
    page.get_by_label("The file the app wrote").set_input_files(_activation_request(tmp_path, trial_service))
    page.get_by_role("button", name="Get the trial response").click()
    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "This is an activation request (it is for a license key), not a trial request. Activate it on"
        " the customer portal, or make a trial request in the app."
    )
    link = alert.get_by_role("link", name="customer portal")
    if portal:
        expect(link).to_have_attribute("href", portal)
        expect(link).to_have_attribute("rel", "noreferrer")
        # Reachable by keyboard, next after the form's button, and its focus shows.
        page.get_by_role("button", name="Get the trial response").focus()
        page.keyboard.press("Tab")
        expect(link).to_be_focused()
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    else:
        expect(link).to_have_count(0)
    assert api_calls == []  # refused before anything was sent
    assert console.problems == [], "\n".join(console.problems)
