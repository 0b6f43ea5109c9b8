"""``GET /openapi.json`` answers the document the service described before it was assembled from
each domain's section: tests/web/openapi_snapshot.json, generated once from the hand-written
document, with the package version replaced by ``VERSION``. A deliberate change to the API
regenerates the snapshot (``python -m tests.web.test_openapi_snapshot``) in the same commit, so
the diff shows what changed in the document."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from offline_service import __version__
from offline_service.web import openapi
from tests.web.site import Site

SNAPSHOT = Path(__file__).with_name("openapi_snapshot.json")


def _expected() -> dict[str, Any]:
    expected: dict[str, Any] = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    expected["info"]["version"] = __version__
    return expected


def test_served_document_equals_the_snapshot(site: Site) -> None:
    response = site.client.get("/openapi.json")
    assert response.status_code == 200
    served = response.json()
    expected = _expected()
    # Compared part by part first, so a failure names the path or schema that differs.
    assert sorted(served["paths"]) == sorted(expected["paths"])
    for path, item in expected["paths"].items():
        assert served["paths"][path] == item, path
    for part in ("schemas", "responses", "securitySchemes"):
        assert sorted(served["components"][part]) == sorted(expected["components"][part]), part
        for name, schema in expected["components"][part].items():
            assert served["components"][part][name] == schema, (part, name)
    assert served == expected


def _write_snapshot() -> None:
    doc: dict[str, Any] = json.loads(json.dumps(openapi.document()))
    doc["info"]["version"] = "VERSION"
    SNAPSHOT.write_text(
        json.dumps(doc, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )


if __name__ == "__main__":
    _write_snapshot()
