"""Which requests reach the app at all: the Host a request names, the Origin it comes from, and the type
of a POST body. A plain ASGI middleware; each refusal is one JSON message and costs no parsing.

- Host (DNS rebinding): when the server is bound to a loopback address, a request must name it in its
  Host header (127.0.0.1, localhost or [::1], with the port). A web page whose name an attacker points
  at 127.0.0.1 sends its own name instead, and gets 403. Bound to another address (e.g. 0.0.0.0 to be
  reached from a phone), the names it is reached by are not known, so Host is not checked.
- Origin (cross-site requests): a browser names the page that makes a request in Origin. One from the
  server's own page (scheme://Host) or from an origin given to --allow_origin is served (the latter with
  CORS headers); any other gets 403 before the app sees it, so a page someone visits cannot drive the
  server. Clients that are not browsers (curl, scripts) send no Origin.
- POST bodies must be Content-Type application/json (else 415): a browser sends a cross-site POST without
  asking first only for form and text types, so this also keeps such POSTs off the endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import JSONResponse

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def host_names(bound_host: str | None, port: int | None) -> frozenset[str] | None:
    """The Host header values a server bound to bound_host:port answers; None when any is accepted."""
    if bound_host not in LOOPBACK_HOSTS or port is None:
        return None
    names = {f"{name}:{port}" for name in _LOOPBACK_NAMES}
    if port == 80:
        names.update(_LOOPBACK_NAMES)
    return frozenset(names)


class RequestGuard:
    """Refuses requests to other hosts (403), from other origins (403) and POSTs that are not JSON (415)."""

    def __init__(self, app, hosts: frozenset[str] | None, allow_origins: Sequence[str] = ()):
        self.app = app
        self.hosts = hosts
        self.allow_origins = frozenset(allow_origins)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope, Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message = refusal
        await JSONResponse({"error": message}, status_code=status)(scope, receive, send)

    def refusal(self, scope, headers: Headers) -> tuple[int, str] | None:
        """(status, one-line message) for a request that must not reach the app, else None."""
        host = headers.get("host", "")
        if self.hosts is not None and host.lower() not in self.hosts:
            return 403, (f"Host {host[:80]!r} is not this server's address; it answers only requests to "
                         f"{', '.join(sorted(self.hosts))}")
        origin = headers.get("origin")
        own_origin = f"{scope['scheme']}://{host}".lower()
        if origin is not None and origin.lower() != own_origin and origin not in self.allow_origins:
            return 403, (f"cross-origin request from {origin[:80]!r} refused; start serve with "
                         "--allow_origin=<that origin> to allow it")
        if scope["method"] == "POST":
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if media_type != "application/json":
                return 415, (f"POST bodies must be sent as Content-Type: application/json, not "
                             f"{media_type[:80] or 'none'}")
        return None
