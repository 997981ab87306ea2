"""Multi-turn: a follow-up is rewritten into a standalone query before retrieval."""

from __future__ import annotations

import logging
import uuid

from services.common.errors import ZhikuError
from services.common.generation_schemas import GenerationRequest
from services.common.schemas import ChatMessage
from services.gateway.chat.worker_calls import short_generation
from services.gateway.state import GatewayState

logger = logging.getLogger(__name__)

REWRITE_TIMEOUT_S = 60.0
MAX_QUERY_CHARS = 300


def _clean(text: str) -> str:
    """The first non-empty line, without the quotes or labels small models like to add."""
    for line in text.strip().splitlines():
        line = line.strip().strip("\"'“”「」").removeprefix("follow-up:").strip()
        if line:
            return line[:MAX_QUERY_CHARS]
    return ""


def standalone_query(state: GatewayState, question: str, history: list[ChatMessage]) -> str:
    """The question on a first turn; else the worker's rewrite (the question if that fails)."""
    if not any(m.role == "user" for m in history):
        return question
    request = GenerationRequest(
        stream_id=uuid.uuid4().hex,
        purpose="rewrite",
        question=question,
        history=history,
        max_tokens=64,
    )
    try:
        reply = short_generation(state, request, REWRITE_TIMEOUT_S)
    except ZhikuError as exc:
        logger.warning("query rewrite failed, searching with the question as asked: %s", exc)
        return question
    rewritten = _clean(reply)
    logger.info("rewrote %r as %r", question[:80], rewritten[:80])
    return rewritten or question
