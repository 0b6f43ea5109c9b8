"""axe-core's checks on every portal page and on the trial form, in Debian's Chromium: no violation
of impact "serious" or "critical", at 390 px and at 1440 px, as an organization admin, as a plain
user and logged out, and on the trial form empty, with a granted trial and with a refusal. The
pages hold real records: a license of the demo organization with active and deactivated machines,
suspended, revoked and expired licenses, a group with a member and those licenses, a disabled user,
a published release, a token and a second session; the result pages are reached by uploading real
request files through the forms, the error states by sending the forms what they refuse.
Each page is reached once, then checked at 390 px and again at 1440 px.

Every GET route of the app is either visited here (VISITS) or listed in EXCLUDED with the reason,
so a new page cannot be forgotten. axe-core comes with the ``axe-playwright-python`` package (its
axe.min.js is put into the page through the DevTools protocol, so the portal's CSP does not block
it, and it loads nothing from anywhere: every request the pages make is checked to stay on
127.0.0.1)."""

from __future__ import annotations

import io
import secrets
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, Page, expect
from starlette.routing import Route

from offline_service.accounts import membership, password_links
from offline_service.accounts.models import Role, User
from offline_service.accounts.passwords import Cost
from offline_service.accounts.scope import Scope
from offline_service.client import Client
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import services as licensing
from offline_service.licensing.engine import Engine
from offline_service.licensing.models import License, LicenseStatus
from offline_service.licensing.pages import RESULT_COOKIE
from offline_service.releases import services as releases
from offline_service.settings import Settings
from offline_service.store import SQLiteStore
from offline_service.web.app import create_app
from tests.browser.harness import CSP_REPORTER, FormSite, Portal, TrialService

pytestmark = pytest.mark.slow

ORGANIZATION = "Demo Organization"
USER_PASSWORD = "accessibility test passphrase 42"
WIDTHS = {390: 844, 1440: 900}  # width: height
FAILING = ("serious", "critical")
# axe-core as the package ships it (axe.min.js inside the wheel): put into each page once, through
# the DevTools protocol, and run there at each width.
AXE_SCRIPT = Axe().axe_script
# Every rule axe-core runs by default (WCAG 2.0-2.2 A and AA, and its best practices); only the
# impact decides what fails. No rule is turned off.
AXE_OPTIONS: dict[str, Any] = {"resultTypes": ["violations"]}

# Every GET route of the app that is not a page to check, with the reason. The JSON API (/v1/) is
# left out as a whole: it has no page.
API_PREFIX = "/v1/"
EXCLUDED = {
    "/healthz": "JSON health check, no page",
    "/readyz": "JSON readiness check, no page",
    "/.well-known/jwks.json": "JSON key set, no page",
    "/openapi.json": "JSON API description, no page",
    "/metrics": "Prometheus metrics, plain text, no page",
    "/activations.csv": "a CSV download",
    "/activate/result/download": "the response file's download",
    "/deactivate/result/download": "the receipt's download",
    "/batch/result/{id}/download": "the zip's download",
    "/branding/{account}/theme.css": "a stylesheet",
    "/branding/{account}/logo": "an image",
}

ADMIN, USER, PUBLIC = "organization admin", "plain user", "logged out"


@dataclass(frozen=True)
class Records:
    """What the pages show, made with the vendor's commands before any page is opened."""

    license_id: str
    license_key: str
    activation_id: str  # a live machine of that license, whose seat its organization admin may release
    user_email: str
    user_id: str
    group_id: str
    set_password_link: str  # an unused link of a user who has no password yet

    def fill(self, template: str) -> str:
        return template.format(
            license_id=self.license_id,
            activation_id=self.activation_id,
            user_id=self.user_id,
            group_id=self.group_id,
        )


def _request(root: Path, name: str, portal: Portal, license_key: str, hostname: str) -> tuple[Client, str]:
    """A machine of its own and its activation request for ``license_key``."""
    app = Client(root / name, machine_id=lambda: f"a11y-{name}", witness_dir=root / f"{name}-witness")
    text = app.activation_request(
        product_id=portal.product_id,
        license_key=license_key,
        hostname=hostname,
        os_name="Windows 11 Pro 23H2",
        app_version="12.4.1",
    )
    return app, text


@pytest.fixture(scope="module")
def records(portal: Portal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Records]:
    """Made with the vendor's operations on the running server's data: a license of the demo
    organization with four machines (one deactivated) and licenses in every other state, in a group
    with a plain user who has a password; a disabled user; a user with only a set-password link; a
    release of the demo product; organization admins allowed to release seats of the demo product
    (until the module ends: the other browser tests share this server)."""
    root = tmp_path_factory.mktemp("a11y")
    store, keyring, now = SQLiteStore(portal.data), Keyring(portal.keys), int(time.time())
    try:
        account = licensing.account(store, portal.account)
        vendor = Scope.vendor(account)
        org = membership.organization_named(store, vendor, ORGANIZATION)

        def new_license(**more: Any) -> License:
            return licensing.create_license(
                store,
                account,
                product_id=portal.product_id,
                allowed_activations=50,
                allowed_deactivations=50,
                now=more.pop("now", now),
                owner_organization=ORGANIZATION,
                **more,
            )

        lic = new_license()
        licensing.set_customer_release(store, account, portal.product_id, True, now=now)
        machines = [
            _request(root, f"pc-{i}", portal, lic.key, hostname)
            for i, hostname in enumerate(
                ["design-ws-01", "design-ws-02", "build-agent-07.lab.example.com", ""]
            )
        ]
        engine = Engine(store=store, keyring=keyring)
        outcomes = engine.process_many([t.encode() for _, t in machines], account_id=account.id, now=now)
        assert all(o.ok for o in outcomes), outcomes
        live = outcomes[0].activation_id
        assert live is not None
        app = machines[1][0]
        response = outcomes[1].response
        assert response is not None
        app.activate(response.encode(), jwks=keyring.jwks(portal.product_id))
        gone = engine.process(
            app.deactivate(root / "deactivation.req").encode(), account_id=account.id, now=now
        )
        assert gone.ok, gone

        group = membership.create_group(
            store, vendor, name=f"Design {secrets.token_hex(3)}", now=now, organization_id=org.id
        )
        suspended, revoked = new_license(), new_license()
        licensing.set_license_status(store, account, suspended.key, LicenseStatus.SUSPENDED, now=now)
        licensing.set_license_status(store, account, revoked.key, LicenseStatus.REVOKED, now=now)
        expired = new_license(expires_at=now - 86_400, now=now - 2 * 86_400)
        for linked in (lic, suspended, revoked, expired):
            membership.link_license(store, vendor, group.id, linked.id, now=now)

        def new_user(label: str, **more: Any) -> User:
            return membership.create_user(
                store,
                vendor,
                email=f"a11y-{label}-{secrets.token_hex(3)}@example.com",
                role=Role.USER,
                now=now,
                organization_id=org.id,
                cost=Cost.MINIMUM,
                **more,
            ).user

        user = new_user("user", first_name="Ada", last_name="Lovelace", password=USER_PASSWORD)
        membership.add_member(store, vendor, group.id, user.id, now=now)
        former = new_user("former", first_name="Former", last_name="Colleague")
        membership.set_disabled(store, vendor, former.id, True, now=now)
        token = membership.create_user(
            store,
            vendor,
            email=f"a11y-invitee-{secrets.token_hex(3)}@example.com",
            role=Role.USER,
            now=now,
            organization_id=org.id,
            link_lifetime=3600,
        ).link
        assert token is not None

        installer = root / "design-suite-setup.exe"
        installer.write_bytes(secrets.token_bytes(4096))
        releases.publish(
            store,
            account,
            root=Settings(data_dir=portal.data, keys_dir=portal.keys).release_root,
            product_id=portal.product_id,
            version=f"7.{secrets.randbelow(10**6)}.0",
            files=[installer],
            now=now,
        )
    finally:
        store.close()
    yield Records(
        license_id=lic.id,
        license_key=lic.key,
        activation_id=live,
        user_email=user.email,
        user_id=user.id,
        group_id=group.id,
        set_password_link=password_links.link(portal.url, token),
    )
    store = SQLiteStore(portal.data)
    try:
        licensing.set_customer_release(store, account, portal.product_id, False, now=int(time.time()))
    finally:
        store.close()


# -- one person's browser, and what it saw ----------------------------------------------------


@dataclass
class Tour:
    """One logged-in (or logged-out) browser profile, reused across pages and widths."""

    role: str
    context: BrowserContext
    page: Page
    portal: Portal
    records: Records
    scratch: Path
    csp: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # requests to anything but 127.0.0.1

    def go(self, path: str, *, settle: bool = True) -> int:
        """Open ``path``; with ``settle``, wait until the favicon and script have loaded too (a
        page left earlier aborts them). Without it, the caller waits before leaving the page."""
        response = self.page.goto(f"{self.portal.url}{path}")
        if settle:
            self.page.wait_for_load_state("networkidle")
        assert response is not None
        return response.status

    def submit(self) -> None:
        """Press the submit button of the last form in main (the page's own form; the portal's
        frame has only the logout form, outside main)."""
        self.page.locator("main form").last.locator("button[type=submit]").last.click()
        self.page.wait_for_load_state("networkidle")


def _open(browser: Browser, role: str, portal: Portal, records: Records, scratch: Path) -> Tour:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(CSP_REPORTER)
    context.set_default_timeout(15_000)
    page = context.new_page()
    tour = Tour(role, context, page, portal, records, scratch)
    page.on("console", lambda m: tour.csp.append(m.text) if "CSP violation" in m.text else None)
    page.on("pageerror", lambda exc: tour.csp.append(f"page error: {exc}"))
    page.on(
        "request",
        lambda r: None if urlsplit(r.url).hostname == "127.0.0.1" else tour.foreign.append(r.url),
    )
    if role != PUBLIC:
        email, password = (
            (portal.email, portal.password) if role == ADMIN else (records.user_email, USER_PASSWORD)
        )
        tour.go("/login")
        page.get_by_label("Account").fill(portal.account)
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        expect(page).to_have_url(f"{portal.url}/")
        # A second session, from another browser, so the security page lists more than one.
        other = browser.new_context(user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0")
        try:
            second = other.new_page()
            second.goto(f"{portal.url}/login")
            second.get_by_label("Account").fill(portal.account)
            second.get_by_label("Email").fill(email)
            second.get_by_label("Password").fill(password)
            second.get_by_role("button", name="Log in").click()
            expect(second).to_have_url(f"{portal.url}/")
        finally:
            other.close()
    return tour


@pytest.fixture(scope="module")
def tours(
    browser: Browser, portal: Portal, records: Records, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Tour]]:
    scratch = tmp_path_factory.mktemp("a11y-machines")
    opened = {role: _open(browser, role, portal, records, scratch) for role in (ADMIN, USER, PUBLIC)}
    try:
        yield opened
    finally:
        for tour in opened.values():
            tour.context.close()


# -- how each state of a page is reached --------------------------------------------------------

_MACHINES = iter(range(10**6))


def _activate(tour: Tour) -> str:
    """A new machine's request pasted into the Activate page: the result page."""
    n = next(_MACHINES)
    app, text = _request(tour.scratch, f"m{n}", tour.portal, tour.records.license_key, f"workstation-{n:03}")
    tour.go("/activate")
    tour.page.get_by_label("Or paste the request text").fill(text)
    tour.submit()
    expect(tour.page).to_have_url(f"{tour.portal.url}/activate/result")
    # The response file, downloaded as the page offers it, loaded on the machine.
    answer = tour.page.request.get(f"{tour.portal.url}/activate/result/download")
    assert answer.ok, answer.status
    jwks = Keyring(tour.portal.keys).jwks(tour.portal.product_id)
    app.activate(answer.body(), jwks=jwks)
    tour.page.wait_for_load_state("networkidle")
    return "/activate/result"


def _deactivate(tour: Tour) -> str:
    """A machine activated from the Activate page, deactivated from the Deactivate page."""
    n = next(_MACHINES)
    app, text = _request(tour.scratch, f"m{n}", tour.portal, tour.records.license_key, f"laptop-{n:03}")
    tour.go("/activate")
    tour.page.get_by_label("Or paste the request text").fill(text)
    tour.submit()
    answer = tour.page.request.get(f"{tour.portal.url}/activate/result/download")
    assert answer.ok, answer.status
    app.activate(answer.body(), jwks=Keyring(tour.portal.keys).jwks(tour.portal.product_id))
    tour.go("/deactivate")
    tour.page.get_by_label("Or paste the request text").fill(app.deactivate(tour.scratch / f"m{n}.req"))
    tour.submit()
    expect(tour.page).to_have_url(f"{tour.portal.url}/deactivate/result")
    return "/deactivate/result"


def _refused(page_path: str) -> Callable[[Tour], str]:
    """The form of ``page_path`` sent with text that is not a request: the page with its error."""

    def reach(tour: Tour) -> str:
        tour.go(page_path)
        tour.page.get_by_label("Or paste the request text").fill("this is not a request file")
        tour.submit()
        expect(tour.page.get_by_role("alert")).to_be_visible()
        return page_path

    return reach


def _no_result(page_path: str) -> Callable[[Tour], str]:
    """The result page of ``page_path`` without a result to show (none made, or its cookie gone)."""

    def reach(tour: Tour) -> str:
        tour.context.clear_cookies(name=RESULT_COOKIE)
        assert tour.go(f"{page_path}/result") == 404
        return f"{page_path}/result"

    return reach


def _tampered_link(tour: Tour) -> str:
    """A file link of the Downloads page with its signature changed: the download's error page."""
    tour.go("/downloads")
    href = tour.page.locator("main a[href^='/downloads/f/']").first.get_attribute("href")
    assert href
    tampered = href[:-1] + ("A" if href[-1] != "A" else "B")
    assert tour.go(tampered) == 403
    return urlsplit(href).path


def _batch_refused(tour: Tour) -> str:
    tour.go("/batch")
    zip_field = tour.page.locator("main input[type=file]")
    zip_field.set_input_files({"name": "requests.zip", "mimeType": "application/zip", "buffer": b"not a zip"})
    tour.submit()
    expect(tour.page.get_by_role("alert")).to_be_visible()
    return "/batch"


def _batch_done(tour: Tour) -> str:
    """A zip of a new machine's request and of a file that is no request, uploaded on the Batch
    page: its result page (one accepted, one refused)."""
    n = next(_MACHINES)
    _, text = _request(tour.scratch, f"m{n}", tour.portal, tour.records.license_key, f"kiosk-{n:03}")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"kiosk-{n:03}.request", text)
        zf.writestr("notes.txt", "not a request")
    tour.go("/batch")
    tour.page.locator("main input[type=file]").set_input_files(
        {"name": "requests.zip", "mimeType": "application/zip", "buffer": archive.getvalue()}
    )
    tour.submit()
    expect(tour.page.get_by_role("heading", name="2 files processed")).to_be_visible()
    return urlsplit(tour.page.url).path


def _token_made(tour: Tour) -> str:
    """A token made on the security page: shown once, and listed with the sessions."""
    tour.go("/profile/security")
    tour.page.get_by_label("Name").fill(f"inventory script {next(_MACHINES)}")
    tour.submit()
    expect(tour.page.get_by_role("textbox", name="Token", exact=True)).to_be_visible()
    return "/profile/security"


def _menu_open(tour: Tour) -> str:
    """The dashboard with the main menu unfolded from its button (shown on phones only)."""
    tour.go("/")
    button = tour.page.get_by_role("button", name="Menu")
    if button.is_visible():
        button.click()
        expect(tour.page.get_by_role("navigation", name="Main")).to_be_visible()
    return "/"


def _name_saved(tour: Tour) -> str:
    """The profile's name form sent: the page again, with its notice."""
    tour.go("/profile")
    tour.page.get_by_role("button", name="Save name").click()
    tour.page.wait_for_load_state("networkidle")
    expect(tour.page.get_by_role("status")).to_be_visible()
    return "/profile"


def _password_refused(tour: Tour) -> str:
    """The password form sent with a wrong current password: the page with its error."""
    tour.go("/profile")
    tour.page.get_by_label("Current password", exact=True).fill("not my password")
    tour.page.get_by_label("New password", exact=True).fill("a new passphrase for nothing")
    tour.page.get_by_label("New password again").fill("a new passphrase for nothing")
    tour.page.get_by_role("button", name="Change password").click()
    tour.page.wait_for_load_state("networkidle")
    expect(tour.page.get_by_role("alert")).to_be_visible()
    return urlsplit(tour.page.url).path


def _user_refused(tour: Tour) -> str:
    """A user added with an email the organization already has: the users page with its error."""
    tour.go("/organization/users")
    tour.page.get_by_label("Email").fill(tour.records.user_email)
    tour.page.get_by_role("button", name="Add user").click()
    tour.page.wait_for_load_state("networkidle")
    expect(tour.page.get_by_role("alert")).to_be_visible()
    return "/organization/users"


def _login_refused(tour: Tour) -> str:
    tour.go("/login")
    tour.page.get_by_label("Account").fill(tour.portal.account)
    tour.page.get_by_label("Email").fill("nobody@example.com")
    tour.page.get_by_label("Password").fill("not the password")
    tour.page.get_by_role("button", name="Log in").click()
    tour.page.wait_for_load_state("networkidle")
    expect(tour.page.get_by_role("alert")).to_be_visible()
    return "/login"


def _set_password(tour: Tour) -> str:
    tour.page.goto(tour.records.set_password_link)
    tour.page.wait_for_load_state("networkidle")
    expect(tour.page.get_by_label("New password", exact=True)).to_be_visible()
    return "/set-password"


@dataclass(frozen=True)
class Visit:
    """A page in one state: ``path`` (with {license_id}, {user_id}, {group_id}) is opened, or
    ``reach`` drives the forms to the page and answers the path it ends on. ``route`` is the
    app's route the page belongs to (None for a path no route has: the 404 page)."""

    route: str | None
    path: str
    roles: tuple[str, ...]
    state: str = ""
    status: int = 200
    reach: Callable[[Tour], str] | None = None

    @property
    def name(self) -> str:
        return f"{self.path}{f' ({self.state})' if self.state else ''}"


PEOPLE = (ADMIN, USER)
VISITS = [
    Visit("/", "/", PEOPLE, "dashboard"),
    Visit("/", "/", PEOPLE, "menu unfolded on a phone", reach=_menu_open),
    Visit("/licenses", "/licenses", PEOPLE),
    Visit("/licenses/{id}", "/licenses/{license_id}", PEOPLE, "with machines, one deactivated"),
    Visit("/licenses/{id}", "/licenses/{license_id}?reveal=1", PEOPLE, "key shown"),
    Visit("/licenses/{id}", "/licenses/lic_000000000000000000000000", PEOPLE, "not found", 404),
    Visit("/activations", "/activations", PEOPLE),
    Visit("/activations", "/activations?status=deactivated", PEOPLE, "filtered"),
    Visit("/activate", "/activate", PEOPLE, "empty"),
    Visit("/activate", "/activate", PEOPLE, "refused", reach=_refused("/activate")),
    Visit("/activate/result", "/activate/result", PEOPLE, "nothing to show", reach=_no_result("/activate")),
    Visit("/activate/result", "/activate/result", PEOPLE, "activated", reach=_activate),
    Visit("/deactivate", "/deactivate", PEOPLE, "empty"),
    Visit("/deactivate", "/deactivate", PEOPLE, "refused", reach=_refused("/deactivate")),
    Visit(
        "/deactivate/result", "/deactivate/result", PEOPLE, "nothing to show", reach=_no_result("/deactivate")
    ),
    Visit("/deactivate/result", "/deactivate/result", PEOPLE, "deactivated", reach=_deactivate),
    Visit("/batch", "/batch", PEOPLE, "empty"),
    Visit("/batch", "/batch", PEOPLE, "refused", reach=_batch_refused),
    Visit("/batch/result/{id}", "/batch/result/<id>", PEOPLE, "one accepted, one refused", reach=_batch_done),
    Visit("/batch/result/{id}", "/batch/result/bat_" + "0" * 32, PEOPLE, "not found", 404),
    Visit(
        "/licenses/{id}/release/{activation}",
        "/licenses/{license_id}/release/{activation_id}",
        (ADMIN,),
        "confirm",
    ),
    Visit(
        "/licenses/{id}/release/{activation}",
        "/licenses/{license_id}/release/{activation_id}",
        (USER,),
        "not allowed",
        403,
    ),
    Visit("/downloads", "/downloads", PEOPLE, "a release"),
    Visit("/downloads/f/{id}", "/downloads/f/<file>", PEOPLE, "tampered link", reach=_tampered_link),
    Visit("/profile", "/profile", PEOPLE),
    Visit("/profile", "/profile", PEOPLE, "name saved", reach=_name_saved),
    Visit("/profile", "/profile", PEOPLE, "wrong password", reach=_password_refused),
    Visit("/profile/security", "/profile/security", PEOPLE, "token made", reach=_token_made),
    Visit("/profile/security", "/profile/security", PEOPLE, "two sessions and a token"),
    Visit("/organization/users", "/organization/users", (ADMIN,)),
    Visit("/organization/users", "/organization/users", (ADMIN,), "refused", reach=_user_refused),
    Visit("/organization/users", "/organization/users", (USER,), "not allowed", 403),
    Visit("/organization/users/{id}", "/organization/users/{user_id}", (ADMIN,), "in a group"),
    Visit("/organization/users/{id}/disable", "/organization/users/{user_id}/disable", (ADMIN,), "confirm"),
    Visit("/organization/groups", "/organization/groups", (ADMIN,)),
    Visit("/organization/groups/{id}", "/organization/groups/{group_id}", (ADMIN,), "member and license"),
    Visit("/organization/groups/{id}/delete", "/organization/groups/{group_id}/delete", (ADMIN,), "confirm"),
    Visit("/login", "/login", (PUBLIC,), "empty"),
    Visit("/login", "/login", (PUBLIC,), "refused", 401, reach=_login_refused),
    Visit("/forgot-password", "/forgot-password", (PUBLIC,), "empty"),
    Visit("/forgot-password", "/forgot-password?sent=1", (PUBLIC,), "sent"),
    Visit("/set-password", "/set-password", (PUBLIC,), "valid link", reach=_set_password),
    Visit("/set-password", "/set-password?token=not-a-token", (PUBLIC,), "bad link", 400),
    Visit(None, "/no-such-page", (PUBLIC, ADMIN), "not found", 404),
]


def _violations(page: Page, where: str) -> list[str]:
    """axe-core's serious and critical findings on the page as it is: rule, impact, target, page."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT)
    found = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)["violations"]
    return [
        f"{v['id']} ({node['impact']}) at {' > '.join(map(str, node['target']))} on {where}: {v['help']}"
        for v in found
        for node in v["nodes"]
        if node["impact"] in FAILING
    ]


def _tour(tour: Tour) -> list[str]:
    """Every visit of ``tour.role``, each page checked at both widths as it stands (a page is
    reached once, then the window is resized)."""
    problems = []
    narrow, wide = WIDTHS
    for visit in VISITS:
        if tour.role not in visit.roles:
            continue
        tour.page.set_viewport_size({"width": narrow, "height": WIDTHS[narrow]})
        where = f"{visit.name} as {tour.role}"
        if visit.reach is not None:
            path = visit.reach(tour)
            assert urlsplit(tour.page.url).path == path, f"{where}: ended on {tour.page.url}"
        else:
            status = tour.go(tour.records.fill(visit.path), settle=False)
            assert status == visit.status, f"{where}: HTTP {status}"
            expect(tour.page.locator("h1")).to_be_visible()
        for width in (narrow, wide):
            tour.page.set_viewport_size({"width": width, "height": WIDTHS[width]})
            problems += _violations(tour.page, f"{where} at {width} px")
        tour.page.wait_for_load_state("networkidle")  # before leaving it
    assert tour.csp == [] and tour.foreign == [], (tour.csp, tour.foreign)
    return problems


@pytest.mark.parametrize("role", [ADMIN, USER, PUBLIC])
def test_no_serious_accessibility_violation_on_any_portal_page(tours: dict[str, Tour], role: str) -> None:
    problems = _tour(tours[role])
    assert problems == [], "\n".join(problems)


# -- the trial form --------------------------------------------------------------------------


def _trial_request(root: Path, product_id: str) -> Path:
    n = next(_MACHINES)
    app = Client(root / f"t{n}", machine_id=lambda: f"a11y-trial-{n}", witness_dir=root / f"t{n}-w")
    path = root / f"trial-{n}.req"
    path.write_text(app.trial_request(product_id=product_id, hostname=f"lab-pc-{n}"), encoding="ascii")
    return path


def test_no_serious_accessibility_violation_on_the_trial_form(
    browser: Browser, form_site: FormSite, trial_service: TrialService, tmp_path: Path
) -> None:
    """The form empty, with a granted trial, and with a refusal, each at both widths."""
    narrow, wide = WIDTHS
    context = browser.new_context(viewport={"width": narrow, "height": WIDTHS[narrow]})
    context.add_init_script(CSP_REPORTER)
    context.set_default_timeout(15_000)
    csp: list[str] = []
    foreign: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: csp.append(m.text) if "CSP violation" in m.text else None)
    page.on("pageerror", lambda exc: csp.append(f"page error: {exc}"))
    page.on("request", lambda r: None if urlsplit(r.url).hostname == "127.0.0.1" else foreign.append(r.url))
    problems: list[str] = []

    def check(state: str) -> None:
        page.wait_for_load_state("networkidle")
        for width in (narrow, wide):
            page.set_viewport_size({"width": width, "height": WIDTHS[width]})
            problems.extend(_violations(page, f"the trial form ({state}) at {width} px"))
        page.set_viewport_size({"width": narrow, "height": WIDTHS[narrow]})

    try:
        page.goto(form_site.publish(f"a11y-{time.monotonic_ns()}", trial_service.config()))
        expect(page.get_by_role("heading", name="Trial for an offline machine")).to_be_visible()
        check("empty")
        for product, product_id, state, shown in (
            ("Trial App", trial_service.product_id, "with a result", "Download the trial response"),
            ("No Trials", trial_service.no_trials_id, "with an error", None),
        ):
            page.get_by_label("Product to try").select_option(label=product)
            page.get_by_label("The file the app wrote").set_input_files(_trial_request(tmp_path, product_id))
            page.get_by_role("button", name="Get the trial response").click()
            if shown:
                expect(page.get_by_role("button", name=shown)).to_be_visible()
            else:
                expect(page.get_by_role("alert")).to_be_visible()
            check(state)
    finally:
        context.close()
    assert csp == [] and foreign == [], (csp, foreign)
    assert problems == [], "\n".join(problems)


# -- no page forgotten ------------------------------------------------------------------------


def _get_routes(tmp_path: Path) -> set[str]:
    app = create_app(Settings(data_dir=tmp_path / "data", keys_dir=tmp_path / "keys"))
    try:
        return {
            r.path
            for r in app.routes
            if isinstance(r, Route) and r.methods is not None and "GET" in r.methods
        }
    finally:
        app.state.services.close()


def test_every_get_route_is_checked_or_excluded_with_a_reason(tmp_path: Path) -> None:
    routes = _get_routes(tmp_path)
    checked = {v.route for v in VISITS if v.route is not None}
    pages = {r for r in routes if not r.startswith(API_PREFIX) and r not in EXCLUDED}
    assert pages - checked == set(), "pages neither checked nor in EXCLUDED"
    assert checked - routes == set(), "VISITS names routes the app does not have"
    assert set(EXCLUDED) - routes == set(), "EXCLUDED names routes the app does not have"
    # Each role sees the pages meant for it at both widths.
    assert {role for v in VISITS for role in v.roles} == {ADMIN, USER, PUBLIC}
