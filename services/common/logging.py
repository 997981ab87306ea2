"""Logging set up once per process, with a request/task id on every line."""

from __future__ import annotations

import contextvars
import logging

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure_logging(level: str = "INFO") -> None:
    """Install one stream handler on the root logger (idempotent)."""
    root = logging.getLogger()
    if any(getattr(h, "_zhiku", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler._zhiku = True  # type: ignore[attr-defined]
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level.upper())
    # One line per internal HTTP call drowns the service's own log at INFO.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
