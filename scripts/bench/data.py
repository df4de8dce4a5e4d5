"""The benchmark's data: sizes, the shape of a data set, and the text, messages and tasks the
write operations send (the generated data set itself: generate.py)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------------------------------------
# Sizes

_UNITS = {"k": 1_000, "K": 1_000, "m": 1_000_000, "M": 1_000_000}


def parse_size(text: str) -> int:
    """'1k' -> 1000, '1M' -> 1000000, '2500' -> 2500."""
    text = text.strip().replace("_", "")
    scale = _UNITS.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    try:
        value = int(float(number) * scale)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (use e.g. 1k, 100k, 1M, 10M)") from None
    if value < 100:
        raise ValueError(f"size {text!r} is too small: at least 100 tasks and messages")
    return value


def format_size(size: int) -> str:
    """The inverse of :func:`parse_size` for round numbers: 1000000 -> '1M'."""
    for suffix, scale in (("M", 1_000_000), ("k", 1_000)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{suffix}"
    return str(size)


@dataclass(frozen=True)
class DataSpec:
    """One data set: ``size`` tasks and ``size`` messages, spread over ``planners`` planners.

    The planners are the message streams' agents too. ~1k of them at 100k rows and up, as the
    issue asks; fewer at small sizes so each planner still has ~100 tasks and messages (with 1k
    planners and 1k rows, "latest 50 messages" would return one).
    """

    size: int
    planners: int

    @classmethod
    def for_size(cls, size: int) -> DataSpec:
        return cls(size=size, planners=max(5, min(1_000, size // 100)))

    @property
    def label(self) -> str:
        return format_size(self.size)

    @property
    def per_planner(self) -> int:
        return self.size // self.planners

    @property
    def pending(self) -> int:
        """How many tasks are pending (the claim benchmark's pool)."""
        return sum(1 for r in range(100) if STATUS_BY_BUCKET[r] == "pending") * self.size // 100

    def key_planners(self, count: int = 32) -> list[str]:
        """An evenly spread sample of planners: every contender queries these same ones."""
        count = min(count, self.planners)
        return [planner_id(i * self.planners // count) for i in range(count)]


def planner_id(index: int) -> str:
    return f"planner-{index:04d}"


# ---------------------------------------------------------------------------------------------
# Text

_WORDS = tuple(
    [
        "the",
        "agent",
        "planner",
        "task",
        "worker",
        "result",
        "context",
        "file",
        "test",
        "module",
        "function",
        "error",
        "retry",
        "validate",
        "check",
        "update",
        "summary",
        "message",
        "tool",
        "call",
        "output",
        "input",
        "schema",
        "table",
        "index",
        "query",
        "database",
        "migration",
        "commit",
        "branch",
        "review",
        "patch",
        "design",
        "plan",
        "step",
        "goal",
        "constraint",
        "deadline",
        "user",
        "assistant",
        "system",
        "response",
        "request",
        "parse",
        "format",
        "json",
        "field",
        "value",
        "list",
        "item",
        "record",
        "stream",
        "position",
        "cursor",
        "page",
        "batch",
        "append",
        "claim",
        "lease",
        "owner",
        "status",
        "pending",
        "completed",
        "failed",
        "recorded",
        "because",
        "therefore",
        "however",
        "—",
        "résumé",
        "naïve",
        "café",
        "→",
        "✓",
        "数据",
        "ok",
        "done",
        "next",
        "then",
    ]
)


def corpus(chars: int = 6_000, seed: int = 5) -> str:
    """Deterministic prose to cut message and task text from (a little non-ASCII, as real text has)."""
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(_WORDS)
        if rng.random() < 0.08:
            word += "."
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:chars]


CORPUS = corpus()


def _message_length(h: int) -> int:
    """Message lengths: 70% short (40-200 chars), 25% medium (200-700), 5% long (800-1600)."""
    bucket = h % 100
    if bucket < 70:
        return 40 + (h // 100) % 160
    if bucket < 95:
        return 200 + (h // 100) % 500
    return 800 + (h // 100) % 800


@dataclass(frozen=True)
class Payload:
    """One message to append."""

    role: str
    content: str
    metadata: dict[str, Any]


def payloads(count: int, seed: int = 11) -> list[Payload]:
    """Messages for the append operations: same sizes as the generated ones, same for every contender."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        h = rng.randrange(1 << 30)
        start = h % 3_000
        out.append(
            Payload(
                role=("user", "assistant")[i % 2],
                content=CORPUS[start : start + _message_length(h)],
                metadata={"tokens": 10 + h % 900, "model": f"model-{h % 3}", "turn": i},
            )
        )
    return out


# Task statuses by bucket 0..99: 10% pending, the rest over the others, most long recorded.
STATUS_BY_BUCKET = (
    ["pending"] * 10 + ["claimed"] * 2 + ["completed"] * 18 + ["failed_validation"] * 5 + ["recorded"] * 65
)


Progress = Callable[[str], None]
"""Where a build reports how far it got (a line of text)."""


def task_specs(count: int, seed: int = 13) -> list[dict[str, Any]]:
    """Tasks for the enqueue operations, shaped and sized like the generated ones: ``create_task``'s
    keyword arguments (the peers store the same dict as their message)."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        h = rng.randrange(1 << 30)

        def text(offset: int, length: int, h: int = h) -> str:
            start = (h // offset) % 2500
            return CORPUS[start : start + length]

        out.append(
            {
                "description": f"Task {i}: " + text(1, 30 + h % 100),
                "acceptance_criteria": [
                    text(3, 15 + h % 35),
                    text(5, 15 + (h // 7) % 35),
                    text(11, 15 + (h // 13) % 35),
                ],
                "task_context": {
                    "step": i,
                    "repo": f"org/repo-{i % 50:02d}",
                    "files": [f"src/module_{i % 97}.py", f"tests/test_{i % 89}.py"],
                    "notes": text(17, 20 + (h // 19) % 50),
                },
                "input_images": [f"https://images.example.com/{i:08d}.png"] if h % 4 == 0 else [],
                "metadata": {"priority": h % 5, "source": "planner", "tags": ["generated", "bench"]},
            }
        )
    return out
