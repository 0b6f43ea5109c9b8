"""Each domain's OpenAPI section, and how web/openapi.py merges them: in order, and never letting
one section silently replace another's path, schema or tag."""

from __future__ import annotations

import pytest

from offline_service.accounts import openapi as accounts
from offline_service.licensing import openapi as licensing
from offline_service.releases import openapi as releases
from offline_service.web import openapi
from offline_service.web.openapi_kit import Section

SECTIONS = [openapi.SECTION, accounts.SECTION, licensing.SECTION, releases.SECTION]


def test_sections_merge_in_order() -> None:
    tags, paths, schemas = openapi.merge(SECTIONS)
    assert tags == ["service", "accounts", "licenses", "activations", "trials", "releases"]
    assert list(paths)[:4] == ["/healthz", "/readyz", "/openapi.json", "/.well-known/jwks.json"]
    assert list(paths)[-2:] == ["/v1/releases", "/v1/releases/files/{id}"]
    assert {"Error", "User", "License", "Release"} <= set(schemas)


@pytest.mark.parametrize(
    ("second", "what"),
    [
        (Section(tags=("other",), paths={"/v1/me": {}}), "path /v1/me"),
        (Section(tags=("other",), paths={}, schemas={"User": {}}), "schema User"),
        (Section(tags=("accounts",), paths={}), "tag accounts"),
    ],
)
def test_a_name_given_twice_is_refused(second: Section, what: str) -> None:
    with pytest.raises(ValueError, match=what):
        openapi.merge([accounts.SECTION, second])


def test_every_operation_is_tagged_by_its_own_section() -> None:
    for section in SECTIONS:
        for path, item in section.paths.items():
            for method, operation in item.items():
                if method != "parameters":
                    assert set(operation["tags"]) <= set(section.tags), (path, method)


def test_every_reference_names_a_schema_or_answer() -> None:
    doc = openapi.document()
    text = repr(doc)
    for kind in ("schemas", "responses"):
        prefix = f"#/components/{kind}/"
        named = {part.split("'")[0] for part in text.split(prefix)[1:]}
        assert named <= set(doc["components"][kind]), kind
