"""Every JSON answer of the API checked against the service's own ``/openapi.json``.

``CheckedClient`` (conftest.py) hands each answer to ``Contract.check``: the answer's operation is
found by its method and path (a template such as ``/v1/licenses/{id}`` matches ``/v1/licenses/lic_x``,
literal segments first), and a JSON answer must match the schema the document gives for that
operation and status. An answer with a status the operation does not document is a failure, and so
is a JSON answer the document gives no JSON schema, or another body of a type it does not list for
that status (a zip, a file). Paths the document does not describe (the portal's pages, a path that
is no route), methods a route does not have, and HEAD answers (no body) are not checked here.

Schemathesis (test_schemathesis.py) checks the answers to requests it generates; this checks the
answers to every request the other web tests make, the states they set up included.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import jsonschema
import referencing
import referencing.jsonschema

__all__ = ["Contract"]

_DOCUMENT = "urn:offline-service:openapi"
_METHODS = ("get", "put", "post", "delete", "patch", "options", "trace")


def _pointer(*parts: str) -> str:
    """A JSON pointer (RFC 6901) to ``parts``."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


@dataclass
class Contract:
    """The operations of one OpenAPI document, ready to check answers against."""

    document: dict[str, Any]
    _templates: list[tuple[re.Pattern[str], str]] = field(init=False)
    _registry: referencing.Registry[Any] = field(init=False)
    _validators: dict[str, Any] = field(init=False, default_factory=dict)  # by answer pointer

    def __post_init__(self) -> None:
        resource = referencing.Resource.from_contents(
            self.document, default_specification=referencing.jsonschema.DRAFT202012
        )
        self._registry = referencing.Registry().with_resource(_DOCUMENT, resource)
        templates = []
        for template in self.document["paths"]:
            segments = template.strip("/").split("/")
            pattern = "/" + "/".join("[^/]+" if s.startswith("{") else re.escape(s) for s in segments)
            literal = sum(not s.startswith("{") for s in segments)
            templates.append((literal, re.compile(pattern), template))
        # /v1/activations/offline-activate before a /v1/activations/{id}, were there one.
        self._templates = [(p, t) for _, p, t in sorted(templates, key=lambda x: -x[0])]

    def template(self, path: str) -> str | None:
        """The document's path template that ``path`` is an instance of, if any."""
        return next((t for p, t in self._templates if p.fullmatch(path)), None)

    def check(self, response: httpx.Response) -> None:
        """Fail unless ``response`` is what the document says its operation answers (see module doc)."""
        method = response.request.method.lower()
        template = self.template(response.request.url.path)
        if template is None or method == "head" or method not in _METHODS:
            return
        if method not in self.document["paths"][template]:
            return  # a method the route does not have: its 405 is checked by the generic checks
        status = str(response.status_code)
        where = f"{method.upper()} {template} answered {status}"
        pointer, answer = self._answer(template, method, status, where)
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if media != "application/json":
            # Not JSON (a zip, a file, nothing): of a type the document gives for this status.
            documented = sorted(answer.get("content", {}))
            assert media in documented or not (media or response.content), (
                f"{where} with {media or 'no type'}, documented: {documented or 'no body'}"
            )
            return
        errors = sorted(
            self._validator(pointer, answer, where).iter_errors(json.loads(response.content)),
            key=lambda e: list(e.path),
        )
        assert not errors, f"{where}, not as documented: " + "; ".join(
            f"{'/'.join(map(str, e.path)) or '(top)'}: {e.message}" for e in errors[:5]
        )

    def _answer(self, template: str, method: str, status: str, where: str) -> tuple[str, dict[str, Any]]:
        """The pointer to, and the contents of, the documented answer (its $ref followed)."""
        responses = self.document["paths"][template][method]["responses"]
        assert status in responses, f"{where}: the document has no {status} for it"
        pointer, answer = _pointer("paths", template, method, "responses", status), responses[status]
        while "$ref" in answer:  # "#/components/responses/NotFound"
            pointer = answer["$ref"].removeprefix("#")
            answer = self._registry.resolver().lookup(_DOCUMENT + "#" + pointer).contents
        return pointer, answer

    def _validator(self, pointer: str, answer: dict[str, Any], where: str) -> Any:
        if pointer not in self._validators:
            schema = answer.get("content", {}).get("application/json", {}).get("schema")
            assert schema is not None, f"{where}: a JSON answer, but the document gives it no JSON schema"
            ref = _DOCUMENT + "#" + pointer + _pointer("content", "application/json", "schema")
            self._validators[pointer] = jsonschema.Draft202012Validator(
                {"$ref": ref}, registry=self._registry
            )
        return self._validators[pointer]
