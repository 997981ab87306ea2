"""Logging set up once per process, with a request/task id on every line."""

from __future__ import annotations

import contextvars
import logging
import re
from urllib.parse import urlsplit

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


_PASSWORD_FIELD = re.compile(r"(?i)(^|&)(password=)[^&]*")


def redact_url(url: str) -> str:
    """The URL with its password (in the authority or a ``password=`` field) shown as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # malformed: show nothing of it rather than a secret
        return "<unparsable URL>"
    # Edited in place: urlunsplit would rewrite some URLs (sqlite:////abs/path loses slashes).
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        url = url.replace(parts.netloc, f"{user.partition(':')[0]}:***@{host}", 1)
    if parts.query:
        query = _PASSWORD_FIELD.sub(r"\1\2***", parts.query)
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url
