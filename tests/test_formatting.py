"""One money formatter, one p-value formatter and one count formatter, and every view that shows them:
the usage line, the results table (budget-stopped prompts included), the bench report, budget errors."""

from __future__ import annotations

import json

import pytest
from fake_server import ReplyModel
from typer.testing import CliRunner

from ensemble_cli.bench.report import rows
from ensemble_cli.cli import app
from ensemble_cli.errors import BudgetExceeded
from ensemble_cli.formatting import count, p_value, usd
from ensemble_cli.sinks.display import usage_line

runner = CliRunner()


@pytest.mark.parametrize(("amount", "shown"), [
    (5.4e-05, "$0.000054"), (0.00185, "$0.00185"), (1.5, "$1.50"), (0, "$0.00"), (0.0, "$0.00"), (-0.0, "$0.00"),
    (12.0, "$12.00"), (0.1 + 0.2, "$0.30"), (1e-09, "$0.000000001"), (1234.5678, "$1234.5678"),
    (3e-12, "$0.00"), (None, "unknown"), (2.5e-07, "$0.00000025"),
])
def test_dollars_are_exact_and_never_in_scientific_notation(amount, shown):
    assert usd(amount) == shown


@pytest.mark.parametrize(("p", "shown"), [(2.84e-14, "<0.001"), (0.0009, "<0.001"), (0.001, "0.001"),
                                          (0.6875, "0.688"), (1.0, "1.000"), (None, "")])
def test_p_values(p, shown):
    assert p_value(p) == shown


@pytest.mark.parametrize(("n", "noun", "shown"), [(1, "response", "1 response"), (2, "response", "2 responses"),
                                                   (0, "call", "0 calls"), (1, "retry", "1 retry"),
                                                   (3, "retry", "3 retries"), (2, "day", "2 days")])
def test_counts_agree_with_their_nouns(n, noun, shown):
    assert count(n, noun) == shown


def test_budget_error_and_usage_line_use_the_formatter():
    assert "budget of $0.00185 reached" in str(BudgetExceeded(0.00185, 0.0000543, 0.0002))
    assert "$0.0000543 spent" in str(BudgetExceeded(0.00185, 0.0000543, 0.0002))
    line = usage_line([{"usage": {"calls": 1, "prompt_tokens": 3, "completion_tokens": 1, "cost_usd": 5.4e-05,
                                  "by_model": {"openai/x": {"cost_usd": 5.4e-05}}}}])
    assert line == "usage: 1 call, 4 tokens, cost $0.000054"


def test_bench_report_rows_show_plain_dollars_and_p_values():
    arm = {"name": "vote", "recount_of": None, "accuracy": 0.5, "accuracy_low": 0.3, "accuracy_high": 0.7,
           "correct": 5, "items": 10, "unextracted": 0, "failed": 0, "calls_per_item": 1.0,
           "prompt_tokens_per_item": 10, "completion_tokens_per_item": 2, "cost_usd": 5.4e-05,
           "usd_per_correct": 1.08e-05, "wall_s": 1.0, "latency_p50_s": 0.1, "latency_p95_s": 0.2, "pareto": True,
           "vs_baseline": {"difference": 0.1, "low": -0.1, "high": 0.3, "p_value": 2.84e-14}}
    row = rows({"arms": [arm]})[0]
    assert "$0.000054" in row and "$0.0000108" in row and "<0.001" in row
    assert not any("e-" in cell for cell in row)


def test_a_prompt_stopped_by_the_budget_is_a_row_of_the_results_table(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(lambda ctx: "four")})
    inputs = tmp_path / "prompts.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"question {i}"}) + "\n" for i in range(4)))
    config = tmp_path / "run.yaml"
    config.write_text('prices:\n  "vllm/a": {input: 0, output: 1000}\nmax_tokens: 8\n')
    result = runner.invoke(app, ["vote", "-c", str(config), "--provider", "vllm", "--model", "a", "--base-url",
                                 server.base_url, "-i", str(inputs), "-o", str(tmp_path / "out.jsonl"), "--budget",
                                 "0.0095", "--parallel-prompts", "1"])
    assert result.exit_code == 5
    table = result.stderr[result.stderr.index("results"):]
    assert "q0" in table and "q1" in table and "q2" in table and "stopped" in table
    assert "$0.0095" in result.stderr and "e-0" not in result.stderr
