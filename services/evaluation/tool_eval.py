"""Does the model reach for the knowledge-base tool when, and only when, a question needs it?

Questions from the knowledge base's own documents need ``search_knowledge_base``; greetings,
arithmetic and small talk do not. Each goes to POST /v1/chat/completions with tools offered and
tool_choice 'auto'; the reply says whether the gateway ran the search (``zhiku_tool``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from services.client import GatewayClient
from services.client.sse import GatewayError

NO_TOOL_QUESTIONS = (
    "Hello!",
    "Hi, how are you today?",
    "Good morning!",
    "Thanks a lot, that was helpful.",
    "Goodbye, see you tomorrow.",
    "What is 2 + 2?",
    "What is 7 times 8?",
    "How much is 100 divided by 4?",
    "What is 15 minus 9?",
    "Is 17 a prime number?",
    "Tell me a short joke.",
    "Can you say hello in French?",
    "What is your name?",
    "Please reply with the word OK.",
    "Translate 'thank you' into Spanish.",
    "你好！",
    "早上好。",
    "谢谢你的帮助。",
    "再见！",
    "三加五等于几？",
    "十乘以十是多少？",
    "请用一句话介绍你自己。",
    "给我讲个笑话吧。",
    "今天心情不错。",
    "How many days are in a week?",
    "How many minutes are in an hour?",
    "What color do you get by mixing blue and yellow?",
    "Spell the word 'cat' backwards.",
    "Say something nice.",
    "What is the opposite of 'hot'?",
)

ProgressFn = Callable[[int], None]


def tool_choices(
    client: GatewayClient,
    kb: str,
    questions: Sequence[tuple[str, bool]],
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """Per (question, needs the tool): what the model chose, or the error that came instead."""
    results = []
    for text, needs_tool in questions:
        body = {
            "model": f"zhiku:{kb}",
            "messages": [{"role": "user", "content": text}],
            "tools": [],  # only zhiku's own search_knowledge_base is offered
            "tool_choice": "auto",
            "max_tokens": 64,
        }
        row: dict[str, Any] = {"question": text, "needs_tool": needs_tool}
        try:
            reply = client.openai_chat(body)
        except GatewayError as err:
            row["error"] = str(err)
        else:
            message = reply["choices"][0]["message"]
            row["searched"] = reply.get("zhiku_tool") is not None
            row["answer"] = (message.get("content") or "")[:200]
            row["right"] = row["searched"] == needs_tool
        results.append(row)
        if progress:
            progress(1)
    return results


def tool_report(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How often the choice was right, for each kind of question and overall."""

    def share(rows: list[dict[str, Any]]) -> dict[str, Any]:
        right = sum(1 for r in rows if r.get("right"))
        errors = sum(1 for r in rows if "error" in r)
        return {
            "questions": len(rows),
            "right": right,
            "errors": errors,
            "accuracy": right / len(rows) if rows else 0.0,
        }

    needs = [r for r in results if r["needs_tool"]]
    plain = [r for r in results if not r["needs_tool"]]
    return {
        "needs_tool": share(needs),
        "no_tool": share(plain),
        "overall": share(list(results)),
        "results": list(results),
    }


def tool_table(report: dict[str, Any]) -> Table:
    """Questions, right choices and accuracy per group."""
    table = Table("questions", "asked", "right choice", "errors", "accuracy")
    for group in ("needs_tool", "no_tool", "overall"):
        row = report[group]
        table.add_row(
            group,
            str(row["questions"]),
            str(row["right"]),
            str(row["errors"]),
            f"{100 * row['accuracy']:.1f}%",
        )
    return table


def tool_markdown(report: dict[str, Any]) -> str:
    """The same table in Markdown, with the model's name."""
    lines = [
        f"# Tool choice ({report.get('model', 'unknown')})",
        "",
        "| questions | asked | right choice | errors | accuracy |",
        "|---|---|---|---|---|",
    ]
    for group in ("needs_tool", "no_tool", "overall"):
        row = report[group]
        lines.append(
            f"| {group} | {row['questions']} | {row['right']} | {row['errors']} "
            f"| {100 * row['accuracy']:.1f}% |"
        )
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, text: str) -> None:
    """Write ``text`` beside the JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
