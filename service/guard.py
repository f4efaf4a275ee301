"""ASGI middleware in front of the service: routes, an API key, the request body, and BentoML's metrics.

Everything here is answered before BentoML parses a body, with the service's one error shape
``{"error": "<summary>", "detail": [{"type", "loc", "msg"}, …]}``:

- 404 for a path the service does not serve, before BentoML's request metrics see it
  (``bound_request_metrics``): those metrics label a series by the raw path, so 10,000 made-up paths
  would otherwise be 10,000 series in every worker's memory;
- 401 when ``TOLLGATE_API_KEY`` is set and the request does not carry it (health, readiness, metrics
  and the docs stay open);
- for a POST to an API: 415 unless the body is JSON (or, on a bulk path, one of its binary types), 413
  above ``TOLLGATE_MAX_BODY_BYTES`` (declared or chunked), 408 when the body stops arriving (a
  Content-Length longer than what is sent), 400 for a
  body that is not JSON a record parser can take (broken syntax, NUL bytes, not UTF-8, nested deeper
  than any record, a number beyond a float). The body is read once here and handed on unchanged; a bulk
  path (``/predict_batch``) parses its own body once, with ``parse_json``'s rules and messages.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

OPEN_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz", "/metrics", "/docs.json"})
JSON_MEDIA_TYPES = ("application/json", "text/plain")  # and any type ending in +json; none sent means JSON
MAX_JSON_DEPTH = 32  # a batch is an array of objects of scalars (depth 2); nothing legitimate comes near

ERROR_SCHEMA = {
    "type": "object",
    "title": "Error",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "title": "Summary"},
        "detail": {
            "type": "array",
            "title": "Every problem, each with where it is",
            "items": {
                "type": "object",
                "required": ["type", "loc", "msg"],
                "properties": {
                    "type": {"type": "string"},
                    "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                    "msg": {"type": "string"},
                },
            },
        },
    },
}
"""The one error body every 4xx (ours and BentoML's validation errors) has; published in /docs.json."""

GUARD_RESPONSES = {
    "401": "missing or wrong API key",
    "408": "the request body stopped arriving",
    "413": "request body too large",
    "415": "the body is not JSON",
}


@dataclass(frozen=True)
class Routes:
    """The paths the service answers: exact paths (APIs, metadata, health, docs) and the docs' static files."""

    api: frozenset[str]
    exact: frozenset[str]
    static: frozenset[str]

    @classmethod
    def of(cls, api: Iterable[str], other: Iterable[str], static_folder: Path | None = None) -> Routes:
        static = (
            frozenset(f"/static_content/{path.name}" for path in static_folder.iterdir())
            if static_folder is not None and static_folder.is_dir()
            else frozenset()
        )
        api = frozenset(api)
        return cls(api=api, exact=api | frozenset(other) | OPEN_PATHS, static=static)

    def known(self, path: str) -> bool:
        return path in self.exact or path in self.static

    def is_open(self, path: str) -> bool:
        return path in OPEN_PATHS or path in self.static


class RequestGuard:
    def __init__(
        self,
        app: Any,
        routes: Routes,
        api_key: str | None = None,
        max_body_bytes: int = 8 * 1024 * 1024,
        body_timeout_seconds: float = 15.0,
        info: dict | None = None,
        bulk: dict[str, frozenset[str]] | None = None,
    ):
        self.app = app
        self.bulk = bulk or {}
        self.routes = routes
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self.info = info
        secured = routes.exact - OPEN_PATHS if api_key else frozenset()
        self.secured = frozenset(secured)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if not self.routes.known(path):
            return await reply(send, 404, not_found(path, self.routes))
        headers = dict(scope.get("headers") or [])
        if self.api_key is not None and not self.routes.is_open(path) and not self._authorised(headers):
            return await reply(
                send,
                401,
                problem(
                    "missing or wrong API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
                    "unauthorized",
                    ("header", "X-API-Key"),
                ),
            )
        if path == "/docs.json":
            return await self.app(scope, receive, _publishing_error_schema(send, self.info, self.secured))
        if path not in self.routes.api or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        media_type = headers.get(b"content-type", b"application/json").split(b";")[0].strip().decode("latin-1")
        bulk_types = self.bulk.get(path, frozenset())
        if not (is_json(media_type) or media_type.lower() in bulk_types):
            accepted = " or ".join(f"'Content-Type: {kind}'" for kind in ("application/json", *sorted(bulk_types)))
            return await reply(
                send,
                415,
                problem(
                    f"Content-Type {media_type!r} is not accepted: send the body as {accepted}",
                    "unsupported_media_type",
                    ("header", "Content-Type"),
                ),
            )
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await reply(send, 400, problem("Content-Length is not a number", "content_length"))
            if int(declared) > self.max_body_bytes:
                return await reply(send, 413, self._too_large())
        body = await self._read_body(receive)
        if isinstance(body, tuple):
            return await reply(send, *body)
        if path not in self.bulk and (trouble := json_problem(body)) is not None:  # bulk paths parse their own
            return await reply(send, 400, problem(f"the body is not usable JSON: {trouble}", "json_invalid", ()))
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # the disconnect, when it comes

        return await self.app(scope, replay, send)

    async def _read_body(self, receive: Callable) -> bytes | tuple[int, dict]:
        """The whole body, or the error to answer: 413 past the limit, 408 when it stops arriving (no chunk for
        ``body_timeout_seconds``: one deadline moved on at each chunk, not a timer task per chunk)."""
        chunks, size = [], 0
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.body_timeout_seconds) as deadline:
                while True:
                    message = await receive()
                    deadline.reschedule(loop.time() + self.body_timeout_seconds)
                    if message["type"] != "http.request":
                        return 400, problem("the client disconnected before the body was complete", "body_incomplete")
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        return 413, self._too_large()
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            return 408, problem(
                f"the request body stopped arriving ({size:,} bytes in {self.body_timeout_seconds:g} s); "
                "is Content-Length right?",
                "body_timeout",
            )

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        offered = headers.get(b"x-api-key")
        authorization = headers.get(b"authorization", b"")
        if offered is None and authorization[:7].lower() == b"bearer ":
            offered = authorization[7:].strip()
        return offered is not None and hmac.compare_digest(offered, self.api_key or b"")

    def _too_large(self) -> dict:
        return problem(
            f"request body is larger than {self.max_body_bytes:,} bytes; send fewer records per request", "too_large"
        )


def is_json(media_type: str) -> bool:
    """Whether a Content-Type's media type says JSON (as every API takes)."""
    kind = media_type.lower()
    return kind in JSON_MEDIA_TYPES or kind.endswith("+json")


def problem(message: str, kind: str, loc: tuple[str, ...] = ()) -> dict:
    """One error body in the service's shape, with a single problem."""
    return {"error": message, "detail": [{"type": kind, "loc": list(loc), "msg": message}]}


def not_found(path: str, routes: Routes) -> dict:
    shown = path if len(path) <= 80 else path[:77] + "..."
    return problem(f"no such path {shown!r}; the service answers {sorted(routes.exact)}", "not_found", ("path",))


def json_problem(body: bytes) -> str | None:
    """Why ``body`` cannot be handed to a record parser, or None when it can (an empty body can: it
    reads as ``{}``, and the schema then names every missing field)."""
    return parse_json(body)[1]


def parse_json(body: bytes, limit_depth: bool = True) -> tuple[Any, str | None]:
    """(the parsed body, None), or (None, why it cannot be handed to a record parser): broken syntax, not UTF-8,
    nested deeper than ``MAX_JSON_DEPTH`` (unless not ``limit_depth``: a reader that never recurses into
    values), a number beyond a float. An empty body reads as ``{}``."""
    if not body.strip():
        return {}, None
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as fast_error:
        # orjson refuses NaN/Infinity literals, which the schema answers field by field; the standard
        # parser takes them (and refuses the rest with its own message).
        try:
            parsed = json.loads(body)
        except RecursionError:
            return None, f"nested deeper than {MAX_JSON_DEPTH} levels"
        except UnicodeDecodeError as error:
            return None, f"not UTF-8 text ({error.reason} at byte {error.start})"
        except json.JSONDecodeError:
            return None, str(fast_error)
        except ValueError:  # the standard parser's 4,300-digit limit on integers
            return None, "a number has more digits than any field takes"
    if limit_depth and body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _depth(parsed) > MAX_JSON_DEPTH:
        return None, f"nested deeper than {MAX_JSON_DEPTH} levels"
    return parsed, None


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in a parsed JSON value (a scalar is 0; counting stops past
    ``MAX_JSON_DEPTH``), level by level rather than by recursion."""
    depth, level = 0, [value] if isinstance(value, (dict, list)) else []
    while level and depth <= MAX_JSON_DEPTH:
        depth += 1
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
    return depth


def _publishing_error_schema(
    send: Callable, info: dict | None, secured: frozenset[str]
) -> Callable[[dict], Awaitable[None]]:
    """Wrap ``send`` so the OpenAPI document BentoML writes states the error body the service really sends
    (BentoML documents ``detail`` as a string) and the statuses the guard answers."""
    start: dict | None = None
    chunks: list[bytes] = []

    async def publish(message: dict) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            start = message
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(chunks)
        assert start is not None
        if start["status"] == 200:
            body = json.dumps(error_schema_published(json.loads(body), info, secured)).encode()
        headers = [(key, value) for key, value in start["headers"] if key.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return publish


def error_schema_published(document: dict, info: dict | None = None, secured: frozenset[str] = frozenset()) -> dict:
    """The OpenAPI ``document`` with BentoML's error schemas replaced by ``ERROR_SCHEMA``, the guard's
    statuses added to every API operation, the service's own ``info`` (title, version, description) in
    place of BentoML's, and the API-key scheme on the ``secured`` paths."""
    if info:
        document["info"] = {**document.get("info", {}), **info}
    if secured:
        document.setdefault("components", {})["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer"},
        }
        for path in secured & document.get("paths", {}).keys():
            for operation in document["paths"][path].values():
                operation["security"] = [{"apiKey": []}, {"bearer": []}]
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas[name] = {**ERROR_SCHEMA, "title": name}
    schemas["Error"] = ERROR_SCHEMA
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in GUARD_RESPONSES.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                )
    return document


async def reply(send: Callable, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="tollgate"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def bound_request_metrics(routes: Routes, count_unknown: Callable[[], None] = lambda: None) -> None:
    """Answer unknown paths with 404 before BentoML's request-metrics middleware makes a series of them.

    That middleware is the outermost layer of BentoML's app (``add_asgi_middleware`` puts ours inside
    it) and labels every series by the raw path; it is wrapped here, in each worker, before the app is
    built; ``count_unknown`` counts them in one series. Requires BentoML 1.4's
    ``RunnerTrafficMetricsMiddleware`` (pinned); a missing class fails the
    service's start rather than letting the series grow."""
    from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware

    original = RunnerTrafficMetricsMiddleware.__call__
    if getattr(original, "tollgate_routes", None) == routes:
        return
    original = getattr(original, "__wrapped__", original)

    async def answer_unknown_paths_first(self: Any, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http" and not routes.known(scope.get("path", "")):
            count_unknown()
            return await reply(send, 404, not_found(scope.get("path", ""), routes))
        return await original(self, scope, receive, send)

    answer_unknown_paths_first.__wrapped__ = original  # type: ignore[attr-defined]
    answer_unknown_paths_first.tollgate_routes = routes  # type: ignore[attr-defined]
    RunnerTrafficMetricsMiddleware.__call__ = answer_unknown_paths_first  # type: ignore[method-assign]
