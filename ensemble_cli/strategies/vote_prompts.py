"""The instruction texts vote sends beyond the user's prompt: debate rounds, rankings, judging."""

from __future__ import annotations

from typing import Sequence

REASONING_CHARS = 300


def debate(question: str, others: Sequence[tuple[str | None, str]]) -> str:
    """Round 2+: the question again, with the other members' previous answers, anonymised."""
    lines = [question, "", "Other agents answered this question independently:"]
    for index, (answer, reply) in enumerate(others, start=1):
        reasoning = " ".join(reply.split())[-REASONING_CHARS:]
        lines.append(f"Agent {index}: answer: {answer if answer is not None else '(none given)'}. Reasoning: {reasoning}")
    lines += ["", "Weigh their answers critically against your own reasoning. If you find an error, correct it; "
              "if you still disagree, keep your answer. Then give your final answer."]
    return "\n".join(lines)


def ranking(question: str, candidates: Sequence[str]) -> str:
    listed = "\n".join(f"{i}. {c}" for i, c in enumerate(candidates, start=1))
    return (f"{question}\n\nCandidate answers:\n{listed}\n\nRank every candidate from most to least likely to be "
            f"correct. Reply with the candidate numbers only, best first, separated by '>', for example: "
            f"{' > '.join(str(i) for i in range(len(candidates), 0, -1))}")


def consistency(question: str, replies: Sequence[str]) -> str:
    listed = "\n\n".join(f"Response {i}:\n{r.strip()}" for i, r in enumerate(replies, start=1))
    return (f"Question: {question}\n\n{listed}\n\nWhich response agrees most with the others, i.e. is the "
            f"most consistent with the majority? Reply with the number of that response only.")


def grouping(question: str, replies: Sequence[str]) -> str:
    listed = "\n\n".join(f"Response {i}:\n{r.strip()}" for i, r in enumerate(replies, start=1))
    return (f"Question: {question}\n\n{listed}\n\nGroup the responses that give the same final answer, even if "
            f"worded differently. Reply with one line per group listing the response numbers separated by "
            f"commas, and nothing else. Example:\n1, 3\n2\n4, 5")
