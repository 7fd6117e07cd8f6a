"""A dry run: what a prepared run would spend at worst, worked out before any call.

``plan_run`` asks the strategy's spec for each prompt's ``Planned`` calls (``strategies/planning.py``),
counts the prompt tokens with the model's tokenizer where one is at hand (``Provider.prompt_tokens``: the
in-process model) and estimates them as the budget does elsewhere, takes the completion tokens at
``max_tokens``, prices both from the price table (unknown where a price is missing, never 0), counts the
exactly known calls the cache already holds, and says whether ``--budget`` would stop the run. The plan is
one JSON-ready dict; ``rows`` and ``render`` show it as a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import catalog
from .errors import config_key
from .errors import render as render_settings
from .formatting import count, usd
from .providers.metered import MeteredProvider, estimate_prompt_tokens

if TYPE_CHECKING:
    from rich.console import RenderableType

    from .inputs import PromptItem
    from .session import Prepared, Session
    from .strategies.planning import Planned


@dataclass
class Line:
    """One member's calls of one kind, over every prompt."""

    member: str
    role: str
    backend: str
    what: str
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    counted: bool = True
    """Its prompt tokens were counted by the model's tokenizer (else estimated)."""
    cost_usd: float | None = 0.0
    exact: int = 0
    cached: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"member": self.member, "role": self.role, "backend": self.backend, "calls": self.calls,
                "what": self.what, "prompt_tokens": self.prompt_tokens, "prompt_tokens_counted": self.counted,
                "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd,
                "known_calls": self.exact, "cached_calls": self.cached}


def made_once(planned: "Planned", seen: set[str]) -> "Planned":
    """``planned`` as a run makes it: a call identical by construction to one already planned for the prompt
    (``same_call_key``, as ``ask_all`` shares it) is not made again, and ``n`` greedy choices are one."""
    from .cache import same_call_key

    if not planned.exact:
        return planned
    provider = planned.member.provider
    keys = [same_call_key(provider, request) for request in planned.exact]
    fresh = []
    for request, key in zip(planned.exact, keys):
        if key is None or key not in seen:
            fresh.append(request)
        if key is not None:
            seen.add(key)
    completion = planned.completion_tokens
    if len(fresh) == 1 and fresh[0].n > 1 and fresh[0].temperature == 0 and keys[0] is not None:
        completion = fresh[0].max_tokens  # one greedy choice, repeated
    share = len(fresh) / len(planned.exact)  # the exact requests are one per call (``planning.sampled``)
    return replace(planned, calls=len(fresh), prompts=round(planned.prompts * share),
                   completion_tokens=round(completion * share),
                   extra_prompt_tokens=round(planned.extra_prompt_tokens * share), exact=tuple(fresh))


@dataclass
class Totals:
    lines: dict[tuple[str, str], Line] = field(default_factory=dict)

    def add(self, planned: "Planned", session: "Session") -> None:
        member, provider = planned.member, planned.member.provider
        key = (member.name, planned.what)
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = Line(member.name, member.role, f"{provider.name}/{provider.model}", planned.what)
        if planned.calls == 0:
            return
        counted = provider.prompt_tokens(planned.request)
        if counted is None:
            line.counted = False
        prompt = (counted if counted is not None else estimate_prompt_tokens(planned.request)) * planned.prompts
        prompt += planned.extra_prompt_tokens
        line.calls += planned.calls
        line.prompt_tokens += prompt
        line.completion_tokens += planned.completion_tokens
        price = session.meter.price(provider)
        if price is None or line.cost_usd is None:
            line.cost_usd = None
        else:
            line.cost_usd += price.cost(prompt, planned.completion_tokens)
        line.exact += len(planned.exact)
        if isinstance(provider, MeteredProvider):
            line.cached += sum(1 for request in planned.exact if provider.cached(request))


def plan_run(session: "Session", prepared: "Prepared", items: Sequence["PromptItem"],
             namer: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The worst case of running ``prepared`` over ``items``, as one JSON-ready dict. No call is made.
    ``namer`` names a setting in the notes as the front end does (``--temperature`` on the command line)."""
    spec = catalog.spec(prepared.info.strategy)
    totals = Totals()
    if spec.plan is not None:
        for item in items:
            seen: set[str] = set()
            for planned in spec.plan(prepared.strategy, item):
                totals.add(made_once(planned, seen), session)
    lines = list(totals.lines.values())
    known = spec.plan is not None
    cost: float | None = sum(line.cost_usd for line in lines if line.cost_usd is not None)
    if not known or any(line.cost_usd is None for line in lines):
        cost = None
    budget = session.config.budget
    plan: dict[str, Any] = {
        "dry_run": True, "strategy": spec.name, "prompts": len(items),
        "members": prepared.info.members,
        "calls": sum(line.calls for line in lines) if known else None,
        "calls_per_prompt": (sum(line.calls for line in lines) / len(items) if items else 0) if known else None,
        "prompt_tokens": sum(line.prompt_tokens for line in lines) if known else None,
        "completion_tokens": sum(line.completion_tokens for line in lines) if known else None,
        "prompt_tokens_counted": all(line.counted for line in lines),
        "cost_usd": cost, "known_calls": sum(line.exact for line in lines),
        "cached_calls": sum(line.cached for line in lines),
        "budget_usd": budget,
        "budget_stops": None if budget is None or cost is None else cost > budget,
        "lines": [line.as_dict() for line in lines],
        "notes": [render_settings(note, namer or config_key) for note in prepared.notes],
    }
    if not known:
        plan["notes"].append(f"{spec.name} does not say what it would call; calls and cost unknown")
    return plan


def summary_lines(plan: dict[str, Any]) -> list[str]:
    """The plan's totals in words."""
    calls = "unknown" if plan["calls"] is None else f"{plan['calls']} at most ({plan['calls_per_prompt']:.1f} per prompt)"
    tokens = ("unknown" if plan["prompt_tokens"] is None else
              f"{plan['prompt_tokens']} prompt ({'counted' if plan['prompt_tokens_counted'] else 'estimated'}) + "
              f"{plan['completion_tokens']} completion at max_tokens")
    lines = [f"dry run: {plan['strategy']} over {count(plan['prompts'], 'prompt')}, no call made",
             f"calls: {calls}", f"tokens: {tokens}",
             f"cost: {usd(plan['cost_usd'])} at worst" + ("" if plan["cost_usd"] is not None else
                                                         " (a member's model has no price)"),
             f"cache: holds {plan['cached_calls']} of the {count(plan['known_calls'], 'call')} known before any reply"]
    if plan["budget_usd"] is not None:
        if plan["budget_stops"] is None:
            lines.append(f"budget {usd(plan['budget_usd'])}: cannot tell (the worst case is unknown)")
        elif plan["budget_stops"]:
            lines.append(f"budget {usd(plan['budget_usd'])}: the worst case passes it; the run may stop early "
                         "(exit 5, records kept)")
        else:
            lines.append(f"budget {usd(plan['budget_usd'])}: the worst case fits")
    return lines


def render(plan: dict[str, Any]) -> "RenderableType":
    """The plan as a table of members' calls and its totals below."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title="dry run: calls at worst", title_justify="left")
    for column in ("member", "role", "backend", "calls", "what", "prompt tok", "completion tok", "cost", "cached"):
        table.add_column(column)
    for line in plan["lines"]:
        prompt = f"{line['prompt_tokens']}" + ("" if line["prompt_tokens_counted"] else " (est.)")
        table.add_row(line["member"], line["role"], line["backend"], str(line["calls"]), line["what"], prompt,
                      str(line["completion_tokens"]), usd(line["cost_usd"]),
                      f"{line['cached_calls']}/{line['known_calls']}")
    return Group(table, Text("\n".join(summary_lines(plan))))
