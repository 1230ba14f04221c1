"""Headers every response carries, errors and 404s included."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# nosniff: a browser must never guess that a JSON error (which may echo a question) is HTML.
HEADERS = ((b"x-content-type-options", b"nosniff"),)


class SecurityHeaders:
    """Pure ASGI middleware, so it costs one list append per response and never buffers a body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
