"""Committee members grouped by distribution, and the probe that checks a remote member before use.

A *group* is a set of identical members (same endpoint, model, system prompt and temperature),
decoded once and counted with its multiplicity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import AuthError, ProviderError
from ..calls import Message, Request
from ..decoding import pairs
from ..usage import Tally
from .base import Member

NO_LOGPROB = -9999.0


@dataclass
class Group:
    index: int
    members: list[Member]

    @property
    def lead(self) -> Member:
        return self.members[0]

    @property
    def name(self) -> str:
        return self.lead.name if len(self.members) == 1 else f"{self.lead.name} x{len(self.members)}"

    @property
    def weight(self) -> float:
        return sum(m.weight for m in self.members)


def group_members(members: list[Member]) -> list[Group]:
    groups: dict[tuple, Group] = {}
    for member in members:
        key = member.distribution_key()
        if key not in groups:
            groups[key] = Group(len(groups), [])
        groups[key].members.append(member)
    return list(groups.values())


@dataclass(frozen=True)
class ProbeReport:
    ok: bool
    reason: str = ""
    top_alternatives: int = 0
    call_failed: bool = False
    """The probe could not be made (the server is down), as opposed to a server that lacks something."""


async def probe(member: Member, conversation: tuple[Message, ...], top_k: int, tally: Tally) -> ProbeReport:
    """Two small calls: real logprobs with enough alternatives, then an exact prefix continuation.

    The first call decodes two greedy tokens; the second continues after the first of them and must
    give the second again. A server that ignores the prefix starts the answer over instead.
    """
    messages = member.messages(conversation)
    try:
        first = (await member.provider.complete(Request(messages, max_tokens=2, top_logprobs=top_k)))[0]
        tally.add([first])
        if not first.tokens:
            if first.text:
                return ProbeReport(False, "no log-probabilities came back (the server ignores logprobs/top_logprobs)")
            return ProbeReport(True, top_alternatives=top_k)  # an empty reply: nothing to refute
        if len(first.tokens) < 2:
            second = None
        else:
            head = first.tokens[0].text
            second = (await member.provider.complete(Request(messages, max_tokens=1, top_logprobs=top_k, prefix=head)))[0]
            tally.add([second])
    except ProviderError as exc:
        tally.add_failure(exc.retries)
        if isinstance(exc, AuthError):
            raise  # a rejected key is fatal for the whole run, not one member's shortcoming
        return ProbeReport(False, f"the probe call failed: {exc.template}", call_failed=True)
    tops = [t.top for t in first.tokens]
    if any(not top for top in tops):
        return ProbeReport(False, "no top log-probabilities came back (the provider ignores top_logprobs)")
    values = [lp for top in tops for _, lp in pairs(top)]
    if all(v == 0.0 for v in values) or all(v <= NO_LOGPROB for v in values) or any(math.isnan(v) for v in values):
        return ProbeReport(False, "the log-probabilities are placeholders (all 0 or -9999), not real values")
    alternatives = min(len(top) for top in tops)
    if alternatives < min(2, top_k):
        return ProbeReport(False, f"only {alternatives} top alternative(s) per token; need at least 2")
    if second is None:
        return ProbeReport(True, top_alternatives=alternatives)
    head, following = first.tokens[0].text, first.tokens[1].text
    got = second.tokens[0].text if second.tokens else second.text
    if got.strip() != following.strip():
        if got.strip() and got.strip() == head.strip():
            return ProbeReport(False, "the reply restarts the answer instead of continuing the assistant prefix")
        return ProbeReport(False, f"continuing the prefix gave {got!r}, not the greedy next token {following!r}")
    return ProbeReport(True, top_alternatives=alternatives)


def needs_probe(member: Member) -> bool:
    return not member.provider.capabilities.verified
