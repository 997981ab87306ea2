"""Text generation streamed from an OpenAI-compatible server (vLLM, Ollama, llama.cpp server, ...).

The worker keeps everything around the model (prompts, context selection, grounding, queue,
cancellation); only the tokens come from the server. Every failure of the server becomes a
ZhikuError the gateway turns into a status: down or answering errors 503, silent 504.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Generator, Iterator
from contextlib import closing
from typing import Any, cast

import httpx2
import openai

from services.common.errors import (
    GenerationTimeoutError,
    NotReadyError,
    ValidationFailedError,
    ZhikuError,
)
from services.common.settings import LLMSettings
from services.common.tool_calls import format_tool_call

logger = logging.getLogger(__name__)

# About one token each in the tokenizers of Qwen, GLM, Llama 3: CJK ideographs, kana, hangul, CJK
# and full-width punctuation, and digits (Qwen and Llama 3 split numbers into single digits).
_ONE_TOKEN = re.compile(
    r"[0-9\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
_CONTEXT_WORDS = ("context", "too long", "maximum")


def approx_tokens(text: str) -> int:
    """Tokens ``text`` is likely to encode to: one per CJK character or digit, one per 4 others.

    The server's tokenizer is not at hand. Against Qwen2.5's own tokenizer this errs high for
    Chinese (it packs common words) and lands near it for English, so a context budget counted
    with it still fits (tests/integration/test_openai_backend.py).
    """
    single = len(_ONE_TOKEN.findall(text))
    return single + -(-(len(text) - single) // 4)


def server_client(settings: LLMSettings, max_retries: int = 0) -> openai.OpenAI:
    """An OpenAI client for the configured server, with the configured timeouts."""
    if not settings.base_url or not settings.model:
        raise NotReadyError(
            "the openai backend needs ZHIKU_LLM__BASE_URL and ZHIKU_LLM__MODEL "
            "(e.g. http://127.0.0.1:8080/v1 and the model name the server knows)"
        )
    read = settings.read_timeout_s
    timeout = httpx2.Timeout(read, connect=settings.connect_timeout_s)
    return openai.OpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key.get_secret_value(),
        timeout=timeout,
        max_retries=max_retries,
    )


SERVER_ERRORS = (openai.OpenAIError, httpx2.HTTPError)


def server_error(exc: Exception, base_url: str) -> ZhikuError:
    """What a failed call to the model server means for the user."""
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return GenerationTimeoutError(f"the model server at {base_url} did not answer in time")
    if isinstance(exc, openai.APIStatusError):
        message = str(exc.message)
        if exc.status_code in (400, 413) and any(w in message.lower() for w in _CONTEXT_WORDS):
            return ValidationFailedError(
                f"prompt too long for the model: {message}; lower top_k or the chat history"
            )
        return NotReadyError(f"the model server answered {exc.status_code}: {message}")
    if isinstance(exc, openai.APIConnectionError | httpx2.ConnectError):
        return NotReadyError(f"the model server at {base_url} is not reachable: {exc}")
    # A connection dropped mid-answer (httpx2.RemoteProtocolError), a malformed event, ...
    return NotReadyError(f"the model server at {base_url} failed: {type(exc).__name__}: {exc}")


class OpenAIGenerator:
    """A model behind an OpenAI-compatible ``/chat/completions``; same surface as LlamaGenerator."""

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings
        self._client = server_client(settings)
        self.base_url = str(self._client.base_url)
        self.last_usage: dict[str, int] = {}
        self.last_timings: dict[str, float] = {}
        self._lock = threading.Lock()
        self._last_probe = "ok"

    def backend_info(self) -> dict[str, str | int]:
        """Backend, server and model, and whether the server answers now (for /readyz)."""
        return {
            "backend": "openai",
            "base_url": self.base_url,
            "model": self.settings.model or "",
            "engine": self.probe(),
        }

    def probe(self) -> str:
        """'ok' when the server lists its models within the connect timeout, else why not.

        Not asked while this worker streams from the server: a server with one model lock
        (llama-cpp-python's) would hold the probe behind the answer, or cut the answer short.
        """
        if self._lock.locked():
            return self._last_probe
        try:
            self._client.models.list(timeout=self.settings.connect_timeout_s)
        except Exception as exc:  # whatever the answer, not a model list: not usable
            self._last_probe = f"unavailable: {server_error(exc, self.base_url).message}"
        else:
            self._last_probe = "ok"
        return self._last_probe

    def count_tokens(self, text: str) -> int:
        """Approximate tokens of ``text`` (see approx_tokens)."""
        return approx_tokens(text)

    def stream(
        self,
        messages: list[dict[str, Any]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        fixed: int = 0,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text pieces; usage and timings are set when the stream ends.

        ``fixed`` is accepted for the llama.cpp backend's sake: a server keeps its own prefix cache.
        ``tools`` and ``tool_choice`` go to the server as given; its tool calls come back as
        ``<tool_call>`` blocks after the text.
        """
        offer = _ToolOffer(tools or [], tool_choice)
        temp = self.settings.temperature if temperature is None else temperature
        limit = self.settings.max_tokens if max_tokens is None else max_tokens
        with self._lock:
            self.last_usage, self.last_timings = {}, {}
            started = time.monotonic()
            first: float | None = None
            pieces: list[str] = []
            usage: dict[str, Any] = {}
            try:
                with closing(self._chunks(messages, temp, limit, offer)) as chunks:
                    for text, chunk_usage in chunks:
                        usage = chunk_usage or usage
                        if text:
                            first = time.monotonic() if first is None else first
                            pieces.append(text)
                            yield text
            finally:
                self._finish(messages, "".join(pieces), len(pieces), usage, started, first)

    def _chunks(
        self,
        messages: list[dict[str, Any]],
        temperature: float,
        max_tokens: int,
        offer: _ToolOffer,
    ) -> Generator[tuple[str, dict[str, Any] | None], None, None]:
        try:
            response = self._client.chat.completions.create(
                **offer.arguments(),
                model=self.settings.model or "",
                messages=cast(Any, messages),
                temperature=temperature,
                max_tokens=max_tokens,
                seed=self.settings.seed,
                stream=True,
                stream_options={"include_usage": True},
            )
        except SERVER_ERRORS as exc:
            raise server_error(exc, self.base_url) from exc
        finished = False
        with response:  # closing it (a cancelled stream) drops the connection: the server stops
            try:
                for chunk in response:
                    usage = chunk.usage.model_dump() if chunk.usage else None
                    choice = chunk.choices[0] if chunk.choices else None
                    finished = finished or bool(choice and choice.finish_reason)
                    if choice and choice.delta.tool_calls:
                        offer.add(choice.delta.tool_calls)
                    yield (choice.delta.content if choice else None) or "", usage
            except SERVER_ERRORS as exc:
                raise server_error(exc, self.base_url) from exc
        for block in offer.blocks():
            yield block, None
        if not finished:  # e.g. llama-cpp-python's server interrupted it for another request
            raise NotReadyError(
                f"the model server at {self.base_url} ended the answer without a finish reason"
            )

    def _finish(
        self,
        messages: list[dict[str, Any]],
        answer: str,
        chunks: int,
        usage: dict[str, Any],
        started: float,
        first: float | None,
    ) -> None:
        """Usage as the server counted it, else estimated; timings on this worker's clock."""
        prompt = usage.get("prompt_tokens")
        if prompt is None:
            prompt = sum(approx_tokens(str(m.get("content") or "")) for m in messages)
        completion = usage.get("completion_tokens")
        if completion is None:
            completion = chunks  # servers send one token per chunk
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        self.last_usage = {
            "prompt_tokens": int(prompt),
            "completion_tokens": int(completion),
            "total_tokens": int(prompt) + int(completion),
        }
        now = time.monotonic()
        until_first = (first or now) - started
        self.last_timings = {
            # The wait for the first token: the server's prompt evaluation plus the round trip.
            "prompt_eval_ms": round(until_first * 1000, 1),
            "generation_ms": round((now - (first or now)) * 1000, 1),
            "prompt_tokens": float(prompt),
            "cached_tokens": float(cached),
            "evaluated_tokens": float(max(0, int(prompt) - int(cached))),
        }


class _ToolOffer:
    """The tools a request offers the server, and the calls its stream assembles piece by piece."""

    def __init__(self, tools: list[dict[str, Any]], tool_choice: str | dict[str, Any] | None):
        self.tools, self.tool_choice = tools, tool_choice
        self._calls: dict[int, list[str]] = {}  # index -> [name, arguments so far]

    def arguments(self) -> dict[str, Any]:
        """The create() arguments for the tools; none when no tool is offered."""
        if not self.tools:
            return {}
        return {"tools": self.tools, "tool_choice": self.tool_choice or "auto"}

    def add(self, deltas: list[Any]) -> None:
        """One chunk's tool-call deltas: a name and the next piece of the arguments."""
        for delta in deltas:
            call = self._calls.setdefault(delta.index, ["", ""])
            if delta.function is not None:
                call[0] += delta.function.name or ""
                call[1] += delta.function.arguments or ""

    def blocks(self) -> list[str]:
        """The assembled calls, as the ``<tool_call>`` text the gateway parses."""
        return ["\n" + format_tool_call(n, a) for _, (n, a) in sorted(self._calls.items())]
