"""ASGI middleware in front of the service: an API key and a request-size limit.

Both are answered before any body is parsed: 401 when ``TOLLGATE_API_KEY`` is set and the request
does not carry it (health, readiness, metrics and the docs stay open), 413 when the body is larger
than ``TOLLGATE_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import hmac
import json

OPEN_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/schema.json"})
OPEN_PREFIXES = ("/static_content/", "/assets/")


class RequestGuard:
    def __init__(self, app, api_key: str | None = None, max_body_bytes: int = 8 * 1024 * 1024):
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        is_open = path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
        if self.api_key is not None and not is_open and not self._authorised(headers):
            return await _reply(
                send,
                401,
                "missing or wrong API key: send it as 'X-API-Key: <key>' or 'Authorization: Bearer <key>'",
            )
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _reply(send, 400, "Content-Length is not a number")
            if int(declared) > self.max_body_bytes:
                return await _reply(send, 413, self._too_large())
            return await self.app(scope, receive, send)
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            # No length declared (chunked): read the body here, counting, then replay it.
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    break
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    return await _reply(send, 413, self._too_large())
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            return await self.app(scope, replay, send)
        return await self.app(scope, receive, send)

    def _authorised(self, headers: dict[bytes, bytes]) -> bool:
        offered = headers.get(b"x-api-key")
        authorization = headers.get(b"authorization", b"")
        if offered is None and authorization[:7].lower() == b"bearer ":
            offered = authorization[7:].strip()
        return offered is not None and hmac.compare_digest(offered, self.api_key)

    def _too_large(self) -> str:
        return f"request body is larger than {self.max_body_bytes:,} bytes; send fewer records per request"


async def _reply(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="tollgate"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
