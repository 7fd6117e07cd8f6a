"""Our instruction texts for Mixture-of-Agents: how proposers use references, how the aggregator writes."""

from __future__ import annotations

from typing import Sequence

REFERENCE_INSTRUCTION = (
    "Other assistants have answered the same request; their responses are listed below as numbered "
    "references. Treat them as material, not as authority: check each one for mistakes, keep what is "
    "correct and useful, fill in what is missing, and then write your own complete response."
)

AGGREGATE_INSTRUCTION = (
    "You write the final answer. Several assistants answered the user's request; their responses are "
    "listed below as numbered references. Write one response that is better than each of them: settle "
    "disagreements by reasoning rather than by counting, leave out whatever is wrong, keep whatever is "
    "right, and answer the user directly, without mentioning the references or that there were several."
)


def with_references(instruction: str, references: Sequence[str], system: str | None = None) -> str:
    """A system message: the member's own system prompt, the instruction, then the numbered references."""
    listed = "\n\n".join(f"[{i}] {text.strip()}" for i, text in enumerate(references, start=1))
    head = f"{system.strip()}\n\n" if system else ""
    return f"{head}{instruction}\n\nReferences:\n\n{listed}"
