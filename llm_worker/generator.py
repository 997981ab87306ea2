"""llama.cpp text generation: one model per worker process, streamed token by token."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import llama_cpp
from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

from llm_worker import cpu_info
from llm_worker.prefix import ChatRenderer, PrefixStates
from services.common.errors import NotReadyError, ValidationFailedError
from services.common.settings import LLMSettings
from services.common.tool_calls import prefill_for, template_messages

logger = logging.getLogger(__name__)

NO_GPU_MESSAGE = (
    "this llama-cpp-python build has no GPU support; set ZHIKU_LLM__N_GPU_LAYERS=0 "
    "or install the CUDA build (make install-gpu)"
)


class LlamaGenerator:
    """A loaded GGUF model; ``stream()`` yields answer pieces, records usage and timings."""

    def __init__(self, settings: LLMSettings, model_path: Path) -> None:
        if settings.n_gpu_layers != 0 and not llama_cpp.llama_supports_gpu_offload():
            # Refuse: a silent CPU fallback would be many times slower than the user asked for.
            raise NotReadyError(NO_GPU_MESSAGE)
        self.settings = settings
        self.model_path = model_path
        self.last_usage: dict[str, int] = {}
        self.last_timings: dict[str, float] = {}
        self._cached = 0  # prompt tokens of the current request found already evaluated
        self._prompt_tokens: int | None = None
        self._lock = threading.Lock()
        draft = None
        if settings.prompt_lookup > 0:
            # Answers copy spans of the passages: guess the next tokens from the prompt.
            draft = LlamaPromptLookupDecoding(num_pred_tokens=settings.prompt_lookup)
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
            draft_model=draft,
            # Drafts are checked against every position's logits; llama-cpp-python sizes its
            # logits buffer by this flag alone, so a draft without it fails past n_batch tokens.
            logits_all=draft is not None,
            verbose=False,
        )
        self._renderer = ChatRenderer.for_model(self._llama)
        self._prefixes = PrefixStates(self._llama, settings.prefix_states)
        if self._renderer is None:
            logger.info("%s: no GGUF chat template; the fixed prompt part is not kept", model_path)
        if settings.prompt_cache_mb > 0:
            # States are saved after each answer and restored for a prompt sharing a longer prefix
            # than the live context does (a repeated question after other requests).
            self._llama.set_cache(llama_cpp.LlamaRAMCache(settings.prompt_cache_mb * 2**20))
        info = self.backend_info()
        logger.info("%s", cpu_info.describe())
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
        messages: list[dict[str, Any]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        fixed: int = 0,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text pieces; usage and timings are set when the stream ends.

        The first ``fixed`` messages are the same for many requests: their evaluated state is
        kept and restored, so a request evaluates only the messages after them. With ``tools``
        the template offers them; a forcing ``tool_choice`` starts the answer with the call's
        opening text (yielded first), which the model completes.
        """
        tools = None if tool_choice == "none" else tools  # 'none': the model sees no tools
        prefill = prefill_for(tool_choice) if tools else ""
        temp = self.settings.temperature if temperature is None else temperature
        limit = self.settings.max_tokens if max_tokens is None else max_tokens
        # One llama context serves one request at a time; the lock spans the whole stream.
        with self._lock:
            self.last_usage, self.last_timings = {}, {}
            pieces: list[str] = []
            # A stream closed early stops like a length stop: the last token is not evaluated.
            finish_reason = "length"
            llama_cpp.llama_perf_context_reset(self._llama.ctx)
            if prefill:  # part of the prompt's tokens already: not counted again as completion
                yield prefill
            try:
                for choice in self._start(messages, temp, limit, fixed, tools, prefill):
                    text = choice.get("text") or (choice.get("delta") or {}).get("content") or ""
                    finish_reason = choice.get("finish_reason") or finish_reason
                    if text:
                        pieces.append(text)
                        yield text
            finally:
                self.last_usage = self._usage("".join(pieces), finish_reason)
                self.last_timings = self._timings()

    def _start(
        self,
        messages: list[dict[str, Any]],
        temperature: float,
        max_tokens: int,
        fixed: int,
        tools: list[dict[str, Any]] | None = None,
        prefill: str = "",
    ) -> Iterator[Any]:
        self._cached, self._prompt_tokens = 0, None
        try:
            response = self._complete(messages, temperature, max_tokens, fixed, tools, prefill)
            # The prompt is evaluated on the first step; a too-long prompt fails right here.
            first = next(response)
        except StopIteration:
            return
        except ValueError as exc:
            if "context window" in str(exc):
                raise ValidationFailedError(
                    f"prompt too long for the model: {exc}; lower top_k or the chat history"
                ) from exc
            raise
        yield first["choices"][0]
        for chunk in response:
            yield chunk["choices"][0]

    def _complete(
        self,
        messages: list[dict[str, Any]],
        temperature: float,
        max_tokens: int,
        fixed: int,
        tools: list[dict[str, Any]] | None = None,
        prefill: str = "",
    ) -> Iterator[Any]:
        if self._renderer is None and tools:
            raise ValidationFailedError(
                f"{self.model_path.name} has no GGUF chat template to offer tools with"
            )
        if self._renderer is None:  # another chat format: llama.cpp's own prefix reuse only
            chat = self._llama.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                temperature=temperature,
                max_tokens=max_tokens,
                seed=self.settings.seed,
                stream=True,
            )
            return cast(Iterator[Any], chat)  # stream=True always returns an iterator
        if tools:
            prompt = self._renderer.prompt(template_messages(messages), tools, prefill)
        else:
            prompt = self._renderer.prompt(messages)
        if len(prompt.tokens) >= self._llama.n_ctx():
            raise ValueError(
                f"Requested tokens ({len(prompt.tokens)}) exceed context window of "
                f"{self._llama.n_ctx()}"
            )
        prefix = self._renderer.turns(messages[:fixed]) if 0 < fixed < len(messages) else []
        self._cached = self._prefixes.prepare(prompt.tokens, prefix)
        self._prompt_tokens = len(prompt.tokens)
        response = self._llama.create_completion(
            prompt=prompt.tokens,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=self.settings.seed,
            stop=prompt.stop,
            stopping_criteria=prompt.stopping_criteria,
            stream=True,
        )
        return cast(Iterator[Any], response)

    def _timings(self) -> dict[str, float]:
        """llama.cpp's own clock for this request: prompt batches vs one-token steps."""
        perf = llama_cpp.llama_perf_context(self._llama.ctx)
        return {
            "prompt_eval_ms": round(perf.t_p_eval_ms, 1),
            "generation_ms": round(perf.t_eval_ms, 1),
            "prompt_tokens": float(self.last_usage.get("prompt_tokens", 0)),
            "cached_tokens": float(self._cached),
            "evaluated_tokens": float(perf.n_p_eval),
        }

    def _usage(self, answer: str, finish_reason: str) -> dict[str, int]:
        completion = self.count_tokens(answer) if answer else 0
        # The context holds prompt + completion; a length stop leaves the last token unevaluated.
        evaluated = completion - 1 if finish_reason == "length" and completion else completion
        prompt = self._prompt_tokens
        if prompt is None:
            prompt = max(0, int(self._llama.n_tokens) - evaluated)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
