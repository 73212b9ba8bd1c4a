"""What every page of the agent's web server is sent with, and who may see the board and reports.

- `health.token` set: everything but /health and /metrics (which `edge-agent status` and Prometheus
  read) asks for it, as HTTP basic auth (any user name, the token as password: a wall TV's browser
  asks once and remembers) or `Authorization: Bearer <token>`. Compared in constant time.
- Headers: a Content-Security-Policy that allows scripts, styles, data and fonts from the agent
  only (no inline script, no other host), no framing, no MIME sniffing, no referrer; reports and
  figures `Cache-Control: no-store` (a shared plant PC keeps no copy), static assets an hour.
- The server only answers GET (and HEAD): nothing on these pages can change anything.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

OPEN_PATHS = frozenset({"/health", "/metrics"})
STATIC_PREFIX = "/static/"
REALM = "edge-agent"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
STATIC_MAX_AGE_S = 3600

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def presented_token(header: str | None) -> str | None:
    """The token in an Authorization header: Bearer, or basic auth's password."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def guard(token: str | None) -> Middleware:
    expected = token.encode() if token else None

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is not None and request.path not in OPEN_PATHS:
            given = presented_token(request.headers.get("Authorization"))
            if given is None or not hmac.compare_digest(given.encode(), expected):
                raise web.HTTPUnauthorized(
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"', **HEADERS},
                    text="401: the board and reports ask for health.token\n",
                )
        try:
            response = await handler(request)
        except web.HTTPException as error:
            error.headers.update(HEADERS)
            raise
        response.headers.update(HEADERS)
        if request.path.startswith(STATIC_PREFIX):
            response.headers["Cache-Control"] = f"max-age={STATIC_MAX_AGE_S}"
        elif request.path not in OPEN_PATHS:
            response.headers["Cache-Control"] = "no-store"
        return response

    return middleware
