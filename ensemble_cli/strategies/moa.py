"""Mixture-of-Agents: layers of proposers, each seeing the previous layer's answers; an aggregator writes.

Layer 1: every proposer answers the prompt. Layers 2..L: every proposer answers again with the previous
layer's answers as numbered, anonymous references in a system message. Then the aggregator writes the
final answer from the last layer's references, streamed. All proposers of a layer run concurrently;
a layer starts only when the one before it has finished.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from ..config import MoaSettings
from ..errors import ConfigError, ProviderError, StrategyError
from ..events import Emit, ReplyReceived, RoundFinished, StreamDelta, ignore
from ..inputs import PromptItem
from ..providers.base import Completion, Message, Request
from ..usage import Tally
from .details import MoaDetails
from .base import Member, Reply, StrategyResult, ask_all, check_quorum
from .moa_prompts import AGGREGATE_INSTRUCTION, REFERENCE_INSTRUCTION, with_references



@dataclass(frozen=True)
class Reference:
    member: str
    text: str


class MixtureOfAgents:
    """Proposers and the aggregator come resolved (role settings applied) from the session."""

    def __init__(self, proposers: list[Member], aggregator: Member, settings: MoaSettings | None = None,
                 seed: int | None = None) -> None:
        if not proposers:
            raise ConfigError("moa: no proposers")
        self.settings = settings or MoaSettings()
        self.seed = seed
        self.proposers = [replace(p, role="proposer") for p in proposers]
        self.aggregator = replace(aggregator, role="aggregator")
        self.notes: list[str] = []

    def called(self) -> list[Member]:
        return [*self.proposers, self.aggregator]

    def _seed(self, layer: int, index: int) -> int | None:
        return None if self.seed is None else self.seed + 1000 * layer + index

    def _references_for(self, references: list[Reference], layer: int, index: int,
                        cuts: list[dict[str, Any]], who: str) -> list[str]:
        limit = self.settings.max_reference_chars
        ordered = list(references)
        if self.settings.shuffle_references:
            random.Random(self._seed(layer, index) if self.seed is not None else None).shuffle(ordered)
        texts = []
        for position, ref in enumerate(ordered, start=1):
            text = ref.text
            if limit is not None and len(text) > limit:
                cuts.append({"layer": layer, "to": who, "reference": position, "from_member": ref.member,
                             "chars": len(text), "kept": limit})
                text = text[:limit]
            texts.append(text)
        return texts

    def _messages(self, member: Member, item: PromptItem, instruction: str, references: list[str]) -> tuple[Message, ...]:
        conversation = [m for m in item.messages if m.role != "system"]
        system = with_references(instruction, references, member.system)
        return (Message("system", system), *conversation)

    async def run(self, item: PromptItem, emit: Emit = ignore, tally: Tally | None = None) -> StrategyResult:
        tally = Tally() if tally is None else tally
        layers: list[dict[str, Any]] = []
        cuts: list[dict[str, Any]] = []
        errors: list[str] = []
        references: list[Reference] = []
        for layer in range(1, self.settings.layers + 1):
            started = time.perf_counter()
            calls_before, tokens_before = tally.calls, (tally.prompt_tokens, tally.completion_tokens)
            jobs, given = [], []
            for index, member in enumerate(self.proposers):
                if references:
                    texts = self._references_for(references, layer, index, cuts, member.name)
                    messages = self._messages(member, item, self.settings.reference_instruction or REFERENCE_INSTRUCTION, texts)
                else:
                    texts, messages = [], member.messages(item.messages)
                given.append({"member": member.name, "references": texts})
                jobs.append((member, Request(messages, max_tokens=member.max_tokens, temperature=member.temperature,
                                             seed=self._seed(layer, index))))
            replies = await ask_all(jobs, tally, self._announcer(item, layer, emit))
            answers: list[dict[str, Any]] = []
            failed: list[dict[str, Any]] = []
            for index, reply in enumerate(replies):
                if not reply.ok:
                    failed.append({"member": reply.member.name, "error": reply.error})
                    errors.append(f"layer {layer}: member '{reply.member.name}': {reply.error}")
                    continue
                completion = reply.completions[0]
                answers.append({"member": reply.member.name, "text": completion.text,
                                "temperature": reply.member.temperature, "seed": self._seed(layer, index),
                                "usage": {"prompt_tokens": completion.usage.prompt_tokens,
                                          "completion_tokens": completion.usage.completion_tokens},
                                "latency_s": round(completion.latency_s, 4)})
            check_quorum(len(answers), len(self.proposers), self.settings.quorum, f"moa layer {layer}",
                         [f"member '{f['member']}': {f['error']}" for f in failed], "moa.quorum")
            layers.append({
                "layer": layer, "answers": answers, "failed": failed, "references": given,
                "totals": {"calls": tally.calls - calls_before,
                           "prompt_tokens": tally.prompt_tokens - tokens_before[0],
                           "completion_tokens": tally.completion_tokens - tokens_before[1],
                           "wall_s": round(time.perf_counter() - started, 4)},
            })
            emit(RoundFinished(item.id, layer, {"answers": len(answers), "failed": len(failed)}))
            references = [Reference(a["member"], a["text"]) for a in answers]
        final, aggregator_refs = await self._aggregate(item, references, cuts, tally, emit)
        output = final.text
        details = {
            "layers": layers,
            "aggregator": {"member": self.aggregator.name, "references": aggregator_refs},
            "truncated": cuts,
            "self_moa": self.settings.self_moa,
            "shuffle_references": self.settings.shuffle_references,
            "proposers": [{"name": p.name, "temperature": p.temperature, "max_tokens": p.max_tokens}
                          for p in self.proposers],
            "finish_reason": final.finish_reason,
        }
        return StrategyResult(output=output, details=MoaDetails.model_validate(details), tally=tally, errors=errors)

    @staticmethod
    def _announcer(item: PromptItem, layer: int, emit: Emit) -> Callable[[Reply], None]:
        """Shows each proposer's reply as it arrives."""
        def announce(reply: Reply) -> None:
            text = reply.completions[0].text if reply.ok else f"failed: {reply.error}"
            emit(ReplyReceived(item.id, reply.member.name, layer, text, stage="layer"))
        return announce

    async def _aggregate(self, item: PromptItem, references: list[Reference], cuts: list[dict[str, Any]],
                         tally: Tally, emit: Emit) -> tuple[Completion, list[str]]:
        texts = self._references_for(references, self.settings.layers + 1, 0, cuts, self.aggregator.name)
        instruction = self.settings.aggregate_instruction or AGGREGATE_INSTRUCTION
        request = Request(self._messages(self.aggregator, item, instruction, texts),
                          max_tokens=self.aggregator.max_tokens, temperature=self.aggregator.temperature,
                          seed=self._seed(self.settings.layers + 1, 0))
        final: Completion | None = None
        try:
            async for piece in self.aggregator.provider.stream(request):
                if isinstance(piece, Completion):
                    final = piece
                else:
                    emit(StreamDelta(item.id, piece))
        except ProviderError as exc:
            tally.add_failure(exc.retries)
            raise
        if final is None:
            raise ProviderError(f"member '{self.aggregator.name}': the stream ended without its final reply")
        tally.add([final])
        if not final.text.strip():
            raise StrategyError(f"moa: the aggregator '{self.aggregator.name}' returned an empty answer "
                                f"(finish reason {final.finish_reason!r})")
        return final, texts
