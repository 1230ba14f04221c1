"""One log format for the app, the libraries and uvicorn: text for a terminal, JSON for a collector."""

from __future__ import annotations

import json
import logging
import sys
import time

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = ("faiss.loader", "sentence_transformers", "httpx", "httpcore", "urllib3")  # chatty at INFO about their own plumbing


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback goes in ``exc_info``, never across lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, form: str = "text") -> None:
    """The root logger's one handler; uvicorn is started with ``log_config=None`` so its loggers
    (uvicorn.error, uvicorn.access) propagate here and share the format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
