"""The generation backend of this worker, chosen once from settings: llama.cpp or a server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, Protocol

from services.common.settings import LLMSettings, Settings


class TextGenerator(Protocol):
    """What the generation service needs of a backend."""

    settings: LLMSettings
    last_usage: dict[str, int]
    last_timings: dict[str, float]

    def backend_info(self) -> dict[str, str | int]:
        """What this worker runs, for its heartbeats and /readyz."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` encodes to (exactly, or estimated where the tokenizer is remote)."""
        ...

    def stream(
        self,
        messages: list[dict[str, Any]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        fixed: int = 0,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """The answer's text pieces; ``last_usage`` and ``last_timings`` are set at its end.

        With ``tools`` (OpenAI format) the model may answer with calls, written as
        ``<tool_call>`` blocks (services/common/tool_calls.py) whichever backend made them.
        """
        ...


def create_generator(settings: Settings) -> TextGenerator:
    """The backend named by ``settings.llm.backend``; each imports its library only when chosen."""
    match settings.llm.backend:
        case "openai":
            from llm_worker.openai_generator import OpenAIGenerator

            return OpenAIGenerator(settings.llm)
        case "llama.cpp":
            from llm_worker.generator import LlamaGenerator
            from llm_worker.model_files import ensure_model

            return LlamaGenerator(settings.llm, ensure_model(settings))


_generator: TextGenerator | None = None
_generator_lock = threading.Lock()


def get_generator(settings: Settings) -> TextGenerator:
    """The process-wide generator, created on first use (a GGUF is assembled if needed)."""
    global _generator
    with _generator_lock:
        if _generator is None:
            _generator = create_generator(settings)
        return _generator
