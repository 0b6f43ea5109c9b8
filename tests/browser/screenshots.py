"""``make screenshots``: the portal with a realistic volume of records, photographed in Debian's
Chromium for docs/screenshots/ (the README shows some of them).

    python -m tests.browser.screenshots [--out docs/screenshots]

The records are made with the project's own operations (licensing.services, the engine fed by the
client SDK's request files, accounts.membership), never with SQL: three products, three
organizations with their users and groups, dozens of licenses, hundreds of machines with
believable hostnames (some deactivated), one suspended and one expired license. The clock is
fixed (``NOW``) for the records and for the portal, which runs in this process (create_app with
that clock, under uvicorn on a free 127.0.0.1 port), and the names come from a seeded random
generator: the pictures change only when the pages do (ids and license keys stay random, as the
service makes them, so masked keys differ from one run to the next).

The pages are reached by their URLs and filled through their fields' names (what the forms post),
never by the wording of headings, labels or buttons, so the script keeps working while the pages
change. It lives
with the browser tests because it shares their Chromium set-up (harness.py); test_screenshots.py
checks the seeding's volume without taking pictures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import random
import socket
import tempfile
import threading
import time
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from offline_service.accounts import membership
from offline_service.accounts.models import Account, Role, User, UserGroup
from offline_service.accounts.passwords import Cost
from offline_service.accounts.scope import Scope
from offline_service.client import Client
from offline_service.fileformat.keyring import Keyring
from offline_service.licensing import queries
from offline_service.licensing import services as licensing
from offline_service.licensing.engine import Engine
from offline_service.licensing.models import UNLIMITED, License, LicenseStatus, Product
from offline_service.settings import Settings
from offline_service.store import Store, open_store
from offline_service.web.app import create_app
from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, copy_form

__all__ = ["NOW", "PASSWORD", "Seeded", "main", "seed", "take"]

NOW = int(dt.datetime(2025, 6, 2, 9, 30, tzinfo=dt.UTC).timestamp())
DAY = 86_400
ACCOUNT = "default"
PASSWORD = "screenshots demo passphrase 7"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDE = {"width": 1440, "height": 1000}
PHONE = {"width": 390, "height": 844}

# name, trial days, app versions, what its machines are called ({org} the organization's prefix)
PRODUCTS = [
    (
        "CAD Studio",
        30,
        ["2024.3.1", "2025.1.0", "2025.1.2"],
        ["{org}-cad-ws-{n:03}", "{org}-lt-{person}-{n:02}"],
    ),
    ("Render Node", 0, ["8.4.0", "8.5.2"], ["render-{n:02}.farm.{domain}", "gpu-node-{n:02}.{domain}"]),
    ("Field Survey", 14, ["3.2.0", "3.3.1"], ["survey-tab-{n:02}", "{org}-rugged-{n:02}"]),
]
SYSTEMS = [
    "Windows 11 Pro 23H2",
    "Windows 10 Enterprise 22H2",
    "Ubuntu 22.04.4 LTS",
    "Rocky Linux 9.3",
    "macOS 14.5",
]


@dataclass(frozen=True)
class Organization:
    name: str
    prefix: str  # of its machines' hostnames
    domain: str
    admin: tuple[str, str]
    people: list[tuple[str, str]]  # the last one is invited and has no password yet
    groups: list[str]
    licenses: dict[str, int]  # product name: how many
    former: tuple[str, str] | None = None  # a user who left: disabled


ORGANIZATIONS = [
    Organization(
        name="Northwind Engineering",
        prefix="nw",
        domain="northwind.example",
        admin=("Maria", "Jensen"),
        people=[
            ("Tomas", "Berg"),
            ("Aisha", "Khan"),
            ("Lukas", "Meyer"),
            ("Sofia", "Rossi"),
            ("Daniel", "Okafor"),
            ("Emma", "Lindqvist"),
            ("Hiro", "Tanaka"),
        ],
        groups=["CAD team", "Render operators", "Site surveyors"],
        licenses={"CAD Studio": 7, "Render Node": 4, "Field Survey": 4},
        former=("Jakob", "Holm"),
    ),
    Organization(
        name="Contoso Labs",
        prefix="cl",
        domain="contoso.example",
        admin=("Priya", "Natarajan"),
        people=[("Jonas", "Weber"), ("Chloe", "Martin"), ("Mateo", "García"), ("Nora", "Haddad")],
        groups=["Design", "Visualisation"],
        licenses={"CAD Studio": 5, "Render Node": 5},
    ),
    Organization(
        name="Fabrikam Research",
        prefix="fab",
        domain="fabrikam.example",
        admin=("Olivia", "Brown"),
        people=[("Kwame", "Mensah"), ("Lena", "Novak"), ("Samuel", "Cohen")],
        groups=["Field teams"],
        licenses={"Field Survey": 6, "CAD Studio": 3},
    ),
]
SEATS = [5, 5, 10, 10, 10, 15, 20, 25, 40]


@dataclass
class Seeded:
    """What seed() made: counts for the test, and what the pictures need."""

    settings: Settings
    account: Account
    products: list[Product]
    organizations: list[str]
    admin: User | None = None  # the organization admin who logs in (password PASSWORD)
    licenses: list[License] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    groups: list[UserGroup] = field(default_factory=list)
    activations: int = 0
    deactivations: int = 0
    showcase: License | None = None  # the admin's license with the most machines
    spare: License | None = None  # a license of the admin's with seats left, for the Activate page

    @property
    def spare_product(self) -> str:
        assert self.spare is not None
        return next(p.name for p in self.products if p.id == self.spare.product_id)


class _Clock:
    """A clock a test or the seeding moves by hand."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


def _ascii(text: str) -> str:
    """``text`` in lower case without its accents: García -> garcia."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if c.isascii())


def _email(first: str, last: str, domain: str) -> str:
    return f"{_ascii(first)}.{_ascii(last)}@{domain}"


def _working_hours(rng: random.Random, low: int, high: int) -> int:
    """A time between ``low`` and ``high``, moved into 07:00-19:00 UTC of its day when that stays
    inside: people activate machines at work."""
    t = rng.randint(low, high)
    moved = t - t % DAY + rng.randint(7 * 3600, 19 * 3600)
    return moved if low <= moved <= high else t


class _Seeder:
    """One seeding run: the store, the engine, the random generator and what was made so far."""

    def __init__(self, settings: Settings, store: Store, now: int, scratch: Path) -> None:
        self.store, self.now, self.scratch = store, now, scratch
        self.keyring = Keyring(settings.keys_dir, passphrase=settings.key_passphrase)
        self.engine = Engine(store=store, keyring=self.keyring)
        self.rng = random.Random(20250602)
        self.start = now - 200 * DAY
        account, _ = licensing.ensure_account(store, ACCOUNT, now=self.start, name="Acme Software")
        self.vendor = Scope.vendor(account)
        self.products = {
            name: licensing.create_product(
                store, self.keyring, account, name=name, now=self.start, trial_days=trial
            )
            for name, trial, _, _ in PRODUCTS
        }
        self.found = Seeded(settings, account, products=list(self.products.values()), organizations=[])
        self.machines = 0
        self.numbers: Counter[str] = Counter()

    def organization(self, spec: Organization, *, with_password: bool) -> None:
        """The organization, its admin (who may log in) and people, its groups, its licenses."""
        org = membership.create_organization(self.store, self.vendor, name=spec.name, now=self.start + DAY)
        self.found.organizations.append(org.name)
        people = [
            membership.create_user(
                self.store,
                self.vendor,
                email=_email(first, last, spec.domain),
                role=Role.ORGANIZATION_ADMIN if i == 0 else Role.USER,
                now=self.start + (1 + i) * DAY,
                organization_id=org.id,
                first_name=first,
                last_name=last,
                # Only the admin of the first organization logs in; the others' passwords are
                # never used, so they are hashed at the lowest cost, to seed quickly.
                password=(PASSWORD if with_password and i == 0 else f"{PASSWORD} {i}")
                if i < len(spec.people)
                else None,
                cost=self.found.settings.password_cost if with_password and i == 0 else Cost.MINIMUM,
            ).user
            for i, (first, last) in enumerate([spec.admin, *spec.people])
        ]
        self.found.users += people
        if spec.former is not None:
            first, last = spec.former
            former = membership.create_user(
                self.store,
                self.vendor,
                email=_email(first, last, spec.domain),
                role=Role.USER,
                now=self.start + 5 * DAY,
                organization_id=org.id,
                first_name=first,
                last_name=last,
            ).user
            membership.set_disabled(self.store, self.vendor, former.id, True, now=self.now - 30 * DAY)
            self.found.users.append(former)
        if with_password:
            self.found.admin = people[0]
        groups = [
            membership.create_group(
                self.store, self.vendor, name=g, now=self.start + 10 * DAY, organization_id=org.id
            )
            for g in spec.groups
        ]
        self.found.groups += groups
        for i, person in enumerate(people[1:]):
            membership.add_member(
                self.store, self.vendor, groups[i % len(groups)].id, person.id, now=self.start + 11 * DAY
            )
        for p_index, (product_name, count) in enumerate(spec.licenses.items()):
            for n in range(count):
                # The first organization also holds the suspended and the expired license.
                special = spec is ORGANIZATIONS[0] and (product_name, n) in (
                    ("CAD Studio", 2),
                    ("Field Survey", 1),
                )
                lic = self.license(
                    spec, product_name, n, people, expired=special and product_name == "Field Survey"
                )
                membership.link_license(
                    self.store, self.vendor, groups[p_index % len(groups)].id, lic.id, now=lic.created_at
                )
                if special and product_name == "CAD Studio":
                    licensing.set_license_status(
                        self.store,
                        self.found.account,
                        lic.key,
                        LicenseStatus.SUSPENDED,
                        now=self.now - 3 * DAY,
                    )

    def license(
        self, spec: Organization, product_name: str, n: int, people: list[User], *, expired: bool
    ) -> License:
        """A license of the organization, and the machines activated with it over the months."""
        product = self.products[product_name]
        created = self.start + self.rng.randint(12, 120) * DAY + self.rng.randint(0, 8 * 3600)
        seats = self.rng.choice(SEATS) if n else UNLIMITED if product_name == "Render Node" else 50
        expires = self.now - 12 * DAY if expired else None  # its machines were activated before
        lic = licensing.create_license(
            self.store,
            self.found.account,
            product_id=product.id,
            allowed_activations=seats,
            allowed_deactivations=-1 if seats == UNLIMITED else seats,
            now=created,
            expires_at=expires,
            owner_organization=spec.name,
            owner=f"{spec.name}, {product_name} #{n + 1}",
        )
        last_day = (expires or self.now) - DAY
        wanted = min(30 if seats == UNLIMITED else seats, self.rng.randint(3, 16))
        for k, when in enumerate(
            sorted(_working_hours(self.rng, created + 3600, last_day) for _ in range(wanted))
        ):
            self.machine(spec, product, lic, people[k % len(people)], k, when, last_day)
        return lic

    def machine(
        self,
        spec: Organization,
        product: Product,
        lic: License,
        person: User,
        k: int,
        when: int,
        last_day: int,
    ) -> None:
        """A machine of ``person`` activated at ``when``, from its own request file; about one in
        nine gives its seat back later with its own deactivation request."""
        self.machines += 1
        self.numbers[spec.prefix] += 1  # each organization numbers its machines
        _, _, versions, patterns = next(p for p in PRODUCTS if p[0] == product.name)
        hostname = patterns[k % len(patterns)].format(
            org=spec.prefix,
            domain=spec.domain,
            n=self.numbers[spec.prefix],
            person=_ascii(person.last_name)[:6],
        )
        clock = _Clock(when)
        app = Client(
            self.scratch / f"m{self.machines}",
            clock=clock,
            machine_id=lambda m=self.machines: f"screenshots-machine-{m}",
            witness_dir=self.scratch / f"w{self.machines}",
        )
        request = app.activation_request(
            product_id=product.id,
            license_key=lic.key,
            hostname=hostname,
            os_name=self.rng.choice(SYSTEMS),
            app_version=self.rng.choice(versions),
        )
        account_id, actor = self.found.account.id, f"user:{person.id}"
        outcome = self.engine.process(request.encode(), account_id=account_id, now=when, actor=actor)
        if not outcome.ok or outcome.response is None:
            raise RuntimeError(f"seeding: {hostname} was refused: {outcome}")
        self.found.activations += 1
        if self.rng.random() < 0.11:
            app.activate(outcome.response.encode(), jwks=self.keyring.jwks(product.id))
            clock.now = _working_hours(self.rng, when + 3600, max(when + 7200, last_day))
            back = app.deactivation_request()
            gone = self.engine.process(back.encode(), account_id=account_id, now=clock.now, actor=actor)
            if not gone.ok:
                raise RuntimeError(f"seeding: the deactivation of {hostname} was refused: {gone}")
            self.found.deactivations += 1


def seed(settings: Settings, *, now: int = NOW, scratch: Path) -> Seeded:
    """Fill the empty database of ``settings`` through the project's operations; ``scratch`` holds
    the machines' client state. The same records (names, counts, times) on every run."""
    store = open_store(settings)
    try:
        seeder = _Seeder(settings, store, now, scratch)
        for i, spec in enumerate(ORGANIZATIONS):
            seeder.organization(spec, with_password=i == 0)
        found = seeder.found
        assert found.admin is not None
        found.licenses = queries.licenses(store, found.account)  # as they are now, with their usage
        mine = sorted(
            (x for x in found.licenses if x.owner_organization_id == found.admin.organization_id),
            key=lambda x: x.owner or "",
        )
        found.showcase = max(mine, key=lambda x: x.used_activations)  # the first of the busiest
        found.spare = next(
            x
            for x in mine
            if x.status is LicenseStatus.ACTIVE
            and (x.expires_at is None or x.expires_at > now)
            and (x.allowed_activations == UNLIMITED or x.used_activations < x.allowed_activations)
        )
        return found
    finally:
        store.close()


# -- the portal, on a free port, with the fixed clock ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def portal(settings: Settings, *, now: int = NOW) -> Iterator[str]:
    """The portal of ``settings`` (create_app, as ``serve`` runs it) under uvicorn in a thread, on
    a free 127.0.0.1 port, its clock stopped at ``now``; yields its URL."""
    app = create_app(settings, clock=lambda: float(now))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the portal did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# -- the pictures -------------------------------------------------------------------------------


def _settle(page: Page) -> None:
    page.wait_for_load_state("networkidle")


def _log_in(page: Page, url: str, seeded: Seeded) -> None:
    assert seeded.admin is not None
    page.goto(f"{url}/login")
    page.locator("input[name=account]").fill(seeded.account.alias)
    page.locator("input[name=email]").fill(seeded.admin.email)
    page.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.locator("main form").first.evaluate("f => f.requestSubmit()")
    if page.url.rstrip("/") != url:
        raise RuntimeError(f"logging in ended on {page.url}")
    _settle(page)


def _shoot(page: Page, out: Path, name: str, written: list[Path]) -> None:
    _settle(page)
    path = out / f"{name}.png"
    # The window only, not the whole page: modest files (about 40-150 KiB each), and what a
    # person sees first.
    page.screenshot(path=path, animations="disabled", caret="hide")
    written.append(path)


def _activation_request(seeded: Seeded, scratch: Path) -> str:
    """What a new machine of the admin's organization would bring to the Activate page."""
    assert seeded.spare is not None
    _, _, versions, patterns = next(p for p in PRODUCTS if p[0] == seeded.spare_product)
    spec = ORGANIZATIONS[0]
    app = Client(
        scratch / "new-workstation",
        clock=lambda: float(NOW - 300),
        machine_id=lambda: "new-ws",
        witness_dir=scratch / "new-workstation-witness",
    )
    return app.activation_request(
        product_id=seeded.spare.product_id,
        license_key=seeded.spare.key,
        hostname=patterns[0].format(org=spec.prefix, domain=spec.domain, n=42, person="jensen"),
        os_name=SYSTEMS[0],
        app_version=versions[-1],
    )


def take(browser: Browser, url: str, seeded: Seeded, out: Path, scratch: Path) -> list[Path]:
    """The pictures, by URL: each page as the organization admin sees it."""
    out.mkdir(parents=True, exist_ok=True)
    assert seeded.showcase is not None
    written: list[Path] = []
    wide = browser.new_context(viewport=WIDE)
    try:
        page = wide.new_page()
        _log_in(page, url, seeded)
        for name, path in (
            ("dashboard", "/"),
            ("licenses", "/licenses"),
            ("license", f"/licenses/{seeded.showcase.id}"),
            ("organization-users", "/organization/users"),
            ("profile", "/profile"),
            ("activate", "/activate"),
        ):
            page.goto(f"{url}{path}")
            _shoot(page, out, name, written)
        # The Activate page with a request pasted, sent, and its result page.
        page.locator("main textarea[name=text]").fill(_activation_request(seeded, scratch))
        with page.expect_navigation():
            page.locator("main form").first.evaluate("f => f.requestSubmit()")
        if not page.url.endswith("/activate/result"):
            raise RuntimeError(f"activating ended on {page.url}")
        _shoot(page, out, "activate-result", written)
        # The trial form as a vendor publishes it, for the three products.
        config = {
            "apiBaseUrl": "https://licenses.vendor.example",
            "products": [{"name": p.name, "id": p.id} for p in seeded.products if p.trial_days],
        }
        form = copy_form(scratch / "trial-form", config)
        page.goto(form.as_uri())
        _shoot(page, out, "trial-form", written)
    finally:
        wide.close()
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = phone.new_page()
        _log_in(page, url, seeded)
        for name, path in (("dashboard-phone", "/"), ("licenses-phone", "/licenses")):
            page.goto(f"{url}{path}")
            _shoot(page, out, name, written)
    finally:
        phone.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.browser.screenshots", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=DOCS, help="where the PNG files go (default docs/screenshots)"
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        parser.error(f"Debian's Chromium is not at {CHROMIUM}: run `make chromium`")
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        root = Path(tmp)
        # The public address only names the portal in links no one follows here (it also spares
        # the start-up warning that links cannot be mailed).
        settings = Settings(
            data_dir=root / "data", keys_dir=root / "keys", public_url="https://licenses.vendor.example"
        )
        started = time.monotonic()
        seeded = seed(settings, scratch=root / "machines")
        print(
            f"seeded {len(seeded.licenses)} licenses of {len(seeded.products)} products for"
            f" {len(seeded.organizations)} organizations, {seeded.activations} activations"
            f" ({seeded.deactivations} deactivated), {len(seeded.users)} users, {len(seeded.groups)} groups"
            f" in {time.monotonic() - started:.1f} s"
        )
        with portal(settings) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            try:
                written = take(browser, url, seeded, args.out, root)
            finally:
                browser.close()
    for path in written:
        print(f"{path} ({path.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
