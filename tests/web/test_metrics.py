"""GET /metrics: what it counts (requests by route template, the engine's decisions by code, the
database and signing times, batch uploads) and who may read it (loopback, or the bearer token)."""

from __future__ import annotations

import io
import zipfile

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from offline_service.fileformat.messages import Kind
from offline_service.web.metrics import route_label
from tests.factories import NOW, Machine
from tests.web.site import ACTIVATE, Site, SiteFactory, activation_request

TOKEN = "metrics-token-0123456789abcdef"


def client_at(site: Site, host: str = "testclient") -> TestClient:
    """A plain client of the site's app (/metrics is no API answer) from ``host``. Not entered
    with ``with``: its lifespan's end would close the site's store."""
    return TestClient(site.client.app, client=(host, 40000))


def scrape(site: Site) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample /metrics shows, read from a loopback client."""
    response = client_at(site, "127.0.0.1").get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_an_activation_through_the_app_counts_its_decision_route_and_times(site: Site) -> None:
    machine = Machine(fingerprint="fp-metrics")
    before = scrape(site)
    assert site.activate("user1", activation_request(site, "user1", "user1", machine)).status_code == 200
    after = scrape(site)
    decisions = "offline_service_decisions_total"
    assert value(after, decisions, kind="activation", code="OK") == 1 + value(
        before, decisions, kind="activation", code="OK"
    )
    assert value(after, decisions, kind="activation", code="REISSUED") == 0
    requests = "offline_service_http_requests_total"
    assert value(after, requests, method="POST", route=ACTIVATE, status="2xx") == 1
    # One write transaction and one signature, timed.
    assert value(after, "offline_service_database_transaction_seconds_count") == 1 + value(
        before, "offline_service_database_transaction_seconds_count"
    )
    assert value(after, "offline_service_signing_seconds_count") == 1
    assert (
        value(after, "offline_service_http_request_duration_seconds_count", method="POST", route=ACTIVATE)
        == 1
    )

    # The same machine again is reissued: counted as REISSUED, not as a second OK.
    assert site.activate("user1", activation_request(site, "user1", "user1", machine)).status_code == 200
    again = scrape(site)
    assert value(again, decisions, kind="activation", code="OK") == 1
    assert value(again, decisions, kind="activation", code="REISSUED") == 1


def test_a_refused_request_counts_its_code(site: Site) -> None:
    # user1 may not use the license of organization B: refused as LICENSE_NOT_FOUND.
    refused = site.activate("user1", activation_request(site, "user1", "org_b"))
    assert refused.status_code == 404 and refused.json()["code"] == "LICENSE_NOT_FOUND"
    garbage = site.activate("user1", b"not a request file")
    assert garbage.status_code == 400
    samples = scrape(site)
    decisions = "offline_service_decisions_total"
    assert value(samples, decisions, kind="activation", code="LICENSE_NOT_FOUND") == 1
    assert value(samples, decisions, kind="unknown", code="MALFORMED_REQUEST") == 1
    assert value(samples, decisions, kind="activation", code="OK") == 0
    assert (
        value(samples, "offline_service_http_requests_total", method="POST", route=ACTIVATE, status="4xx")
        == 2
    )
    # Nothing granted: nothing signed.
    assert value(samples, "offline_service_signing_seconds_count") == 0


def test_trials_and_deactivations_are_counted_by_kind(site: Site) -> None:
    machine = Machine(fingerprint="fp-kinds")
    trial = site.trial(machine.request(Kind.TRIAL, site.product.id, issued_at=NOW))
    assert trial.status_code == 200
    granted = site.activate("user1", activation_request(site, "user1", "user1", machine))
    activation_id = granted.json()["activationId"]
    data = machine.request(Kind.DEACTIVATION, site.product.id, activation_id=activation_id, issued_at=NOW)
    assert site.deactivate("user1", data).status_code == 200
    samples = scrape(site)
    for kind in ("trial", "activation", "deactivation"):
        assert value(samples, "offline_service_decisions_total", kind=kind, code="OK") == 1, kind


def test_the_route_label_is_the_template_never_the_path(site: Site) -> None:
    license_id = site.licenses["user1"].id
    assert site.client.get(f"/v1/licenses/{license_id}", headers=site.auth("user1")).status_code == 200
    unknown = site.client.get("/v1/licenses/lic_0000000000000000000000000000", headers=site.auth("user1"))
    assert unknown.status_code == 404
    plain = client_at(site)  # portal answers are HTML
    assert plain.get("/no/such/page/12345").status_code == 404
    assert plain.get("/static/portal.css").status_code == 200
    samples = scrape(site)
    requests = "offline_service_http_requests_total"
    assert value(samples, requests, method="GET", route="/v1/licenses/{id}", status="2xx") == 1
    assert value(samples, requests, method="GET", route="/v1/licenses/{id}", status="4xx") == 1
    assert value(samples, requests, method="GET", route="UNMATCHED", status="4xx") == 1
    assert value(samples, requests, method="GET", route="/static/{path}", status="2xx") == 1
    routes = {dict(labels).get("route") for (name, labels) in samples if name == requests}
    assert not any(license_id in (r or "") or "12345" in (r or "") for r in routes), routes
    # A method the client makes up is no label of its own.
    plain.request("BREW", "/v1/me")
    assert value(scrape(site), requests, method="OTHER", route="/v1/me", status="4xx") == 1
    assert route_label({}) == "UNMATCHED"


def test_batch_uploads_count_their_files_and_time(site: Site) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.req", activation_request(site, "user1", "user1"))
        zf.writestr("b.req", activation_request(site, "user1", "org_b"))
    response = site.client.post(
        "/v1/batches",
        content=buffer.getvalue(),
        headers={**site.auth("user1"), "content-type": "application/zip"},
    )
    assert response.status_code == 200, response.text
    samples = scrape(site)
    assert value(samples, "offline_service_batch_files_total", result="accepted") == 1
    assert value(samples, "offline_service_batch_files_total", result="rejected") == 1
    assert value(samples, "offline_service_batch_duration_seconds_count") == 1
    assert value(samples, "offline_service_decisions_total", kind="activation", code="LICENSE_NOT_FOUND") == 1


def test_metrics_are_for_loopback_only_without_a_token(site: Site) -> None:
    # The test client's own address is no loopback address.
    refused = client_at(site).get("/metrics")
    assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
    assert "offline_service" not in refused.text
    local = client_at(site, "127.0.0.1")
    assert local.get("/metrics").status_code == 200
    # Forwarded by a proxy on this machine: from anyone, so refused.
    forwarded = local.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"})
    assert forwarded.status_code == 403
    assert local.get("/metrics", headers={"forwarded": "for=203.0.113.9"}).status_code == 403
    assert client_at(site, "::1").get("/metrics").status_code == 200


def test_metrics_with_a_token_need_it_from_everywhere(make_site: SiteFactory) -> None:
    site = make_site(metrics_token=TOKEN)
    for host in ("203.0.113.9", "127.0.0.1"):
        c = client_at(site, host)
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}x"}).status_code == 401
        assert c.get("/metrics", headers={"authorization": f"Basic {TOKEN}"}).status_code == 401
        ok = c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and "offline_service_decisions" in ok.text
