"""Work for a client that has gone away is dropped before inference.

uvicorn does not cancel a request's task when its client disconnects; it only delivers an
``http.disconnect`` message to whoever listens. Without a listener, 200 abandoned requests
still queue for the model and delay every later question (and the probes that share nothing
with them but the CPU).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from contextlib import suppress
from typing import TypeVar

from starlette.requests import Request

from index import CitedError

T = TypeVar("T")


class ClientGone(CitedError):
    """The client disconnected before its answer was ready."""


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``work``'s result, or :class:`ClientGone` once the client disconnects first; ``work`` is
    then cancelled (the inference lane skips a cancelled question it has not started)."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        gone.cancel()
    if not task.done():
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        raise ClientGone("the client disconnected before the answer was ready")
    return task.result()
