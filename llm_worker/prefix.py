"""Chat prompts as tokens, and the fixed prefix of each prompt evaluated once per worker.

The rules and worked examples are the same for every request of one language, yet llama.cpp
only reuses what the previous request left in the context: a Chinese question after an English
one would read them again. ``PrefixStates`` keeps the evaluated prefix of each kind (its KV cache
cells, a few MB) and restores it before a request, which then evaluates only what follows.
"""

from __future__ import annotations

import ctypes
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

logger = logging.getLogger(__name__)

# The only sequence the high-level Llama decodes into.
_SEQ = 0


@dataclass(frozen=True)
class ChatPrompt:
    """What ``create_chat_completion`` would pass to ``create_completion`` for some messages."""

    tokens: list[int]
    stop: list[str]
    stopping_criteria: llama_cpp.StoppingCriteriaList | None


class ChatRenderer:
    """Messages → tokens with the GGUF's chat template, as ``create_chat_completion`` does."""

    def __init__(self, llama: llama_cpp.Llama, template: str) -> None:
        # The same formatter, eos/bos texts and stop ids the Llama builds for this template.
        eos_id, bos_id = llama.token_eos(), llama.token_bos()
        eos = llama._model.token_get_text(eos_id) if eos_id != -1 else ""
        bos = llama._model.token_get_text(bos_id) if bos_id != -1 else ""
        stop_ids = [eos_id]
        self._llama = llama
        self._prompt = Jinja2ChatFormatter(template, eos, bos, stop_token_ids=stop_ids)
        self._turns = Jinja2ChatFormatter(
            template, eos, bos, add_generation_prompt=False, stop_token_ids=stop_ids
        )

    @classmethod
    def for_model(cls, llama: llama_cpp.Llama) -> ChatRenderer | None:
        """A renderer when the Llama chats with the GGUF's own template, else None."""
        template = llama.metadata.get("tokenizer.chat_template")
        if llama.chat_handler is not None or llama.chat_format != "chat_template.default":
            return None
        return cls(llama, template) if template else None

    def prompt(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        prefill: str = "",
    ) -> ChatPrompt:
        """The tokens the model reads for ``messages``, ending with the assistant's turn opener.

        ``tools`` are rendered by the template itself; ``prefill`` is the answer's forced start.
        """
        result = self._prompt(messages=messages, tools=tools or None)  # type: ignore[arg-type]
        stop = [result.stop] if isinstance(result.stop, str) else list(result.stop or [])
        return ChatPrompt(self._encode(result.prompt + prefill), stop, result.stopping_criteria)

    def turns(self, messages: list[dict[str, str]]) -> list[int]:
        """The tokens of ``messages`` alone, as the start of a longer conversation."""
        return self._encode(self._turns(messages=messages).prompt)  # type: ignore[arg-type]

    def _encode(self, text: str) -> list[int]:
        # The template writes the special tokens itself (added_special): no BOS is added.
        return self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)


@dataclass(frozen=True)
class _State:
    tokens: tuple[int, ...]
    data: Any  # the ctypes byte array llama.cpp wrote the sequence's cells into


def common_prefix(a: Any, b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class PrefixStates:
    """Evaluated fixed prefixes, most recently used last; at most ``capacity`` are kept."""

    def __init__(self, llama: llama_cpp.Llama, capacity: int) -> None:
        self._llama = llama
        self._capacity = capacity
        self._states: OrderedDict[tuple[int, ...], _State] = OrderedDict()

    def _live(self, prompt: list[int]) -> int:
        return common_prefix(self._llama.input_ids[: self._llama.n_tokens], prompt)

    def prepare(self, prompt: list[int], prefix: list[int]) -> int:
        """Put ``prefix`` into the context for ``prompt``; how many prompt tokens need no eval.

        ``prefix`` must be a token prefix of ``prompt`` shorter than it, else nothing is restored
        and llama.cpp reuses only what the live context shares with the prompt.
        """
        live = self._live(prompt)
        if self._capacity <= 0 or not prefix or len(prefix) >= len(prompt):
            return live
        if prompt[: len(prefix)] != prefix:
            logger.warning("fixed prompt part is not a token prefix of the prompt; not cached")
            return live
        if live >= len(prefix):
            return live  # the context already holds it (the previous request was of this kind)
        key = tuple(prefix)
        state = self._states.get(key)
        if state is None:
            self._states[key] = self._evaluate(prefix, live)
            self._evict()
            return live
        self._states.move_to_end(key)
        self._restore(state)
        return len(prefix)

    def _evaluate(self, prefix: list[int], live: int) -> _State:
        llama = self._llama
        llama.n_tokens = live  # keep the cells it shares with the live context
        llama.eval(prefix[live:])
        size = llama_cpp.llama_state_seq_get_size(llama.ctx, _SEQ)
        data = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(llama.ctx, data, size, _SEQ)
        if written != size:
            raise RuntimeError(f"llama.cpp saved {written} of {size} bytes of the prompt prefix")
        logger.info("fixed prompt part evaluated: %s tokens, %s bytes kept", len(prefix), size)
        return _State(tuple(prefix), data)

    def _restore(self, state: _State) -> None:
        llama = self._llama
        size = len(state.data)
        if llama_cpp.llama_state_seq_set_data(llama.ctx, state.data, size, _SEQ) != size:
            llama.reset()
            raise RuntimeError("llama.cpp could not restore the evaluated prompt prefix")
        n = len(state.tokens)
        llama.input_ids[:n] = state.tokens
        llama.n_tokens = n  # the next generate() decodes from here: the suffix only

    def _evict(self) -> None:
        while len(self._states) > self._capacity:
            self._states.popitem(last=False)
