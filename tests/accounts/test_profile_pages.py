"""Profile, sessions, personal access tokens and set-password links, in process, for every role:
a person changes only themselves, the password guards the email and the password, a new password
and a revoke end sessions at once, tokens are shown once, and no secret reaches a log."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from offline_service.accounts import membership, profile
from offline_service.accounts.models import User
from offline_service.accounts.scope import Scope
from offline_service.web.auth import SESSION_COOKIE
from tests.factories import NOW
from tests.web.pages import (
    PEOPLE,
    client,
    csrf_of,
    has_inline_script,
    log_in,
    people_state,
    post,
    refused,
    text,
    user,
)
from tests.web.site import EMAILS, PASSWORD, VISIBLE, Site, activation_request, error

NEW_PASSWORD = "a brand new passphrase 7"
PAGES = ("/profile", "/profile/security")


def _posts(site: Site, role: str) -> list[tuple[str, dict[str, str]]]:
    """Every profile form, filled in so that it would succeed for ``role``."""
    return [
        ("/profile/name", {"first_name": "Pat", "last_name": "Doe"}),
        ("/profile/email", {"email": f"new-{role}@acme.example", "password": PASSWORD}),
        (
            "/profile/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        ),
        ("/profile/preferences", {"time_zone": "Europe/Paris", "notify_new_activation": "1"}),
        ("/profile/tokens", {"name": "script", "days": "30"}),
    ]


def test_anonymous_visitors_are_sent_to_log_in_and_change_nothing(site: Site) -> None:
    browser = client(site)
    before = people_state(site)
    for path in PAGES:
        assert browser.get(path).headers["location"] == f"/login?next=%2F{path[1:].replace('/', '%2F')}"
    for path, form in [
        *_posts(site, "user1"),
        ("/profile/sessions/crd_000000000000000000000000/revoke", {}),
        ("/profile/tokens/crd_000000000000000000000000/revoke", {}),
    ]:
        response = post(browser, path, form)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
    assert people_state(site) == before


@pytest.mark.parametrize("role", PEOPLE)
def test_every_person_changes_their_own_profile_and_it_is_audited(site: Site, role: str) -> None:
    browser = log_in(site, role)
    me = user(site, role)
    account = site.other if role == "other" else site.acme
    for path in PAGES:
        page = browser.get(path)
        assert page.status_code == 200 and 'href="/profile" aria-current="page"' in page.text, path
    assert me.email in browser.get("/profile").text
    for path, form in _posts(site, role):
        response = post(browser, path, form)
        assert response.status_code in (303, 201), (path, response.text)
    changed = _fresh(site, account.id, me.id)
    assert (changed.first_name, changed.last_name, changed.email) == (
        "Pat",
        "Doe",
        f"new-{role}@acme.example",
    )
    assert (changed.time_zone, changed.notify_new_activation, changed.notify_license_expiry) == (
        "Europe/Paris",
        True,
        False,
    )
    with site.svc.store.read() as tx:
        actions = [e.action for e in tx.audit_entries(account.id, limit=50) if e.actor == f"user:{me.id}"]
    assert {
        "profile.name",
        "profile.email",
        "profile.password",
        "profile.preferences",
        "token.create",
    } <= set(actions)
    # Still logged in after all that (the password change keeps this session).
    assert browser.get("/profile").status_code == 200


def _fresh(site: Site, account_id: str, user_id: str) -> User:
    with site.svc.store.read() as tx:
        found = tx.user(account_id, user_id)
    assert found is not None
    return found


def _session_ids(html: str, needle: str = "") -> list[str]:
    """The ids of the revoke buttons of the session rows that contain ``needle``."""
    rows = re.findall(r"<tr>.*?</tr>", html, re.DOTALL)
    return [
        i
        for row in rows
        if needle in row
        for i in re.findall(r"/profile/sessions/(crd_[0-9a-f]+)/revoke", row)
    ]


def test_the_email_needs_the_current_password_and_a_free_address(site: Site) -> None:
    browser = log_in(site, "user1")
    before = people_state(site)
    answer = post(browser, "/profile/email", {"email": "x@acme.example", "password": "not my password"})
    assert "not%20my%20password" not in answer.headers["set-cookie"]  # never carried to the page
    wrong = refused(browser, answer, "WRONG_PASSWORD")
    assert "Your current password is not right" in wrong.text and 'value="x@acme.example"' in wrong.text
    assert "not my password" not in wrong.text
    after = people_state(site)
    # Only the failed check was recorded: back-off counter and audit entry, nothing else.
    assert {k: v for k, v in after.items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }
    assert site.audit()[0].code == "WRONG_PASSWORD"
    refused(
        browser,
        post(browser, "/profile/email", {"email": EMAILS["admin_b"], "password": PASSWORD}),
        "CONFLICT",
    )
    # An address of the other account is free here.
    assert (
        post(browser, "/profile/email", {"email": "user1+x@example.com", "password": PASSWORD}).status_code
        == 303
    )


def test_guessing_the_password_through_the_profile_is_throttled_like_a_login(site: Site) -> None:
    browser = log_in(site, "user2")
    for _ in range(5 + 1):
        guess = post(browser, "/profile/email", {"email": "x@acme.example", "password": "guess guess"})
        refused(browser, guess, "WRONG_PASSWORD")
    throttled = post(browser, "/profile/email", {"email": "x@acme.example", "password": PASSWORD})
    page = text(refused(browser, throttled, "RATE_LIMITED").text)
    assert re.search(r"Too many failed attempts\. Wait \d+ seconds, then try again\.", page), page


def test_a_new_password_ends_every_other_session_and_token(site: Site) -> None:
    here, elsewhere = log_in(site, "user1"), log_in(site, "user1")
    api = site.auth("user1")
    _, personal = profile.create_personal_token(
        site.svc.store, user(site, "user1"), name="t", days=7, now=NOW
    )
    others = log_in(site, "user2")
    changed = post(
        here,
        "/profile/password",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/profile?done=password"
    assert "Your other sessions and tokens have ended." in here.get(changed.headers["location"]).text
    assert elsewhere.get("/").status_code == 303
    assert error(site.client.get("/v1/me", headers=api)) == (401, "UNAUTHENTICATED")
    assert site.client.get("/v1/me", headers={"authorization": f"Bearer {personal}"}).status_code == 401
    assert others.get("/").status_code == 200  # someone else's session is untouched
    log_in(site, "user1", NEW_PASSWORD)


@pytest.mark.parametrize(
    ("form", "code"),
    [
        (
            {"current_password": "wrong one here", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
            "WRONG_PASSWORD",
        ),
        ({"current_password": PASSWORD, "new_password": "short", "confirm": "short"}, "INVALID_ARGUMENT"),
        (
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": "other passphrase 99"},
            "INVALID_ARGUMENT",
        ),
        ({"current_password": PASSWORD, "new_password": PASSWORD, "confirm": PASSWORD}, "INVALID_ARGUMENT"),
    ],
)
def test_bad_password_changes_are_explained_and_change_nothing(
    site: Site, form: dict[str, str], code: str
) -> None:
    browser, elsewhere = log_in(site, "admin_a"), log_in(site, "admin_a")
    before = people_state(site)
    answer = post(browser, "/profile/password", form)
    response = refused(browser, answer, code)
    assert 'aria-describedby="new-password-hint messages"' in response.text  # the form it was
    for value in (v for v in form.values() if len(v) > 8):  # no password is echoed or carried
        assert value not in response.text and value.replace(" ", "%20") not in answer.headers["set-cookie"]
    after = people_state(site)
    assert after["users"] == before["users"] and after["credentials"] == before["credentials"]
    assert elsewhere.get("/").status_code == 200


def test_the_time_zone_is_used_for_times_on_the_pages(site: Site) -> None:
    browser = log_in(site, "user1")
    assert "2027-01-15 08:00 UTC" in text(browser.get("/profile/security").text)
    assert post(browser, "/profile/preferences", {"time_zone": "Asia/Tokyo"}).status_code == 303
    page = text(browser.get("/profile/security").text)
    assert "2027-01-15 17:00 JST" in page and "08:00 UTC" not in page
    assert (
        'datetime="2027-01-15T08:00:00+00:00"' in browser.get("/profile/security").text
    )  # machine-readable: UTC
    for zone in ("Mars/Olympus", "", "asia/tokyo"):
        refused(browser, post(browser, "/profile/preferences", {"time_zone": zone}), "INVALID_ARGUMENT")
    assert _fresh(site, site.acme.id, user(site, "user1").id).time_zone == "Asia/Tokyo"


def test_the_time_zone_is_typed_with_suggestions_of_canonical_zones_and_their_offsets(site: Site) -> None:
    browser = log_in(site, "user1")
    html = browser.get("/profile").text
    # A text field tied to a list of suggestions (searchable by typing; without the list it still
    # takes a typed name), showing the person's zone with its offset.
    field = re.search(r"<input [^>]*id=\"time_zone\"[^>]*>", html)
    assert field and 'list="time-zones"' in field.group(0) and 'value="UTC (UTC+00:00)"' in field.group(0)
    assert "<select" not in html.split('id="preferences-heading"', 1)[1]
    datalist = re.search(r'<datalist id="time-zones">(.*?)</datalist>', html, re.S)
    assert datalist
    options = re.findall(r'<option value="([^"]*)"></option>', datalist.group(1))
    assert "Europe/Paris (UTC+01:00)" in options and "UTC (UTC+00:00)" in options
    assert not [o for o in options if o.startswith(("Factory", "Etc/", "GMT", "US/", "posixrules"))]
    assert options.index("America/New_York (UTC-05:00)") < options.index("UTC (UTC+00:00)")
    assert options.index("UTC (UTC+00:00)") < options.index("Europe/Paris (UTC+01:00)")

    # The label is read back as the zone's name.
    assert post(browser, "/profile/preferences", {"time_zone": "Europe/Paris (UTC+01:00)"}).status_code == 303
    assert _fresh(site, site.acme.id, user(site, "user1").id).time_zone == "Europe/Paris"
    assert 'value="Europe/Paris (UTC+01:00)"' in browser.get("/profile").text

    # Anything not in the list is refused in words, the typed value shown again, nothing changed.
    before = people_state(site)
    for zone in ("Factory", "Etc/GMT+3", "Europe/Paris (UTC+09:00)", "<b>Paris</b>"):
        posted = post(browser, "/profile/preferences", {"time_zone": zone, "notify_new_activation": "1"})
        page = refused(browser, posted, "INVALID_ARGUMENT")
        assert "choose a time zone from the list" in page.text, zone
        assert "<b>Paris" not in page.text
    typed = refused(browser, post(browser, "/profile/preferences", {"time_zone": "Factory"}))
    assert 'value="Factory"' in typed.text  # the typed value shown again
    assert people_state(site) == before


def test_a_zone_chosen_before_the_list_was_narrowed_can_be_kept(site: Site) -> None:
    browser = log_in(site, "user1")
    me = user(site, "user1")
    with site.svc.store.write() as tx:  # what the old list let a person choose
        tx.update_user(replace(me, time_zone="US/Eastern"))
    assert 'value="US/Eastern"' in browser.get("/profile").text  # by its name: the list has no label
    saved = post(browser, "/profile/preferences", {"time_zone": "US/Eastern", "notify_license_expiry": "1"})
    assert saved.status_code == 303
    kept = _fresh(site, site.acme.id, me.id)
    assert (kept.time_zone, kept.notify_license_expiry) == ("US/Eastern", True)
    # Another zone the list no longer offers is refused; the kept one stays.
    refused(browser, post(browser, "/profile/preferences", {"time_zone": "US/Pacific"}), "INVALID_ARGUMENT")
    assert _fresh(site, site.acme.id, me.id).time_zone == "US/Eastern"


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4.1 Mobile/15E148 Safari/604.1"
)


def test_sessions_are_listed_and_each_can_be_ended(site: Site) -> None:
    phone = client(site)
    phone.post(
        "/login",
        data={
            "csrf": csrf_of(phone.get("/login").text),
            "account": "acme",
            "email": EMAILS["user2"],
            "password": PASSWORD,
        },
        headers={"user-agent": IPHONE},
    )
    desk = log_in(site, "user2")
    site.auth("user2")
    page = desk.get("/profile/security").text
    shown = text(page)
    assert "API login" in shown and shown.count("(this session)") == 1
    # The browser in words, the raw string only in the title; the test client names no browser.
    assert "Safari on iPhone" in shown and IPHONE not in shown and f'title="{IPHONE}"' in page
    assert "Unknown browser" in shown and 'title="testclient"' in page
    assert len(_session_ids(page)) == 3
    [phone_id] = _session_ids(page, "Safari on iPhone")
    [this_id] = _session_ids(page, "(this session)")
    assert phone_id != this_id
    ended = post(desk, f"/profile/sessions/{phone_id}/revoke")
    assert ended.status_code == 303 and ended.headers["location"] == "/profile/security?done=session-revoked"
    assert phone.get("/").status_code == 303
    assert desk.get("/").status_code == 200
    assert len(_session_ids(desk.get("/profile/security").text)) == 2
    # Another person's session id is not found, and is left alone.
    intruder = log_in(site, "admin_a")
    response = refused(intruder, post(intruder, f"/profile/sessions/{this_id}/revoke"), "NOT_FOUND")
    assert "This session or token has already ended, or it is not yours." in response.text
    assert desk.get("/").status_code == 200
    # Ending this very session is logging out.
    out = post(desk, f"/profile/sessions/{this_id}/revoke")
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert SESSION_COOKIE not in desk.cookies and desk.get("/").status_code == 303


def test_a_personal_access_token_is_shown_once_and_works_like_an_access_token(site: Site) -> None:
    browser = log_in(site, "user2")
    made = post(browser, "/profile/tokens", {"name": "inventory <script>", "days": "7"})
    # Post/redirect/get: the secret is in neither the redirect nor its URL.
    assert made.status_code == 303 and made.headers["location"] == "/profile/security?done=token-created"
    assert "ofs_pat_" not in made.text and "ofs_pat_" not in made.headers["location"]
    shown = browser.get(made.headers["location"])
    secret = re.search(r'id="new-token" type="text" readonly value="(ofs_pat_[A-Za-z0-9_-]+)"', shown.text)
    assert secret, shown.text
    token = secret.group(1)
    assert "inventory &lt;script&gt;" in shown.text and not has_inline_script(shown.text)
    # A reload shows it no more, and makes no second token.
    again = browser.get(made.headers["location"]).text
    assert token not in again and "shown only once" in again
    listing = browser.get("/profile/security").text
    assert "inventory &lt;script&gt;" in listing and token not in listing
    assert len(re.findall(r'action="/profile/tokens/crd_[0-9a-f]+/revoke"', listing)) == 1
    bearer = {"authorization": f"Bearer {token}"}
    me = site.client.get("/v1/me", headers=bearer)
    assert me.status_code == 200 and me.json()["email"] == EMAILS["user2"]
    ids = {x["id"] for x in site.client.get("/v1/licenses", headers=bearer).json()}
    assert ids == {site.licenses[name].id for name in VISIBLE["user2"]}
    # It is not a browser session.
    cookie_only = client(site)
    cookie_only.cookies.set(SESSION_COOKIE, token)
    assert cookie_only.get("/").status_code == 303
    cred = re.search(r'action="/profile/tokens/(crd_[0-9a-f]+)/revoke"', listing)
    assert cred
    # Nobody else can revoke it; its owner can.
    intruder = log_in(site, "admin_a")
    refused(intruder, post(intruder, f"/profile/tokens/{cred.group(1)}/revoke"), "NOT_FOUND")
    assert site.client.get("/v1/me", headers=bearer).status_code == 200
    revoked = post(browser, f"/profile/tokens/{cred.group(1)}/revoke")
    assert (
        revoked.status_code == 303
        and "The token is revoked." in browser.get(revoked.headers["location"]).text
    )
    assert error(site.client.get("/v1/me", headers=bearer)) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "form",
    [{"name": "", "days": "30"}, {"name": "x", "days": "31"}, {"name": "x", "days": "-1"}, {"name": "x"}],
)
def test_bad_tokens_are_explained_and_nothing_is_made(site: Site, form: dict[str, str]) -> None:
    browser = log_in(site, "user1")
    before = people_state(site)
    response = refused(browser, post(browser, "/profile/tokens", form), "INVALID_ARGUMENT")
    assert "ofs_pat_" not in response.text
    assert f'value="{form["name"]}"' in response.text  # the name typed, kept
    assert people_state(site) == before


@pytest.mark.parametrize("token", [None, "", "x" * 43])
def test_every_profile_post_needs_the_csrf_token(site: Site, token: str | None) -> None:
    browser = log_in(site, "admin_b")
    before = people_state(site)
    session = _session_ids(browser.get("/profile/security").text)[0]
    for path, form in [*_posts(site, "admin_b"), (f"/profile/sessions/{session}/revoke", {})]:
        data = form if token is None else {**form, "csrf": token}
        response = browser.post(path, data=data)
        assert response.status_code == 403 and "CSRF_FAILED" in response.text, path
    assert people_state(site) == before


# -- the JSON API ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", PEOPLE)
def test_api_personal_tokens_for_every_role(site: Site, role: str) -> None:
    headers = site.auth(role)
    assert site.client.get("/v1/me/tokens", headers=headers).json() == []
    made = site.client.post("/v1/me/tokens", json={"name": "ci", "expiresInDays": 90}, headers=headers)
    assert made.status_code == 201
    body = made.json()
    assert set(body) == {"id", "name", "createdAt", "expiresAt", "lastUsedAt", "token"}
    assert (body["name"], body["expiresAt"] - body["createdAt"], body["lastUsedAt"]) == (
        "ci",
        90 * 86400,
        None,
    )
    pat = {"authorization": f"Bearer {body['token']}"}
    assert site.client.get("/v1/me", headers=pat).json()["email"] == EMAILS[role]
    listed = site.client.get("/v1/me/tokens", headers=pat).json()
    assert [(t["id"], t["lastUsedAt"]) for t in listed] == [(body["id"], NOW)]
    assert "token" not in listed[0]
    # A personal token cannot make another one (it could never have to expire).
    assert error(site.client.post("/v1/me/tokens", json={"name": "x", "expiresInDays": 7}, headers=pat)) == (
        403,
        "FORBIDDEN",
    )
    # Another person cannot delete it.
    stranger = "admin_a" if role != "admin_a" else "user1"
    assert error(site.client.delete(f"/v1/me/tokens/{body['id']}", headers=site.auth(stranger))) == (
        404,
        "NOT_FOUND",
    )
    assert site.client.delete(f"/v1/me/tokens/{body['id']}", headers=pat).status_code == 204
    assert error(site.client.get("/v1/me", headers=pat)) == (401, "UNAUTHENTICATED")
    assert error(site.client.delete(f"/v1/me/tokens/{body['id']}", headers=headers)) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "x"},
        {"name": "x", "expiresInDays": "30"},
        {"name": "x", "expiresInDays": 31},
        {"name": "", "expiresInDays": 30},
        {"name": 5, "expiresInDays": 30},
        [],
    ],
)
def test_api_bad_token_requests_make_nothing(site: Site, body: object) -> None:
    headers = site.auth("user1")
    before = people_state(site)
    assert error(site.client.post("/v1/me/tokens", json=body, headers=headers)) == (400, "INVALID_ARGUMENT")
    assert people_state(site) == before


def test_a_personal_token_works_on_the_offline_routes(site: Site) -> None:
    headers = site.auth("user1")
    token = site.client.post(
        "/v1/me/tokens", json={"name": "ci", "expiresInDays": 7}, headers=headers
    ).json()["token"]
    granted = site.client.post(
        "/v1/activations/offline-activate",
        json={"offlineRequest": activation_request(site, "user1", "user1").decode()},
        headers={"authorization": f"Bearer {token}"},
    )
    assert granted.status_code == 200, granted.text
    refused = site.client.post(
        "/v1/activations/offline-activate",
        json={"offlineRequest": activation_request(site, "user1", "org_b").decode()},
        headers={"authorization": f"Bearer {token}"},
    )
    assert error(refused) == (404, "LICENSE_NOT_FOUND")


# -- set-password links ------------------------------------------------------------------------


def test_an_expired_or_unknown_link_says_so_without_a_form(site: Site) -> None:
    _, token = membership.create_user(
        site.svc.store,
        Scope.of_admin(user(site, "admin_a")),
        email="late@acme.example",
        role="user",
        now=NOW,
        link_lifetime=3600,
    )
    browser = client(site)
    assert browser.get(f"/set-password?token={token}").status_code == 200
    site.clock.now = NOW + 3600
    for url in (f"/set-password?token={token}", "/set-password?token=nope", "/set-password"):
        page = browser.get(url)
        assert page.status_code == 400 and "INVALID_PASSWORD_LINK" in page.text, url
        assert 'name="password"' not in page.text and "This link no longer works" in page.text
        # Where a new link comes from: the Forgot password page, linked from the message.
        assert 'To get a new one, use <a href="/forgot-password">Forgot password?</a>' in page.text
    before = people_state(site)
    posted = post(
        browser, "/set-password", {"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    refused(browser, posted, "INVALID_PASSWORD_LINK", status=400)
    assert people_state(site) == before


def test_the_set_password_form_needs_its_csrf_token(site: Site) -> None:
    _, token = membership.create_user(
        site.svc.store,
        Scope.of_admin(user(site, "admin_a")),
        email="csrf@acme.example",
        role="user",
        now=NOW,
        link_lifetime=3600,
    )
    browser = client(site)
    browser.get(f"/set-password?token={token}")
    before = people_state(site)
    response = browser.post(
        "/set-password", data={"token": token, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 403 and "CSRF_FAILED" in response.text
    assert people_state(site) == before


@pytest.mark.parametrize("name", [" ci", "ci ", "\u00a0ci", "ci\u3000"])
def test_api_token_names_are_taken_as_sent_without_spaces_around(site: Site, name: str) -> None:
    # The portal trims what a person typed; the API says what it refuses (its OpenAPI pattern).
    headers = site.auth("user1")
    before = people_state(site)
    response = site.client.post("/v1/me/tokens", json={"name": name, "expiresInDays": 30}, headers=headers)
    assert error(response) == (400, "INVALID_ARGUMENT")
    assert people_state(site) == before


def test_api_token_lifetime_may_be_any_json_integer_form(site: Site) -> None:
    # JSON Schema counts 30.0 as the integer 30 (its OpenAPI type): the service does too.
    response = site.client.post(
        "/v1/me/tokens", json={"name": "ci", "expiresInDays": 30.0}, headers=site.auth("user1")
    )
    assert response.status_code == 201
    assert response.json()["expiresAt"] - response.json()["createdAt"] == 30 * 86400


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/profile/email", {"email": "x@acme.example", "password": "not my password"}),
        (
            "/profile/password",
            {"current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": "other 1"},
        ),
    ],
)
def test_a_refused_change_keeps_the_stored_name_in_the_name_form(
    site: Site, path: str, form: dict[str, str]
) -> None:
    """A refused email or password change showed the name fields empty; saving them next erased
    the name."""
    browser = log_in(site, "user1")
    saved = post(browser, "/profile/name", {"first_name": "Ada", "last_name": "Lovelace"})
    assert saved.status_code == 303
    page = refused(browser, post(browser, path, form))
    assert 'role="alert"' in page.text
    assert 'value="Ada"' in page.text and 'value="Lovelace"' in page.text
    assert form.get("password", "no password sent") not in page.text


def test_the_new_release_preference_is_offered_and_saved(site: Site) -> None:
    browser = log_in(site, "user1")
    me = user(site, "user1")
    page = browser.get("/profile").text
    assert 'name="notify_new_release"' in page and "does not send" not in page
    saved = post(browser, "/profile/preferences", {"time_zone": "UTC", "notify_new_release": "1"})
    assert saved.status_code == 303
    kept = _fresh(site, site.acme.id, me.id)
    assert (kept.notify_new_release, kept.notify_new_activation, kept.notify_license_expiry) == (
        True,
        False,
        False,
    )
    assert 'name="notify_new_release" type="checkbox" value="1" checked' in browser.get("/profile").text
