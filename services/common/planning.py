"""Deep chat planning: the prompt that asks the model for its next search, and its reply parsed.

The gateway writes the planner's turn (the question, the knowledge bases, the searches so far)
with ``plan_turn``; the llm worker wraps it with ``build_plan_messages``; the gateway reads the
one-line reply with ``parse_plan``. Anything but a well-formed ``SEARCH:`` line means answer now.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.common.schemas import StepEvent

PLAN_PROMPT = (
    "You plan the searches that answer a question from knowledge bases. You see the question, "
    "the knowledge bases and the searches done so far with what they found. Reply with one line "
    "only: `SEARCH: <query>` to search for a part of the question the found passages do not "
    "cover yet (add ` | KB: <name>` to search another of the listed knowledge bases), or "
    "`ANSWER` when they cover every part. A question about several things needs one search per "
    "thing. Do not answer the question yourself.\n"
    "你为回答问题规划检索。只输出一行：`SEARCH: <检索词>`（可加 ` | KB: <知识库名>`），"
    "或者 `ANSWER`。"
)
SNIPPET_CHARS = 80
MAX_QUERY_CHARS = 300

_PLAN_SHOTS = [
    (
        "天工X7 和 天工X9 的额定功率分别是多少？",
        "manuals (this chat), faq",
        [
            (
                "天工X7 和 天工X9 的额定功率分别是多少？",
                "manuals",
                "天工X7 的额定功率为 72 瓦。",
            )
        ],
        "SEARCH: 天工X9 的额定功率",
    ),
    (
        "Who directs Aurora Ridge Observatory?",
        "astro (this chat)",
        [
            (
                "Who directs Aurora Ridge Observatory?",
                "astro",
                "Dr. Helena Marsh directs Aurora Ridge Observatory.",
            )
        ],
        "ANSWER",
    ),
    (
        "What does the warranty cover, and how long is the return window?",
        "handbook (this chat), policies",
        [
            (
                "What does the warranty cover, and how long is the return window?",
                "handbook",
                "The warranty covers parts and labour.",
            )
        ],
        "SEARCH: return window | KB: policies",
    ),
]

_SEARCH = re.compile(r"^\W*(?:search|搜索|检索)\s*[:：]\s*(?P<rest>.+)$", re.IGNORECASE)
_KB = re.compile(r"\s*(?:\||;|,|，)?\s*\bKB\s*[:：]\s*(?P<kb>[\w\-.\u4e00-\u9fff]+)\s*$", re.I)
_ANSWER = re.compile(r"^\W*(?:answer|回答|作答)\b", re.IGNORECASE)


@dataclass(frozen=True)
class PlanDecision:
    """The planner's choice: search ``query`` (in ``knowledge_base`` if named), or answer now."""

    query: str | None = None
    knowledge_base: str | None = None

    @property
    def answers(self) -> bool:
        return self.query is None


ANSWER = PlanDecision()


def parse_plan(reply: str) -> PlanDecision:
    """The first ``SEARCH:``/``ANSWER`` line of a planner reply; anything else means answer."""
    for raw in reply.strip().splitlines():
        line = raw.strip().strip("`*").strip()
        if not line:
            continue
        if _ANSWER.match(line):
            return ANSWER
        found = _SEARCH.match(line)
        if found is None:
            continue
        rest, kb = found.group("rest").strip(), None
        named = _KB.search(rest)
        if named:
            kb, rest = named.group("kb"), rest[: named.start()]
        query = rest.strip().strip("\"'“”「」`").strip()
        return PlanDecision(query[:MAX_QUERY_CHARS], kb) if query else ANSWER
    return ANSWER


def _searched_line(n: int, query: str, kb: str, found: str) -> str:
    return f'{n}. "{query}" in {kb} → {found or "nothing"}'


def plan_turn(question: str, knowledge_bases: str, steps: list[StepEvent], found: list[str]) -> str:
    """The planner's user turn; ``found`` holds each step's best passages as short snippets."""
    lines = [
        _searched_line(s.step, s.query, s.knowledge_base, text)
        for s, text in zip(steps, found, strict=True)
    ]
    return _turn(question, knowledge_bases, lines)


def _turn(question: str, knowledge_bases: str, searched: list[str]) -> str:
    return "\n".join(
        [
            f"question: {question.strip()}",
            f"knowledge bases: {knowledge_bases}",
            "searched:",
            *searched,
            "next:",
        ]
    )


def snippet(text: str) -> str:
    """A found passage as the planner sees it: its first characters (no file name, which small
    models copy into their next query)."""
    return " ".join(text.split())[:SNIPPET_CHARS]


def build_plan_messages(turn: str) -> list[dict[str, str]]:
    """The few-shot planning prompt around the gateway's turn."""
    messages = [{"role": "system", "content": PLAN_PROMPT}]
    for question, kbs, searched, reply in _PLAN_SHOTS:
        lines = [_searched_line(i, q, kb, f) for i, (q, kb, f) in enumerate(searched, start=1)]
        messages.append({"role": "user", "content": _turn(question, kbs, lines)})
        messages.append({"role": "assistant", "content": reply})
    messages.append({"role": "user", "content": turn})
    return messages


def plan_fixed_turns() -> int:
    """Leading messages that are the same for every planning prompt (for the prefix cache)."""
    return 1 + 2 * len(_PLAN_SHOTS)
