"""Cross-site writes: a browser page from another origin may not change anything.

A form post or a ``fetch`` with a simple content type needs no CORS preflight, so CORS alone
would let any web page upload to (or delete from) a gateway its visitor can reach. Browsers
send ``Origin`` on such requests; a write whose Origin is neither the gateway's own nor one of
the configured CORS origins is refused before it reaches a route. Clients that are not
browsers send no Origin and are not affected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from services.gateway.limits import send_error

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` names the host (and port) the request was sent to."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


class OriginCheckMiddleware:
    """403 forbidden_origin for a state-changing request from a foreign Origin."""

    def __init__(self, app: ASGIApp, allowed_origins: list[str]) -> None:
        self.app = app
        self.allowed = frozenset(origin.rstrip("/").lower() for origin in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in STATE_CHANGING:
            origin = _header(scope, b"origin")
            if origin is not None and not self._allowed(origin, _header(scope, b"host") or ""):
                await send_error(
                    send,
                    403,
                    f"requests from origin {origin!r} may not change anything here: add it to "
                    "ZHIKU_CORS_ORIGINS to allow it",
                    "forbidden_origin",
                )
                return
        await self.app(scope, receive, send)

    def _allowed(self, origin: str, host: str) -> bool:
        if "*" in self.allowed or origin.rstrip("/").lower() in self.allowed:
            return True
        return same_origin(origin, host)
