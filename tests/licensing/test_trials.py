"""The trial endpoint: no login, CORS for the configured origins, the per-address rate limit and the
daily cap (their decisions and storage: test_trial_limits.py)."""

from __future__ import annotations

from typing import Any

import pytest

from offline_service.fileformat.messages import Kind
from offline_service.licensing.trials import DAY, client_key
from tests.factories import NOW, Machine
from tests.web.site import (
    ORIGIN,
    SECURITY_HEADERS,
    TRIAL,
    CheckedClient,
    Site,
    SiteFactory,
    activation_request,
    error,
)

# -- trials ---------------------------------------------------------------------------------------


def test_a_trial_needs_no_login_and_a_second_one_is_the_same_trial(site: Site) -> None:
    machine = Machine(fingerprint="fp-trial")
    first = site.trial(machine.request(Kind.TRIAL, site.product.id, issued_at=NOW))
    assert first.status_code == 200
    body = first.json()
    assert body["existing"] is False and body["trialEndsAt"] == NOW + 14 * 86400
    verified = site.verify(body["offlineResponse"])
    assert verified.kind is Kind.TRIAL and verified.trial_ends_at == body["trialEndsAt"]
    site.clock.now += 86400
    again = site.trial(machine.request(Kind.TRIAL, site.product.id, issued_at=NOW + 86400))
    assert again.json()["existing"] is True and again.json()["trialEndsAt"] == body["trialEndsAt"]
    assert site.audit()[0].actor == "trial:testclient"


def test_a_trial_as_a_form(site: Site) -> None:
    data = Machine(fingerprint="fp-form").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    response = site.client.post(
        TRIAL,
        data={"productId": site.product.id},
        files={"offlineRequest": ("trial.req", data, "application/octet-stream")},
    )
    assert response.status_code == 200 and response.json()["existing"] is False


def test_a_trial_of_another_account_s_product_uses_that_account(site: Site) -> None:
    data = Machine(fingerprint="fp-o").request(Kind.TRIAL, site.other_product.id, issued_at=NOW)
    response = site.trial(data, site.other_product.id)
    assert response.status_code == 200 and response.json()["trialEndsAt"] == NOW + 7 * 86400
    site.verify(response.json()["offlineResponse"], site.other_product.id)
    assert site.audit(site.other)[0].action == "trial"


def test_trial_refusals(site: Site) -> None:
    machine = Machine(fingerprint="fp-refused")
    before = site.state()
    no_trials = machine.request(Kind.TRIAL, site.no_trials.id, issued_at=NOW)
    assert error(site.trial(no_trials, site.no_trials.id)) == (422, "TRIAL_NOT_ALLOWED")
    # The product named in the body must be the request's.
    assert error(site.trial(no_trials, site.product.id)) == (422, "PRODUCT_MISMATCH")
    other = machine.request(Kind.TRIAL, site.other_product.id, issued_at=NOW)
    assert error(site.trial(other, site.product.id)) == (422, "PRODUCT_MISMATCH")
    assert error(site.trial(no_trials, "prod_000000000000000000000000")) == (404, "PRODUCT_NOT_FOUND")
    # Activations and deactivations have their own endpoints (and need a login).
    activation = activation_request(site, "user1", "user1", machine)
    assert error(site.trial(activation)) == (400, "MALFORMED_REQUEST")
    assert error(site.trial(b"junk")) == (400, "MALFORMED_REQUEST")
    for body in (
        {"offlineRequest": "x"},
        {"productId": 5, "offlineRequest": "x"},
        {"productId": site.product.id},
    ):
        assert error(site.client.post(TRIAL, json=body)) == (400, "INVALID_ARGUMENT")
    assert site.state() == before


def test_trial_cors_for_an_allowed_origin(site: Site) -> None:
    data = Machine(fingerprint="fp-cors").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    response = site.trial(data, headers={"origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in response.headers["vary"].lower()
    for name in SECURITY_HEADERS:
        assert name in response.headers
    # Errors carry the header too, so the page can show them.
    refused = site.trial(data, site.no_trials.id, headers={"origin": ORIGIN})
    assert error(refused) == (422, "PRODUCT_MISMATCH")
    assert refused.headers["access-control-allow-origin"] == ORIGIN


def test_trial_cors_for_a_page_opened_from_disk(site: Site) -> None:
    data = Machine(fingerprint="fp-null").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    response = site.trial(data, headers={"origin": "null"})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "null"


def test_no_cors_for_other_origins_or_unlisted_null(make_site: SiteFactory) -> None:
    site = make_site(trial_origins=("https://vendor.example",))
    data = Machine(fingerprint="fp-evil").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    for origin in (
        "https://evil.example",
        "null",
        "https://vendor.example.evil.example",
        "https://VENDOR.example",
    ):
        response = site.trial(data, headers={"origin": origin})
        assert "access-control-allow-origin" not in response.headers, origin
        preflight = site.client.options(
            TRIAL, headers={"origin": origin, "access-control-request-method": "POST"}
        )
        assert error(preflight) == (403, "FORBIDDEN")
        assert "access-control-allow-origin" not in preflight.headers
    # No CORS anywhere else, even for the allowed origin.
    assert (
        "access-control-allow-origin" not in site.client.get("/healthz", headers={"origin": ORIGIN}).headers
    )


@pytest.mark.parametrize("origin", [ORIGIN, "null"])
def test_trial_preflight(site: Site, origin: str) -> None:
    response = site.client.options(
        TRIAL,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"].lower() == "content-type"
    assert int(response.headers["access-control-max-age"]) > 0
    assert "access-control-allow-credentials" not in response.headers
    wrong_method = site.client.options(
        TRIAL, headers={"origin": origin, "access-control-request-method": "DELETE"}
    )
    assert error(wrong_method) == (403, "FORBIDDEN")
    # A preflight is not a trial request: it uses none of the rate limit.
    for _ in range(20):
        site.client.options(TRIAL, headers={"origin": origin, "access-control-request-method": "POST"})
    data = Machine(fingerprint="fp-pre").request(Kind.TRIAL, site.product.id, issued_at=NOW)
    assert site.trial(data).status_code == 200


def test_trials_are_rate_limited_per_address(make_site: SiteFactory) -> None:
    site = make_site(trial_rate_per_minute=3)
    machine = Machine(fingerprint="fp-rate")
    data = machine.request(Kind.TRIAL, site.product.id, issued_at=NOW)
    for _ in range(3):
        assert site.trial(data).status_code == 200
    limited = site.trial(data, headers={"origin": ORIGIN})
    assert error(limited) == (429, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) == 20
    assert limited.headers["access-control-allow-origin"] == ORIGIN
    assert limited.headers["access-control-expose-headers"] == "Retry-After"  # the page may read it
    site.clock.now += 20
    assert site.trial(data).status_code == 200
    assert error(site.trial(data)) == (429, "RATE_LIMITED")
    # Other endpoints are not limited by it.
    assert site.client.get("/healthz").status_code == 200


def test_new_trials_are_capped_per_address_and_day(make_site: SiteFactory) -> None:
    site = make_site(trial_daily_cap=2, trial_rate_per_minute=100)
    first, second, third = (Machine(fingerprint=f"fp-cap-{n}") for n in range(3))
    # Refusals use none of the cap and change nothing.
    before = site.state()
    refused = [
        (site.trial(b"junk"), "MALFORMED_REQUEST"),
        (
            site.trial(first.request(Kind.TRIAL, site.no_trials.id, issued_at=NOW), site.no_trials.id),
            "TRIAL_NOT_ALLOWED",
        ),
        (site.trial(first.request(Kind.TRIAL, site.no_trials.id, issued_at=NOW)), "PRODUCT_MISMATCH"),
        (site.trial(first.request(Kind.TRIAL, site.product.id, issued_at=NOW - 40 * DAY)), "REQUEST_EXPIRED"),
    ]
    assert [error(r)[1] for r, _ in refused] == [code for _, code in refused]
    assert site.state() == before
    assert site.trial(first.request(Kind.TRIAL, site.product.id, issued_at=NOW)).json()["existing"] is False
    # The machine's existing trial again is not a new one.
    for _ in range(3):
        assert (
            site.trial(first.request(Kind.TRIAL, site.product.id, issued_at=NOW)).json()["existing"] is True
        )
    site.clock.now += 3600
    assert site.trial(second.request(Kind.TRIAL, site.product.id, issued_at=NOW)).json()["existing"] is False
    state = site.state()
    capped = site.trial(third.request(Kind.TRIAL, site.product.id, issued_at=NOW), headers={"origin": ORIGIN})
    assert error(capped) == (429, "TRIAL_DAILY_LIMIT")
    assert int(capped.headers["retry-after"]) == DAY - 3600  # a day after the first new trial
    assert capped.headers["access-control-allow-origin"] == ORIGIN
    assert capped.headers["access-control-expose-headers"] == "Retry-After"
    # While capped, the address gets nothing, its existing trials included; nothing is recorded.
    assert error(site.trial(first.request(Kind.TRIAL, site.product.id, issued_at=NOW))) == (
        429,
        "TRIAL_DAILY_LIMIT",
    )
    assert site.state() == state
    site.clock.now += DAY - 3600
    later = site.trial(third.request(Kind.TRIAL, site.product.id, issued_at=int(site.clock.now)))
    assert later.status_code == 200 and later.json()["existing"] is False


def test_the_trial_limits_count_an_ipv6_address_by_its_64(make_site: SiteFactory) -> None:
    site = make_site(trial_daily_cap=1, trial_rate_per_minute=100)

    def trial_from(address: str, fingerprint: str) -> Any:
        client = CheckedClient(site.client.app, client=(address, 50000))
        data = Machine(fingerprint=fingerprint).request(Kind.TRIAL, site.product.id, issued_at=NOW)
        return client.post(TRIAL, json={"productId": site.product.id, "offlineRequest": data.decode()})

    assert trial_from("2001:db8:1:2::1", "fp-v6-a").status_code == 200
    assert error(trial_from("2001:db8:1:2:ffff::9", "fp-v6-b")) == (429, "TRIAL_DAILY_LIMIT")
    assert trial_from("2001:db8:1:3::1", "fp-v6-c").status_code == 200  # another /64
    assert trial_from("192.0.2.7", "fp-v4-a").status_code == 200
    assert error(trial_from("::ffff:192.0.2.7", "fp-v4-b")) == (429, "TRIAL_DAILY_LIMIT")
    assert site.audit()[0].actor == "trial:192.0.2.7"  # the audit log keeps the address itself


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("testclient", "testclient"),
        ("unknown", "unknown"),
    ],
)
def test_client_key(address: str, key: str) -> None:
    assert client_key(address) == key


def test_jwks_cors_for_the_trial_origins(make_site: SiteFactory) -> None:
    site = make_site(trial_origins=(ORIGIN,))
    url = f"/.well-known/jwks.json?product={site.product.id}"
    allowed = site.client.get(url, headers={"origin": ORIGIN})
    assert allowed.status_code == 200 and allowed.json()["keys"]
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    assert "origin" in allowed.headers["vary"].lower()  # caches keep one answer per origin
    for origin in ("https://evil.example", "null"):
        refused = site.client.get(url, headers={"origin": origin})
        assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers
    preflight = site.client.options(url, headers={"origin": ORIGIN, "access-control-request-method": "GET"})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-methods"] == "GET"
    post = site.client.options(url, headers={"origin": ORIGIN, "access-control-request-method": "POST"})
    assert error(post) == (403, "FORBIDDEN")
    # "null" (pages opened from disk) only when listed.
    opted_in = make_site(trial_origins=("null",))
    found = opted_in.client.get(url.replace(site.product.id, opted_in.product.id), headers={"origin": "null"})
    assert found.headers["access-control-allow-origin"] == "null"
