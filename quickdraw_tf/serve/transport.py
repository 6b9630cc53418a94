"""The HTTP connection layer under the app: uvicorn's h11 protocol with a header timeout and a cap on
connections, which uvicorn itself does not offer (a client sending half a request line, or nothing at
all, would otherwise hold its connection open for good).

- Header timeout: a request's headers must arrive complete within `header_timeout_s` of its first byte
  (of the connection, for the first request). Past it the connection gets 408 and is closed; one that
  sent nothing is closed without an answer (browsers open spare connections they may never use).
  Between requests, uvicorn's keep-alive timeout closes idle connections as before.
- Connection cap: beyond `max_connections` open connections, a new one is answered 503 once its request
  headers are in, and closed; it never reaches the app.
- The body's own timeout is the app's (schemas.read_body), since the app reads the body.
Every answer given here is one JSON object, like the app's.
"""

from __future__ import annotations

import asyncio
import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 100
KEEP_ALIVE_S = 5
_HEADERS_END = b"\r\n\r\n"


def json_response(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, its body {"error": message}."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode("ascii") + body


class GuardedH11Protocol(H11Protocol):
    """H11Protocol with a header timeout and a connection cap (class attributes: see `protocol`)."""

    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S
    max_connections = DEFAULT_MAX_CONNECTIONS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._received_any = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._over_capacity = len(self.connections) > self.max_connections
        self._held = b""  # what an over-capacity connection sent, until its headers are in
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._received_any = True
        if self._over_capacity:
            seen = self._held + data
            if _HEADERS_END in seen:
                self._refuse(503, "Service Unavailable",
                             f"the server has {self.max_connections} connections open; try again shortly")
            self._held = seen[-len(_HEADERS_END):]
            return
        if self.conn.their_state is h11.IDLE and self._header_timer is None:
            self._arm_header_timer()  # the first byte of a new request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the request line and headers are in
            self._cancel_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if not self._received_any:
            self.transport.close()
            return
        self._refuse(408, "Request Timeout",
                     f"the request headers did not arrive within {self.header_timeout_s:g} s")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._cancel_header_timer()
        self.transport.write(json_response(status, reason, message))
        self.transport.close()


def protocol(header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    """A GuardedH11Protocol class with these limits (uvicorn builds one instance per connection)."""
    if header_timeout_s <= 0 or max_connections < 1:
        raise ValueError(f"header_timeout_s must be > 0 and max_connections >= 1, got {header_timeout_s} "
                         f"and {max_connections}")
    return type("GuardedH11Protocol", (GuardedH11Protocol,),
                {"header_timeout_s": header_timeout_s, "max_connections": max_connections})


def server_config(app, host: str, port: int, header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
                  max_connections: int = DEFAULT_MAX_CONNECTIONS, **uvicorn_options) -> uvicorn.Config:
    """uvicorn's Config for `app` on host:port with the guarded protocol."""
    return uvicorn.Config(app, host=host, port=port, http=protocol(header_timeout_s, max_connections),
                          timeout_keep_alive=KEEP_ALIVE_S, **uvicorn_options)
