"""`ensemble bench`: run every arm on a scored dataset and report accuracy, cost and latency; `bench report`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import ConfigError, ExitStatus
from ..sinks.console import stderr_console
from .boundary import error

HELP = ("Does an ensemble pay? Run a single greedy call and every strategy arm on a dataset with gold answers, "
        "and report accuracy (with intervals and a paired test against the single call), calls, tokens, cost, "
        "latency and the accuracy-cost frontier.")

bench_app = typer.Typer(help=HELP, invoke_without_command=True, no_args_is_help=False)


@bench_app.callback()
def bench(
    ctx: typer.Context,
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="JSONL or CSV file with gold answers (ours, GSM8K, ARC, MMLU), or a shipped set: arith, mc.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Bench YAML: shared run keys, 'score' (auto, number, choice, exact, contains, judge), 'judge' and 'arms' (default arms without it).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Run directory for records, summary.json, report.md and the chart (default bench-DATASET).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Only the first N items.")] = None,
    resume: Annotated[bool, typer.Option("--resume/--no-resume", help="Continue a bench in RUN_DIR where it stopped.")] = False,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", min=1, help="Most tokens per reply, for every arm.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet/--no-quiet", "-q", help="No progress or table on stderr.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every arm and print what each would call and cost at worst; make no call.")] = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from ..bench.arms import load_plan  # the bench stack (scipy, matplotlib) loads only when used
    from ..bench.datasets import load_dataset
    from ..bench.progress import BenchProgress
    from ..bench.report import CHART, REPORT, rich_table, write_report
    from ..bench.runner import run_bench
    from ..formatting import count

    if dataset is None:
        raise ConfigError("bench needs --dataset FILE (or a shipped set: arith, mc); see `ensemble bench --help`")
    data = load_dataset(dataset)
    items = data.items[:limit] if limit else data.items
    overrides = {"max_tokens": max_tokens} if max_tokens else {}
    plan = load_plan(config, data.default_scoring(), overrides)
    if dry_run:
        _dry_run(plan, items, as_json=output is not None and str(output) == "-")
        return
    run_dir = output or Path(f"bench-{data.name}")
    console = stderr_console()
    with BenchProgress(console, quiet) as shown:
        meta = asyncio.run(run_bench(plan, data, items, run_dir, resume, shown.for_arm))
    for arm in meta["arms"]:
        if arm.get("skipped"):
            shown.say(f"skipped {arm['name']}: {arm['skipped']}")
    summary = write_report(run_dir)
    if not quiet:
        console.print(rich_table(summary))
        console.print(f"report: {run_dir / REPORT}, chart: {run_dir / CHART}", highlight=False)
    if shown.failures:
        error(f"{count(shown.failures, 'item')} failed in some arm; they count as wrong; records are in {run_dir}")
        raise typer.Exit(int(ExitStatus.PARTIAL))


def _dry_run(plan: Any, items: list, as_json: bool = False) -> None:
    """One row per arm: its calls, tokens and dollars at worst over the items, and what the cache holds; with
    ``-o -``, one JSON object (``arms``: each arm's plan, ``calls`` and ``cost_usd`` in all)."""
    import json

    from rich.table import Table

    from ..bench.runner import plan_bench
    from ..formatting import count, usd
    from ..sinks.console import stdout_console

    plans = plan_bench(plan, items)
    costs = [arm.get("cost_usd") for arm in plans]
    total = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    if as_json:
        print(json.dumps({"dry_run": True, "items": len(items), "arms": plans,
                          "calls": sum(arm.get("calls") or 0 for arm in plans), "cost_usd": total}))
        return
    table = Table(title=f"bench dry run: {count(len(items), 'item')}, calls at worst", title_justify="left")
    for column in ("arm", "strategy", "calls", "prompt tok", "completion tok", "cost", "cached", "note"):
        table.add_column(column)
    for arm in plans:
        note = (f"recounts {arm['recount_of']}: no call" if arm.get("recount_of") else
                f"skipped: {arm['skipped']}" if arm.get("skipped") else "")
        table.add_row(arm["arm"], arm["strategy"], str(arm.get("calls", "-")), str(arm.get("prompt_tokens", "-")),
                      str(arm.get("completion_tokens", "-")), usd(arm.get("cost_usd")),
                      f"{arm.get('cached_calls', 0)}/{arm.get('known_calls', 0)}", note)
    console = stdout_console()
    console.print(table)
    console.print(f"dry run: {count(sum(arm.get('calls') or 0 for arm in plans), 'call')} at most, {usd(total)} at worst; "
                  "no call made", highlight=False)


@bench_app.command("report")
def report(
    run_dir: Annotated[Path, typer.Argument(help="A bench run directory.")],
    quiet: Annotated[bool, typer.Option("--quiet/--no-quiet", "-q", help="No table on stderr.")] = False,
) -> None:
    """Re-render summary.json, report.md and the chart from the records in RUN_DIR, without a call."""
    from ..bench.report import CHART, REPORT, rich_table, write_report

    summary = write_report(run_dir)
    if not quiet:
        console = stderr_console()
        console.print(rich_table(summary))
        console.print(f"report: {run_dir / REPORT}, chart: {run_dir / CHART}", highlight=False)


@bench_app.command("tune")
def tune(
    run_dir: Annotated[Path, typer.Argument(help="A bench run directory.")],
    holdout: Annotated[float, typer.Option("--holdout", min=0.0, max=0.9, help="Share of the items held out: tuned on the rest, reported on these.")] = 0.3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the split into tuning and held-out items.")] = 0,
    tolerance: Annotated[float, typer.Option("--tolerance", min=0.0, help="Accuracy points below the reference a setting may lose and still be chosen.")] = 0.0,
    target: Annotated[Optional[str], typer.Option("--target", help="The arm whose accuracy to keep (default: the most accurate on the tuning items).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the chosen setting's run config here (default RUN_DIR/tuned.yaml).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet/--no-quiet", "-q", help="No table on stderr.")] = False,
) -> None:
    """Choose the cheapest setting that keeps the accuracy, replayed from RUN_DIR's records (adaptive stopping,
    cascades of its arms, fitted member weights), tuned on some items and reported on the others; no call."""
    from rich.table import Table

    from ..bench.tune import HELD_OUT_COLUMNS, TUNE_CHART, TUNE_REPORT, held_out_rows
    from ..bench.tune import tune as tune_run
    from ..bench.tune import write_tuning
    from ..formatting import count

    result = tune_run(run_dir, holdout, seed, tolerance, target)
    config_path = output or run_dir / "tuned.yaml"
    write_tuning(run_dir, result, config_path)
    if quiet:
        return
    console = stderr_console()
    held = len(result["held_out_items"])
    shown_on = f"shown on {held} held out" if held else "shown on the tuning items (--holdout 0)"
    table = Table(title=f"bench tune: {result['dataset']}, chosen on {count(len(result['tune_items']), 'item')}, "
                  f"{shown_on}")
    for column in HELD_OUT_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in held_out_rows(result):
        table.add_row(*row)
    console.print(table)
    replayed = sum(1 for s in result["settings"] if s["kind"] != "arm")
    console.print(f"{count(replayed, 'setting')} replayed from the records, 0 calls; "
                  f"chosen: {result['chosen']['name']} (keeps the accuracy of {result['reference']} on the tuning "
                  f"items); config: {config_path}; report: {run_dir / TUNE_REPORT}, chart: {run_dir / TUNE_CHART}",
                  highlight=False)
