"""A real local HTTP server that speaks (or breaks) the OpenAI chat completions protocol, for the
generator's error paths: 500, a body that is not JSON, JSON that is not a completion, an answer
later than the timeout, a stream cut short. The first path segment picks the behaviour; the happy
paths answer the text in ``Behaviour.answer``, whole or as server-sent events. What the client sent
is kept in ``requests`` so tests can check the prompt and headers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Behaviour:
    answer: str = "No answer."
    delay_s: float = 3.0
    requests: list[dict[str, Any]] = field(default_factory=list)


def _handler(behaviour: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            try:
                self._answer()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up first (the timeout tests): nothing to answer

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            behaviour.requests.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization")})
            mode = self.path.strip("/").split("/")[0]
            if mode == "fail":
                self._send(500, json.dumps({"error": {"message": "model crashed"}}).encode())
            elif mode == "garbage":
                self._send(200, b"<html>not json</html>", "text/html")
            elif mode == "notchat":
                self._send(200, json.dumps({"result": "hello"}).encode())
            elif mode == "slow":
                time.sleep(behaviour.delay_s)
                self._send(200, json.dumps(_completion(behaviour.answer)).encode())
            elif body.get("stream"):
                self._stream(cut=mode == "cut", stop=mode == "stop")
            else:
                self._send(200, json.dumps(_completion(behaviour.answer)).encode())

        def _stream(self, cut: bool, stop: bool = False) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            words = behaviour.answer.split(" ")
            pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
            events = [{"model": "test-model", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
            events += [{"model": "test-model", "choices": [{"index": 0, "delta": {"content": p}}]} for p in pieces]
            events[-1]["choices"][0]["finish_reason"] = "stop"
            for n, event in enumerate(events):
                if cut and n == 2:
                    self._chunk(b"data: {broken\n\n")
                    break
                if stop and n == 3:
                    break  # the stream just ends: no finish_reason, no [DONE]
                self._chunk(f"data: {json.dumps(event)}\n\n".encode())
            else:
                self._chunk(b"data: [DONE]\n\n")
            self._chunk(b"")

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }


@contextmanager
def chat_server(behaviour: Behaviour) -> Iterator[str]:
    """Serve on a free loopback port; yields the base URL (append a mode and /v1)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(behaviour))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
