"""Run the app on uvicorn (httptools, uvloop), hardened against slow, idle and surplus connections.

uvicorn 0.54 alone, measured by the hardening issue's probe: no header or body timeout (a
connection sending a byte now and then stays open forever), no connection limit, a flood of
accept errors in the log once file descriptors run out, malformed requests answered in
text/plain, and idle keep-alive connections closed with a reset on SIGTERM. What this module adds,
all from the settings ``header_timeout_s``, ``body_timeout_s``, ``keep_alive_s``,
``max_connections`` and ``drain_s``:

- **Head timeout.** A connection must deliver a complete request head within ``header_timeout_s``
  of connecting or of its previous response, else it is closed at once (no answer: it has asked
  nothing yet; no lingering close: such connections are what exhausts descriptors). A head larger
  than ``HEAD_MAX_BYTES`` gets 431.
- **Body timeout.** A body not in full within ``body_timeout_s`` of its head gets 408 and the
  connection is closed. Idle keep-alive connections close after ``keep_alive_s`` (uvicorn's own
  timer), or after ``header_timeout_s`` if that is shorter.
- **Connection limit.** A connection that finds ``max_connections`` already open when it connects
  has its request answered 503 with Retry-After, and is closed; the ones open before it are
  served. (uvicorn's ``limit_concurrency`` answers text/plain without Retry-After and counts the
  new connection itself, so a limit of N serves N - 1.) At start the soft open-file limit is
  raised toward the hard one if it is below what ``max_connections`` needs; if it cannot be, the
  limit becomes what fits, and the log says so.
- **Framing.** Content-Length with Transfer-Encoding, a duplicate Content-Length, or a
  Transfer-Encoding other than ``chunked`` (or any on HTTP/1.0) gets 400 and the connection is
  closed (RFC 9112 §6.1-6.3: a message whose length is ambiguous cannot be read safely).
- **One error shape.** Every response the server layer writes itself (400, 408, 431, 503) is the
  app's JSON error body (``service.errors.error_response``), never text/plain.
- **Lingering close.** When the server closes a connection it half-closes (FIN after the
  response) and reads and drops what the client still sends until the client closes or
  ``LINGER_S`` passes: closing a socket with unread data sends RST, which can destroy the
  response still in flight (RFC 9112 §9.6).
- **Drain on SIGTERM.** Stop accepting; every request already received, including one sitting
  unread on an idle keep-alive connection, is answered with ``Connection: close``; an idle
  connection is closed once it stays idle for ``DRAIN_IDLE_GRACE_S``; the process exits within
  ``drain_s`` (requests still running then get uvicorn's 500). /readyz answers 503 meanwhile.
- **Accept errors** (EMFILE with the asyncio loop: it logs one per queued connection per loop
  turn) are logged once per ``ACCEPT_LOG_INTERVAL_S`` with the count of those left out.

The protocol subclasses uvicorn's ``HttpToolsProtocol`` (passed as ``Config(http=...)``, the
documented hook) and relies on its per-connection attributes; pyproject pins uvicorn's minor
version for that reason, and tests/test_http_server.py checks each behaviour on real sockets.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import time
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.errors import error_response
from service.headers import HEADERS as SECURITY_HEADERS
from service.settings import Settings

log = logging.getLogger(__name__)

RESERVED_FDS = 128  # descriptors besides connections: 16 open in an idle `cited serve` (measured), the rest for rebuilds and logs
HEAD_MAX_BYTES = 65_536  # a request line and headers larger than this get 431 (h11's default limit is 16 KiB)
LINGER_S = 1.0  # how long a half-closed connection waits for the client's own close before closing outright
DRAIN_IDLE_GRACE_S = 1.0  # on drain, an idle keep-alive connection gets this long to send the request it may be sending
ACCEPT_LOG_INTERVAL_S = 10.0
ACCEPT_ERROR = "socket.accept() out of system resource"  # asyncio's message (BaseSelectorEventLoop._accept_connection)
RETRY_AFTER_S = 1  # what a 503 for too many connections tells the client


@dataclass
class Limits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(settings.header_timeout_s, settings.body_timeout_s, settings.max_connections)


@dataclass
class Counters:
    """What the connections of one server did; logged when it stops."""

    received: int = 0  # request heads accepted for an answer (the app's or the server's own 503/408)
    answered: int = 0  # of those, responses written in full
    busy: int = 0  # 503: more than max_connections open
    malformed: int = 0  # 400 or 431, never reached the app
    head_timeouts: int = 0
    body_timeouts: int = 0


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def framing_problem(headers: list[tuple[bytes, bytes]], http_version: str) -> str | None:
    """Why a request's body length is ambiguous (RFC 9112 §6.1-6.3), or None.

    httptools (llhttp) refuses most of these itself; checking here too names the problem in the
    400 and keeps a request llhttp refuses only after its head (``Transfer-Encoding: gzip``) from
    ever reaching the app.
    """
    lengths = [value.strip() for name, value in headers if name == b"content-length"]
    codings = [c.strip().lower() for name, value in headers if name == b"transfer-encoding" for c in value.split(b",")]
    if lengths and codings:
        return "ambiguous framing: both Content-Length and Transfer-Encoding"
    if len(set(lengths)) > 1:
        return "ambiguous framing: Content-Length given more than once with different values"
    if codings and http_version == "1.0":
        return "invalid Transfer-Encoding: not allowed in HTTP/1.0"
    if codings and codings != [b"chunked"]:
        return "invalid Transfer-Encoding: only chunked is accepted"
    return None


class LingeringTransport:
    """A connection's transport whose ``close()`` half-closes and drains (see the module docstring).

    Everything else is the wrapped transport's; uvicorn's protocol code uses it unchanged.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self.lingering = False
        self._timer: TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def write(self, data: bytes) -> None:
        if not self.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self.is_closing():
            return
        if not self._transport.can_write_eof():
            self._transport.close()
            return
        self.lingering = True
        self._transport.write_eof()  # FIN once the buffered response is sent
        self._transport.resume_reading()  # keep reading (and dropping) so unread data never turns the close into RST
        self._timer = self._loop.call_later(LINGER_S, self._transport.close)

    def close_now(self) -> None:
        """For a client that is too slow or hostile to deserve the lingering close."""
        self.lingering = True
        self._transport.close()

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class HardenedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the timeouts, limit, framing checks and drain above."""

    def __init__(self, config: uvicorn.Config, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None, *, limits: Limits, counters: Counters) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits
        self.counters = counters
        self._head_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None
        self._drain_timer: TimerHandle | None = None
        self._in_head = False  # some bytes of a request head parsed, not all of it
        self._head_bytes = 0  # bytes received since the last complete head (an upper bound on the next head's size)
        self._awaiting_head = True
        self._draining = False
        self._surplus = False

    # connection lifetime

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(LingeringTransport(transport, self.loop))  # type: ignore[arg-type]
        # Decided once, at connect: the connections already open keep being served, the surplus ones are refused.
        self._surplus = len(self.connections) > self.limits.max_connections
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._body_timer, self._drain_timer):
            if timer is not None:
                timer.cancel()
        self.transport.cancel_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # lingering close: drop whatever the client still sends
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            problem = exc.__context__  # what our callback (or uvicorn's) raised
            if isinstance(problem, _BadRequest):
                self._refuse(problem.status, str(problem))
            elif isinstance(problem, (httptools.HttpParserError, UnicodeDecodeError)):  # e.g. an invalid URL
                self._refuse(400, f"malformed HTTP request: {problem}")
            else:  # a bug, not the client's doing: keep the traceback
                self.logger.error("error while parsing a request from %s", _client(self.client), exc_info=problem)
                self._refuse(400, "malformed HTTP request")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:  # answered as plain HTTP; uvicorn's own warning would blame a missing websocket library
                self.logger.debug("%s - upgrade requested, not supported", _client(self.client))
            return
        except httptools.HttpParserError as exc:
            self._refuse(400, f"malformed HTTP request: {exc}")
            return
        if self._awaiting_head and self._head_bytes > HEAD_MAX_BYTES:
            self._refuse(431, f"request head larger than {HEAD_MAX_BYTES} bytes")

    def send_400_response(self, msg: str) -> None:  # uvicorn's own callers get the JSON shape too
        self._refuse(400, msg)

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = self._awaiting_head = False
        self._head_bytes = 0
        self._cancel("_head_timer")
        problem = framing_problem(self.headers, self.parser.get_http_version())
        if problem is not None:
            raise _BadRequest(400, problem)
        if self._surplus:
            self.counters.busy += 1
            self.app = functools.partial(_too_many_connections, self.limits.max_connections)
        try:
            super().on_headers_complete()
        finally:
            self.app = self.config.loaded_app
        self.counters.received += 1
        if self._draining and not self.cycle.response_started:
            self.cycle.keep_alive = False  # answered with Connection: close
        self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_timed_out)

    def on_message_complete(self) -> None:
        self._cancel("_body_timer")
        self._awaiting_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.counters.answered += 1
        if self.transport.is_closing() or not self.cycle.response_complete:
            return  # closing, or a pipelined request is already being answered
        if self._draining:
            self._idle_in_drain()
        else:
            self._cancel("_head_timer")
            self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timed_out)

    # timers

    def _cancel(self, name: str) -> None:
        timer = getattr(self, name)
        if timer is not None:
            timer.cancel()
            setattr(self, name, None)

    def _busy(self) -> bool:
        """A request of this connection is being answered (its response not yet complete)."""
        return self.cycle is not None and not self.cycle.response_complete

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._busy():
            return
        self.counters.head_timeouts += 1
        # Closed outright, not lingering: idle or trickling connections are what exhausts descriptors.
        self.transport.close_now()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None or not cycle.more_body or cycle.response_complete:
            return
        self.counters.body_timeouts += 1
        if cycle.response_started or self.pipeline:
            self.transport.close()  # too late for a 408 of our own
            return
        self.counters.answered += 1
        self.logger.warning("%s - request body not received within %.1f s: 408", _client(self.client), self.limits.body_timeout_s)
        self._write_error(408, f"the request body did not arrive within {self.limits.body_timeout_s:g} s")
        # The app, waiting for the body, gets http.disconnect; anything it still sends is dropped.
        cycle.response_started = cycle.response_complete = cycle.disconnected = True
        cycle.message_event.set()

    # drain

    def shutdown(self) -> None:
        """Called by uvicorn's Server.shutdown for every open connection once it stops accepting."""
        self._draining = True
        if self._busy():
            last = self.pipeline[0][0] if self.pipeline else self.cycle
            if not last.response_started:
                last.keep_alive = False
        elif not self._in_head:  # a partial head is left to its head timeout, then answered
            self._idle_in_drain()

    def _idle_in_drain(self) -> None:
        # Not closed at once: the client may be sending its next request right now, or it may sit
        # unread in the socket; closing would lose it (or reset the connection).
        self._cancel("_drain_timer")
        self._drain_timer = self.loop.call_later(DRAIN_IDLE_GRACE_S, self._drain_idle)

    def _drain_idle(self) -> None:
        self._drain_timer = None
        if not (self.transport.is_closing() or self._busy() or self._in_head):
            self.transport.close()

    # responses written by the server itself

    def _refuse(self, status: int, message: str) -> None:
        """Answer a request the app never sees, in the app's JSON error shape, and close."""
        self.counters.malformed += 1
        self.logger.warning("%s - %d %s", _client(self.client), status, message)
        if self._busy():
            self.transport.close()  # a response is being written on this connection: do not interleave
        else:
            self._write_error(status, message)

    def _write_error(self, status: int, message: str) -> None:
        response = error_response(status, message)
        head = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *response.raw_headers, *SECURITY_HEADERS, (b"connection", b"close")]:
            head += [name, b": ", value, b"\r\n"]
        self.transport.write(b"".join([*head, b"\r\n", response.body]))
        self.transport.close()


def _client(client: tuple[str, int] | None) -> str:
    return "%s:%d" % client if client else "-"


async def _too_many_connections(max_connections: int, scope: Any, receive: Any, send: Any) -> None:
    message = f"the server has more than {max_connections} open connections; retry shortly"
    headers = {"Retry-After": str(RETRY_AFTER_S), "Connection": "close"}
    response = error_response(503, message, headers=headers)
    response.raw_headers.extend(SECURITY_HEADERS)
    await response(scope, receive, send)


class HardenedServer(uvicorn.Server):
    """uvicorn's Server; its shutdown (on SIGTERM or SIGINT) is the drain described above."""

    def __init__(self, config: uvicorn.Config, app: FastAPI | None, counters: Counters) -> None:
        super().__init__(config)
        self.app = app
        self.counters = counters

    async def shutdown(self, sockets: Any = None) -> None:
        started = time.monotonic()
        if self.app is not None:
            self.app.state.draining = True  # /readyz answers 503 from now on
        log.info("draining %d open connections (at most %g s)", len(self.server_state.connections), self.config.timeout_graceful_shutdown)
        await super().shutdown(sockets)
        c = self.counters
        log.info(
            "drained in %.2f s: %d requests received, %d answered, %d unanswered; %d 503 for too many connections, "
            "%d malformed, %d head and %d body timeouts",
            time.monotonic() - started, c.received, c.answered, c.received - c.answered, c.busy, c.malformed,
            c.head_timeouts, c.body_timeouts,
        )


def build_server(app: FastAPI, settings: Settings, **config: Any) -> HardenedServer:
    """The hardened server for ``app`` (not started); ``config`` overrides uvicorn.Config options (tests: port=0)."""
    counters = Counters()
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        "log_config": None,  # uvicorn's loggers propagate to the root handler (service.logs): one format
        "http": functools.partial(HardenedHttpToolsProtocol, limits=Limits.from_settings(settings), counters=counters),
        "ws": "none",  # no websocket routes: an upgrade would leave this protocol's timeouts and limit behind
        "timeout_keep_alive": settings.keep_alive_s,
        "timeout_graceful_shutdown": settings.drain_s,
        **config,
    }
    return HardenedServer(uvicorn.Config(app, **options), app, counters)


def serve(app: FastAPI, settings: Settings, **config: Any) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, then drain (what `cited serve` runs); ``config`` as for build_server."""
    descriptors = raise_open_file_limit(settings.max_connections + RESERVED_FDS)
    fitting = descriptors - min(RESERVED_FDS, descriptors // 2)
    if fitting < settings.max_connections:
        # Surplus connections then get a 503 while descriptors remain, rather than failed accepts.
        log.warning("serving at most %d connections (max_connections %d does not fit the open-file limit)", fitting, settings.max_connections)
        settings = settings.model_copy(update={"max_connections": fitting})
    limit_accept_error_log()
    build_server(app, settings, **config).run()


def raise_open_file_limit(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE toward the hard limit if it is below ``needed``; returns the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        log.info("raised the open-file limit from %d to %d (max_connections plus %d for the process)", soft, target, RESERVED_FDS)
    if target < needed:
        log.warning("the open-file limit is %d (the hard limit), below the %d that max_connections needs; raise the hard limit (ulimit -Hn)", target, needed)
    return target


class EveryInterval(logging.Filter):
    """Lets one accept-error record through per ``interval_s``; the next one says how many were left out."""

    def __init__(self, interval_s: float = ACCEPT_LOG_INTERVAL_S, clock: Any = time.monotonic) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.clock = clock
        self.last: float | None = None
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(ACCEPT_ERROR):
            return True
        now = self.clock()
        if self.last is not None and now - self.last < self.interval_s:
            self.suppressed += 1
            return False
        error = record.exc_info[1] if record.exc_info else None
        record.msg = f"{ACCEPT_ERROR}: {error or message.splitlines()[0]}"
        if self.last is not None:
            record.msg += f" ({self.suppressed} more in the last {now - self.last:.0f} s not logged)"
        record.args, record.exc_info, record.exc_text = (), None, None  # one line, not a traceback each time
        self.last, self.suppressed = now, 0
        return True


def limit_accept_error_log() -> EveryInterval:
    """Install the filter on the asyncio logger (once); uvloop, the default loop, logs none of these."""
    logger = logging.getLogger("asyncio")
    for existing in logger.filters:
        if isinstance(existing, EveryInterval):
            return existing
    installed = EveryInterval()
    logger.addFilter(installed)
    return installed
