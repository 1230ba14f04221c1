"""Who may ask: an optional bearer key, browser origins (CORS), and a warning when the API is open to a network.

The key guards the corpus, so every route that reveals any of it needs it. The probes do not:
an orchestrator must be able to ask whether the process lives without holding the key, and
they reveal nothing but a build name.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import error_response

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/livez", "/readyz"})


def _digest(key: bytes) -> bytes:
    # Comparing fixed-length digests keeps the comparison's time independent of the key's length too.
    return hashlib.sha256(key).digest()


class BearerKey:
    """Pure ASGI middleware: ``Authorization: Bearer <key>`` or 401, compared in constant time."""

    def __init__(self, app: ASGIApp, key: str, open_paths: frozenset[str] = OPEN_PATHS) -> None:
        self.app = app
        self.key = _digest(key.encode("utf-8"))
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.open_paths or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)  # OPTIONS: a CORS preflight never carries credentials
            return
        header = dict(scope.get("headers", ())).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() == b"bearer" and hmac.compare_digest(_digest(token.strip()), self.key):
            await self.app(scope, receive, send)
            return
        message = "this server needs an API key: send the header Authorization: Bearer <key>" if not header else "wrong API key"
        await error_response(401, message, headers={"WWW-Authenticate": 'Bearer realm="cited"'})(scope, receive, send)


class Cors(CORSMiddleware):
    """Starlette's CORS, with a refused preflight in the API's JSON error shape instead of plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = error_response(response.status_code, f"CORS preflight refused: {bytes(response.body).decode('utf-8', 'replace')}")
        refused.headers.update({k: v for k, v in response.headers.items() if k.lower().startswith(("vary", "access-control"))})
        return refused


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def warn_if_open(host: str, has_key: bool) -> bool:
    """Log a warning when anyone on the network could query the corpus; True if it did."""
    if has_key or is_loopback(host):
        return False
    log.warning("serving on %s without an api_key: anyone who can reach this port can read the corpus; set CITED_API_KEY", host)
    return True
