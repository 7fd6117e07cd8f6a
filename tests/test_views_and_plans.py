"""The pure pieces under `ensemble show`, `ensemble cache` and `--dry-run`, each by its own module: show's
percentiles and exact dollar sums (sinks/record_views.py), the cache figures as JSON (sinks/cache_views.py),
the ages `cache prune` reads (cli/cache_cmd.py), the worst cases a strategy plans (strategies/planning.py),
the help screens' value types (cli/help_types.py), and the number reader's canonical form and the
identifiers it never reads (number_reading.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest
import typer
from scripted import ScriptedProvider

from ensemble_cli.cache import CacheStats, ModelEntries
from ensemble_cli.calls import Request, user_prompt
from ensemble_cli.cli import help_types  # noqa: F401  (applied on import, as cli/__init__ does)
from ensemble_cli.cli.cache_cmd import age_seconds
from ensemble_cli.number_reading import canonical, identifier_spans
from ensemble_cli.providers.base import Capabilities
from ensemble_cli.sinks.cache_views import as_json
from ensemble_cli.sinks.record_views import dollars, percentile, summarise
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.planning import decoded, sampled


def test_percentiles_are_nearest_rank():
    values = [0.4, 0.1, 0.3, 0.2, 10.0]
    assert percentile(values, 0.5) == 0.3 and percentile(values, 0.95) == 10.0 and percentile(values, 0.2) == 0.1
    assert percentile([], 0.5) is None


def test_dollars_sum_exactly_and_an_unknown_cost_stays_unknown():
    assert dollars([0.1, 0.2]) == 0.3  # as floats, 0.1 + 0.2 is 0.30000000000000004
    assert dollars([0.000054, 0.000001]) == 0.000055
    assert dollars([0.1, None]) is None and dollars([]) == 0.0


def test_the_summary_sums_each_model_as_it_sums_the_whole():
    def usage(calls, prompt, completion, cost, cached=0):
        return {"calls": calls, "cached_calls": cached, "prompt_tokens": prompt, "completion_tokens": completion,
                "cost_usd": cost}

    records = [
        {"status": "ok", "usage": {**usage(3, 10, 5, 0.1, cached=1), "failed_calls": 0, "wall_s": 1.0,
                                   "by_model": {"openai/a": usage(2, 6, 3, 0.1, cached=1), "local/b": usage(1, 4, 2, 0)}}},
        {"status": "error", "usage": {**usage(1, 4, 0, None), "failed_calls": 1, "wall_s": 3.0,
                                      "by_model": {"openai/a": usage(1, 4, 0, None)}}},
    ]
    summary = summarise(records, [{"status": "rejected"}, {"status": "cancelled"}, {"status": "rejected"}])
    assert (summary["records"], summary["ok"], summary["failed"]) == (2, 1, 1)
    assert (summary["calls"], summary["cached_calls"], summary["failed_calls"], summary["tokens"]) == (4, 1, 1, 19)
    assert summary["cost_usd"] is None and summary["latency_s"] == {"p50": 1.0, "p95": 3.0}
    assert (summary["requests_refused"], summary["requests_cancelled"]) == (2, 1)
    assert summary["models"]["openai/a"] == {"calls": 3, "cached_calls": 1, "prompt_tokens": 10,
                                             "completion_tokens": 3, "tokens": 13, "cost_usd": None}
    assert summary["models"]["local/b"]["cost_usd"] == 0.0 and list(summary["models"]) == ["local/b", "openai/a"]


def test_cache_figures_as_json_show_moments_as_utc_times():
    figures = CacheStats("c.sqlite3", True, entries=2, bytes=4096, hits=3, oldest=0.0, newest=86400.0, last_used=None,
                         models=(ModelEntries("openai", "a", 2, 3),))
    import dataclasses

    shown = as_json(dataclasses.asdict(figures))
    assert shown["oldest"] == "1970-01-01T00:00:00+00:00" and shown["newest"] == "1970-01-02T00:00:00+00:00"
    assert shown["last_used"] is None and list(shown["models"]) == [{"provider": "openai", "model": "a", "entries": 2,
                                                                     "hits": 3}]


@pytest.mark.parametrize(("text", "seconds"), [("90m", 5400), (" 1.5h ", 5400), ("30d", 30 * 86400), ("2w", 14 * 86400),
                                               ("45s", 45)])
def test_ages_read_a_number_and_a_unit(text, seconds):
    assert age_seconds(text) == seconds


@pytest.mark.parametrize("text", ["30", "d", "-1d", "1y", "1 d 2h", ""])
def test_an_age_without_one_number_and_unit_is_refused(text):
    with pytest.raises(typer.BadParameter, match="is not an age"):
        age_seconds(text)


def _member(honours_n: bool, batched: bool = False) -> Member:
    capabilities = Capabilities(max_top_logprobs=5, prefix_continuation=True, honours_n=honours_n, batched=batched)
    return Member("m", ScriptedProvider(capabilities=capabilities), max_tokens=10)


def test_samples_are_one_call_with_n_where_n_is_honoured_else_a_seeded_call_each():
    request = Request(user_prompt("2 + 2?"), max_tokens=10, temperature=0.7, seed=5)
    one = sampled(_member(honours_n=True), "samples", request, 4)
    assert (one.calls, one.prompts, one.completion_tokens) == (1, 1, 40) and [r.n for r in one.exact] == [4]
    each = sampled(_member(honours_n=False), "samples", request, 4, extra_prompt_tokens=3)
    assert (each.calls, each.prompts, each.completion_tokens, each.extra_prompt_tokens) == (4, 4, 40, 12)
    assert [r.seed for r in each.exact] == [5, 6, 7, 8]
    assert sampled(_member(honours_n=False), "later", request, 2, exact=False).exact == ()


def test_decoding_is_a_batched_step_per_token_in_process_and_a_growing_call_per_token_remotely():
    request = Request(user_prompt("2 + 2?"), max_tokens=4)
    local = decoded(_member(honours_n=True, batched=True), "steps", request, sequences=3, steps=4)
    assert (local.calls, local.prompts, local.completion_tokens, local.extra_prompt_tokens) == (4, 1, 12, 0)
    remote = decoded(_member(honours_n=True), "steps", request, sequences=3, steps=4)
    assert (remote.calls, remote.prompts, remote.completion_tokens) == (12, 12, 12)
    assert remote.extra_prompt_tokens == 3 * (0 + 1 + 2 + 3)  # the prefix sent back grows a token per call


def test_help_shows_a_value_type_only_beside_options_that_take_a_value():
    import click

    from ensemble_cli.cli import app

    group = typer.main.get_command(app)
    command = group.commands["cache"].commands["stats"]  # type: ignore[attr-defined]
    ctx = click.Context(command)
    options = {param.name: param for param in command.params}
    if not hasattr(options["as_json"], "display_type_rich"):
        pytest.skip("this Typer labels no value types")
    assert options["as_json"].display_type_rich(ctx) is None  # a flag takes no value: no type shown
    assert options["cache_dir"].display_type_rich(ctx)  # an option that takes one shows its type


def test_the_number_reader_writes_numbers_canonically_and_knows_identifiers():
    assert [canonical(Fraction(1, 2)), canonical(Fraction(3)), canonical(Fraction(-5, 4))] == ["0.5", "3", "-1.25"]
    text = "call 555-1234 on 2024-05-01 at 10:30"
    assert {text[a:b] for a, b in identifier_spans(text)} == {"555-1234", "2024-05-01", "10:30"}
