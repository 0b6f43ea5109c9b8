"""The server's log lines: a request id on every line logged while a request is answered, secrets kept
out, and text or one JSON object per line (``serve --log-format json``; docs/OBSERVABILITY.md)."""

from __future__ import annotations

import contextvars
import copy
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "RedactSecrets",
    "RequestId",
    "RequestIdFilter",
    "current_request_id",
    "log_config",
    "redact",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = "X-Request-ID"
# An id a client or proxy sends is kept if it is short and plain (it lands in every log line).
_GOOD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# Each request is answered in a task of its own, which has its own copy of this variable: the id
# set by RequestId is seen by that request's code only (and by uvicorn's access line, logged from
# the same task), never by another request's.
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being answered in this task, if any."""
    return _request_id.get()


class RequestId:
    """Gives each HTTP request an id: a well-formed incoming X-Request-ID, else a new one. Set for
    the logs of the request and returned in the X-Request-ID response header (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                text = value.decode("latin-1")
                request_id = text if _GOOD_ID.fullmatch(text) else None
                break
        request_id = request_id or secrets.token_hex(16)
        # Not reset on the way out: the handler of an unexpected error logs, and answers, outside
        # every middleware (Starlette's ServerErrorMiddleware), and the task ends with the request.
        _request_id.set(request_id)
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)


# -- keeping secrets out --------------------------------------------------------------------------

_LICENSE_CHAR = "[0-9A-HJKMNP-TV-Z]"
_SECRETS = (
    # Query parameters that carry secrets: set-password links, and any password or key in a URL.
    (
        re.compile(r"([?&](?:token|password|key|license_key|secret|access_token)=)[^&\s\"']*", re.I),
        r"\1[redacted]",
    ),
    # A license key anywhere (the Licenses list's search puts a typed key in the query string).
    (re.compile(rf"\b{_LICENSE_CHAR}{{5}}(?:-{_LICENSE_CHAR}{{5}}){{4}}\b", re.I), "[license key]"),
    (re.compile(rf"\b{_LICENSE_CHAR}{{25}}\b", re.I), "[license key]"),
    # Credentials a message might quote: a bearer token or a cookie header's value.
    (re.compile(r"(bearer\s+)[^\s\"',]+", re.I), r"\1[redacted]"),
    (re.compile(r"((?:set-)?cookie[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n]+", re.I), r"\1[redacted]"),
)


def redact(text: str) -> str:
    """``text`` with secrets replaced: secret query parameters, license keys, bearer tokens, cookies."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """Redacts every record a handler emits, in its message and its arguments (see ``redact``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record (``record.request_id``, "-" outside requests)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, and the
    traceback as ``exception``; uvicorn's access lines also as fields (client, method, path, status)."""

    def format(self, record: logging.LogRecord) -> str:
        created = time.gmtime(record.created)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", created) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or _request_id.get()
        if request_id and request_id != "-":
            line["request_id"] = request_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, http_version, status = record.args
            line.update(client=client, method=method, path=path, http_version=http_version, status=status)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        return json.dumps(line, ensure_ascii=False, default=str)


_TEXT_ACCESS_FORMAT = (
    '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s [request %(request_id)s]'
)


def log_config(level: str, log_format: str, base: dict[str, Any]) -> dict[str, Any]:
    """uvicorn's logging configuration ``base`` (``uvicorn.config.LOGGING_CONFIG``) with the request
    id and the redaction on every handler, the service's loggers on the same stream, and each line
    as text or JSON."""
    config = copy.deepcopy(base)
    config["filters"] = {
        "request_id": {"()": "offline_service.web.logs.RequestIdFilter"},
        "redact": {"()": "offline_service.web.logs.RedactSecrets"},
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["request_id", "redact"]
    if log_format == "json":
        config["formatters"] = {"json": {"()": "offline_service.web.logs.JsonFormatter"}}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
    else:
        config["formatters"]["access"]["fmt"] = _TEXT_ACCESS_FORMAT
    config["loggers"]["offline_service"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config
