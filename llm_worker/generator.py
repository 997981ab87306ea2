"""llama.cpp text generation: one model per worker process, streamed token by token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import llama_cpp

from llm_worker.model_files import ensure_model
from services.common.errors import NotReadyError, ValidationFailedError
from services.common.settings import LLMSettings, Settings

logger = logging.getLogger(__name__)

NO_GPU_MESSAGE = (
    "this llama-cpp-python build has no GPU support; set ZHIKU_LLM__N_GPU_LAYERS=0 "
    "or install the CUDA build (make install-gpu)"
)


class LlamaGenerator:
    """A loaded GGUF model; ``stream()`` yields answer pieces and records ``last_usage``."""

    def __init__(self, settings: LLMSettings, model_path: Path) -> None:
        if settings.n_gpu_layers != 0 and not llama_cpp.llama_supports_gpu_offload():
            # Refuse: a silent CPU fallback would be many times slower than the user asked for.
            raise NotReadyError(NO_GPU_MESSAGE)
        self.settings = settings
        self.model_path = model_path
        self.last_usage: dict[str, int] = {}
        self._lock = threading.Lock()
        self._llama = llama_cpp.Llama(
            model_path=str(model_path),
            n_gpu_layers=settings.n_gpu_layers,
            main_gpu=settings.main_gpu,
            tensor_split=settings.tensor_split,
            flash_attn=settings.flash_attn,
            use_mmap=settings.use_mmap,
            n_ctx=settings.n_ctx,
            n_batch=settings.n_batch,
            n_threads=settings.n_threads,
            seed=settings.seed,
            verbose=False,
        )
        if settings.prompt_cache_mb > 0:
            # States are saved after each answer and restored for a prompt sharing a longer prefix
            # than the live context does (a repeated question after other requests).
            self._llama.set_cache(llama_cpp.LlamaRAMCache(settings.prompt_cache_mb * 2**20))
        info = self.backend_info()
        logger.info(
            "loaded %s on %s: %s of %s layers offloaded, n_ctx=%s, threads=%s",
            model_path.name,
            info["backend"],
            info["gpu_layers"],
            info["layers"],
            info["n_ctx"],
            info["n_threads"],
        )

    def backend_info(self) -> dict[str, str | int]:
        """Backend (cpu/gpu), offloaded layers and context size, for readiness reports."""
        layers = int(llama_cpp.llama_model_n_layer(self._llama.model))
        wanted = self.settings.n_gpu_layers
        offloaded = layers if wanted < 0 else min(wanted, layers)
        return {
            "backend": "gpu" if offloaded > 0 else "cpu",
            "model": self.model_path.name,
            "layers": layers,
            "gpu_layers": offloaded,
            "n_ctx": self.settings.n_ctx,
            "n_threads": self.settings.n_threads,
        }

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` encodes to (no BOS)."""
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self,
        messages: list[dict[str, str]],
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text pieces; ``last_usage`` is set when the stream ends or closes."""
        temp = self.settings.temperature if temperature is None else temperature
        limit = self.settings.max_tokens if max_tokens is None else max_tokens
        # One llama context serves one request at a time; the lock spans the whole stream.
        with self._lock:
            self.last_usage = {}
            pieces: list[str] = []
            # A stream closed early stops like a length stop: the last token is not evaluated.
            finish_reason = "length"
            try:
                for chunk in self._start(messages, temp, limit):
                    choice = chunk["choices"][0]
                    text = choice["delta"].get("content") or ""
                    finish_reason = choice.get("finish_reason") or finish_reason
                    if text:
                        pieces.append(text)
                        yield text
            finally:
                self.last_usage = self._usage("".join(pieces), finish_reason)

    def _start(
        self, messages: list[dict[str, str]], temperature: float, max_tokens: int
    ) -> Iterator[Any]:
        response = self._llama.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            temperature=temperature,
            max_tokens=max_tokens,
            seed=self.settings.seed,
            stream=True,
        )
        chunks = cast(Iterator[Any], response)  # stream=True always returns an iterator
        try:
            # The prompt is evaluated on the first step; a too-long prompt fails right here.
            first = next(chunks)
        except StopIteration:
            return
        except ValueError as exc:
            if "context window" in str(exc):
                raise ValidationFailedError(
                    f"prompt too long for the model: {exc}; lower top_k or the chat history"
                ) from exc
            raise
        yield first
        yield from chunks

    def _usage(self, answer: str, finish_reason: str) -> dict[str, int]:
        completion = self.count_tokens(answer) if answer else 0
        # The context holds prompt + completion; a length stop leaves the last token unevaluated.
        evaluated = completion - 1 if finish_reason == "length" and completion else completion
        prompt = max(0, int(self._llama.n_tokens) - evaluated)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


_generator: LlamaGenerator | None = None
_generator_lock = threading.Lock()


def get_generator(settings: Settings) -> LlamaGenerator:
    """The process-wide generator, loaded on first use (the model is assembled if needed)."""
    global _generator
    with _generator_lock:
        if _generator is None:
            _generator = LlamaGenerator(settings.llm, ensure_model(settings))
        return _generator


def loaded_generator() -> LlamaGenerator | None:
    """The generator if this process has loaded one, else None (for readiness checks)."""
    return _generator
