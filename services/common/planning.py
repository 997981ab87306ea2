"""Deep chat planning: the prompt that asks the model for its next search, and its reply parsed.

The gateway writes the planner's turn (the question, the knowledge bases, the searches so far)
with ``plan_turn``; the llm worker wraps it with ``build_plan_messages``; the gateway reads the
one-line reply with ``parse_plan``. Anything but a well-formed ``SEARCH:`` line means answer now.
``question_parts`` splits a question that asks about several things into one question per thing,
which the deep chat searches before it asks the planner anything.
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


# "1. … 2. …", "1、…（2）…": numbered parts, at the start or after a space or colon.
_NUMBERED = re.compile(r"(?:^|(?<=[\s:：]))[(（]?(?P<n>[1-9])[.．、)）]\s*")
# "X 和 Y（的 Z）分别是什么？": one question per thing, the shared tail repeated.
_BOTH = re.compile(
    r"^(?P<a>[^，,。；;？?]+?)\s*(?:和|与|及|以及|跟)\s*(?P<b>[^，,。；;？?]+?)"
    r"\s*(?:的(?P<attr>[^，,。；;？?]+?))?\s*分别(?P<tail>[^，,。；;]*)$"
)
_QUESTION_END = re.compile(r"(?<=[？?])\s*")
MAX_PARTS = 4
MIN_PART_CHARS = 2


def question_parts(question: str) -> list[str]:
    """The questions a question joins, each on its own; none when it asks one thing.

    Read: numbered parts ("请分别回答：1. … 2. …"), "X 和 Y（的 Z）分别是什么？", and several
    sentences that each end in a question mark.
    """
    text = " ".join(question.split())
    parts = _numbered_parts(text) or _both_parts(text) or _sentence_parts(text)
    parts = [p for p in parts if len(p) >= MIN_PART_CHARS]
    return parts[:MAX_PARTS] if len(parts) > 1 else []


def _numbered_parts(text: str) -> list[str]:
    marks = [m for m in _NUMBERED.finditer(text)]
    # Only 1, 2, 3, … in order: "3.5 kg" or a year is not a list.
    run: list[re.Match[str]] = []
    for mark in marks:
        if int(mark.group("n")) == len(run) + 1:
            run.append(mark)
    if len(run) < 2:
        return []
    ends = [m.start() for m in run[1:]] + [len(text)]
    return [text[m.end() : end].strip(" ；;，,") for m, end in zip(run, ends, strict=True)]


def _both_parts(text: str) -> list[str]:
    found = _BOTH.match(text)
    if found is None:
        return []
    tail = found.group("tail").strip()
    attr = found.group("attr")
    about = f" 的{attr.strip()}" if attr else " "
    return [f"{found.group(x).strip()}{about}{tail}".strip() for x in ("a", "b")]


def _sentence_parts(text: str) -> list[str]:
    return [p.strip() for p in _QUESTION_END.split(text) if p.strip()]


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
