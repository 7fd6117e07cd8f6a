"""ensemble bench: loaders in the public formats, scoring, statistics, Pareto marks, revote, report, resume."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fake_server import ReplyModel
from typer.testing import CliRunner

from ensemble_cli.bench.datasets import load_dataset, shipped_sets
from ensemble_cli.bench import math_scoring
from ensemble_cli.bench.arms import load_plan
from ensemble_cli.bench.scoring import gold_key, score_record
from ensemble_cli.bench.stats import mcnemar_exact, paired, pareto, wilson
from ensemble_cli.cli import app
from ensemble_cli.errors import ConfigError, InputError
from ensemble_cli.extraction import extract_number
from ensemble_cli.strategies.vote_recount import revote_record

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# Loaders

def test_gsm8k_jsonl(tmp_path):
    path = write(tmp_path / "gsm8k.jsonl", json.dumps({
        "question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May. "
                    "How many clips did Natalia sell altogether in April and May?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
                  "altogether in April and May.\n#### 72"}) + "\n" + json.dumps({
        "question": "How much?", "answer": "It costs 1,200 dollars.\n#### 1,200"}) + "\n")
    data = load_dataset(str(path))
    assert [i.answer for i in data.items] == ["72", "1200"]
    assert data.format == "gsm8k" and data.default_scoring() == "number"
    assert data.items[0].id == "gsm8k-1" and data.items[0].messages[0].content.startswith("Natalia")


def test_arc_and_mmlu_jsonl(tmp_path):
    arc = {"id": "Mercury_7175875", "question": {"stem": "Which is a mammal?", "choices": [
        {"text": "shark", "label": "A"}, {"text": "whale", "label": "B"}, {"text": "trout", "label": "C"},
        {"text": "eel", "label": "D"}]}, "answerKey": "B"}
    arc_hf = {"id": "q2", "question": "Pick two.", "choices": {"text": ["one", "two", "three"], "label": ["1", "2", "3"]},
              "answerKey": "2"}
    mmlu = {"question": "2 + 2 = ?", "subject": "math", "choices": ["3", "4", "5", "6"], "answer": 1}
    path = write(tmp_path / "mc.jsonl", "\n".join(json.dumps(o) for o in (arc, arc_hf, mmlu)) + "\n")
    data = load_dataset(str(path))
    assert [i.answer for i in data.items] == ["B", "B", "B"]
    assert data.default_scoring() == "choice"
    assert "B) whale" in data.items[0].messages[0].content and data.items[0].id == "Mercury_7175875"


def test_mmlu_csv_without_and_with_header(tmp_path):
    bare = write(tmp_path / "astronomy_test.csv", 'What is the Sun?,"a star",a planet,a moon,a comet,A\n'
                                                   "Largest planet?,Mars,Jupiter,Venus,Earth,B\n")
    data = load_dataset(str(bare))
    assert [i.answer for i in data.items] == ["A", "B"] and data.items[1].choices[1] == "Jupiter"
    headed = write(tmp_path / "h.csv", "id,question,A,B,C,answer\nx1,Colour of grass?,red,green,blue,green\n")
    (item,) = load_dataset(str(headed)).items
    assert item.id == "x1" and item.answer == "B"


@pytest.mark.parametrize("line,message", [
    ('{"question": "q", "answer": "no marker #### here\\nend"}', "#### N"),
    ('{"prompt": "q"}', "gold 'answer'"),
    ('{"prompt": "q", "choices": ["a", "b"], "answer": "E"}', "not a choice letter"),
    ("{not json", "not valid JSON"),
    ('{"prompt": "q', "not valid JSON (Unterminated string starting at column 12)"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    """Every reader's JSON problem reads as one phrase (never the decoder's doubled 'starting at at')."""
    path = write(tmp_path / "bad.jsonl", '{"id": "ok", "prompt": "1+1?", "answer": "2"}\n' + line + "\n")
    with pytest.raises(InputError) as caught:
        load_dataset(str(path))
    assert f"{path}:2:" in str(caught.value) and message in str(caught.value)


def test_shipped_sets_hold_checked_gold():
    arith = load_dataset("arith")
    assert arith.default_scoring() == "number" and all(item.answer.isdigit() for item in arith.items)
    raw = [json.loads(line) for line in shipped_sets()["arith"].read_text().splitlines()]
    for row in raw:
        assert str(eval(row["expression"], {"__builtins__": {}})) == row["answer"]
        assert all(re.search(rf"\b{n}\b", row["prompt"]) for n in re.findall(r"\d+", row["expression"]))
    mc = load_dataset("mc")
    assert len(mc.items) >= 20 and all(len(i.choices) == 4 for i in mc.items)
    for row in (json.loads(line) for line in shipped_sets()["mc"].read_text().splitlines()):
        right = row["choices"]["ABCD".index(row["answer"])]
        if row["prompt"].startswith("What is "):
            a, b = re.findall(r"\d+", row["prompt"])
            assert right == str(int(a) + int(b))
        elif "largest" in row["prompt"]:
            assert int(right) == max(int(c) for c in row["choices"])
        elif "alphabetical" in row["prompt"]:
            assert right == min(row["choices"])


# Scoring and statistics

def test_scoring_counts_unextracted_apart():
    ok = {"status": "ok", "output": "So 3 + 4 = 7. The answer is 7."}
    assert score_record(ok, "7", "number")["correct"] is True
    wrong = score_record({"status": "ok", "output": "The answer is 8"}, "7", "number")
    assert wrong == {"method": "number", "predicted": "8", "correct": False, "extracted": True, "failed": False}
    none = score_record({"status": "ok", "output": "I do not know."}, "7", "number")
    assert none["correct"] is False and none["extracted"] is False
    failed = score_record({"status": "error", "output": None, "details": {}}, "7", "number")
    assert failed["failed"] is True and failed["correct"] is False
    undecided = score_record({"status": "error", "output": None, "details": {"rounds": []}}, "7", "number")
    assert undecided["failed"] is False and undecided["extracted"] is False and undecided["correct"] is False
    assert score_record({"status": "ok", "output": "The answer is (B)."}, "b", "choice")["correct"]
    assert score_record({"status": "ok", "output": "  Paris. "}, "paris", "exact")["correct"]
    assert score_record({"status": "ok", "output": "It is Paris, France"}, "Paris", "contains")["correct"]


@pytest.mark.parametrize(
    ("gold", "output"),
    [("1,200", "It costs $1,200."), ("$18", "She makes 18 dollars a day."), ("−3", "The answer is -3."),
     ("0.5", r"So $x = \frac{1}{2}$."), ("1/2", "It is 0.5"), ("10%", "Profit is 10 percent."),
     ("1 000 000", "About 1,000,000 grains."), ("3.0", "3"), ("18.", "#### 18"), ("four", "The answer is 4.")],
)
def test_gold_numbers_and_extracted_numbers_agree(gold, output):
    score = score_record({"status": "ok", "output": output}, gold, "number")
    assert score["correct"], score


def test_a_range_or_a_phone_number_is_no_number_answer():
    for output in ("It takes 5-7 days.", "Call 555-1234.", "The score was 3-1.", "On 2024-01-15."):
        score = score_record({"status": "ok", "output": output}, "7", "number")
        assert score["extracted"] is False and score["correct"] is False, output


def test_gsm8k_gold_lines_read_as_the_extractor_reads_them(tmp_path):
    answers = ["so she has 18 left.\n#### 18", "The loss is $3.\n#### -3", "It costs 1,200 dollars.\n#### 1,200",
               "Half of it.\n#### 0.5"]
    path = write(tmp_path / "gsm8k.jsonl", "".join(json.dumps({"question": f"q{i}", "answer": a}) + "\n"
                                                   for i, a in enumerate(answers)))
    data = load_dataset(str(path))
    assert [item.answer for item in data.items] == ["18", "-3", "1200", "0.5"]
    assert [item.answer for item in data.items] == [extract_number(a).value for a in answers]
    assert [gold_key(item.answer, "number") for item in data.items] == ["18", "-3", "1200", "0.5"]
    bad = write(tmp_path / "bad.jsonl", json.dumps({"question": "q", "answer": "It varies.\n#### 5-7"}) + "\n")
    with pytest.raises(InputError, match="no number after '####'"):
        load_dataset(str(bad))


def test_golds_in_the_number_formats_make_auto_pick_number(tmp_path):
    lines = [{"id": str(i), "prompt": "q", "answer": a} for i, a in enumerate(["$18", "1,000", "−3", "10%", "1/2"])]
    data = load_dataset(str(write(tmp_path / "ours.jsonl", "".join(json.dumps(o) + "\n" for o in lines))))
    assert data.default_scoring() == "number"
    words = write(tmp_path / "words.jsonl", json.dumps({"prompt": "q", "answer": "5-7 days"}) + "\n")
    assert load_dataset(str(words)).default_scoring() == "exact"


# math scoring (math-verify, the math extra)

@pytest.mark.parametrize(
    ("gold", "record", "predicted", "correct"),
    [
        (r"\frac{1}{2}", {"output": "So the answer is 0.5."}, "0.5", True),
        ("0.5", {"output": r"The answer is $\boxed{\frac12}$."}, r"\frac{1}{2}", True),
        ("x^2+1", {"output": "1+x^2", "details": {"extract": "boxed"}}, "1+x^2", True),
        (r"\frac{\sqrt{3}}{2}", {"output": r"\sqrt{3}/2", "details": {"extract": "boxed"}}, r"\sqrt{3}/2", True),
        ("(1,2)", {"output": "The point is $(1, 2)$."}, "(1, 2)", True),
        (r"3\pi", {"output": r"$\boxed{3\pi}$"}, r"3\pi", True),
        (r"\frac{1}{2}", {"output": "The answer is 0.25."}, "0.25", False),
        ("x^2+1", {"output": "x^2-1", "details": {"extract": "boxed"}}, "x^2-1", False),
    ],
)
def test_math_scoring_compares_with_math_verify(gold, record, predicted, correct):
    score = score_record({"status": "ok", **record}, gold, "math")
    assert score == {"method": "math", "predicted": predicted, "correct": correct, "extracted": True, "failed": False}


def test_math_scoring_counts_unextracted_and_failed_apart():
    none = score_record({"status": "ok", "output": "I do not know."}, "7", "math")
    assert none["extracted"] is False and none["correct"] is False and none["predicted"] is None
    failed = score_record({"status": "error", "output": None, "details": {}}, "7", "math")
    assert failed["failed"] is True and failed["correct"] is False


def test_math_scoring_runs_outside_the_main_thread():
    """math-verify's own time bound (signal.alarm) works in the main thread only; elsewhere it is left off."""
    found = []
    worker = threading.Thread(target=lambda: found.append(
        score_record({"status": "ok", "output": "0.5"}, r"\frac{1}{2}", "math")["correct"]))
    worker.start()
    worker.join()
    assert found == [True]


def test_math_scoring_without_math_verify_names_the_install(monkeypatch):
    monkeypatch.setattr(math_scoring.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=re.escape(math_scoring.INSTALL)):
        load_plan(None, "math", {"provider": "vllm", "model": "m", "base_url": "http://127.0.0.1:1"})


def test_math_arms_vote_on_boxed_answers():
    plan = load_plan(None, "math", {"provider": "vllm", "model": "m", "base_url": "http://127.0.0.1:1"})
    arms = {arm.name: arm for arm in plan.arms}
    assert arms["vote"].raw["vote"]["extract"] == "boxed" and arms["cot-decode"].raw["cot-decode"]["extract"] == "boxed"
    assert arms["single"].raw["vote"]["extract"] == "text"


def test_the_cli_does_not_import_math_verify_at_start_up():
    code = ("import sys, ensemble_cli.cli, ensemble_cli.bench.runner, ensemble_cli.bench.report; "
            "print(sorted(m for m in ('math_verify', 'sympy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


def test_wilson_interval_known_values():
    # 7/10: Wilson 95% interval (0.3968, 0.8922), as in Newcombe (1998) and R's prop.test(correct=FALSE)
    low, high = wilson(7, 10)
    assert low == pytest.approx(0.3968, abs=1e-4) and high == pytest.approx(0.8922, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)


def test_mcnemar_exact_and_paired_difference():
    # 6 discordant pairs for the arm, 1 for the baseline: p = 2 * P(X <= 1 | n=7, 1/2) = 2 * 8/128
    assert mcnemar_exact(6, 1) == pytest.approx(0.125)
    assert mcnemar_exact(0, 0) == 1.0
    arm = [True] * 8 + [False] * 2
    base = [False] * 6 + [True] * 2 + [False, True]
    result = paired(arm, base)
    assert result.difference == pytest.approx(0.5) and result.only_arm == 6 and result.only_baseline == 1
    assert result.low <= 0.5 <= result.high and result.low > 0
    same = paired([True, False], [True, False])
    assert (same.difference, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_pareto_marks():
    points = [(0.5, 1.0), (0.6, 2.0), (0.4, 3.0), (0.6, 2.5), (0.9, None)]
    assert pareto(points) == [True, True, False, False, False]


# Revote

def vote_record(method="majority", with_rankings=False):
    replies = [
        {"member": "a", "round": 1, "sample": 0, "text": "x is 5", "answer": "5", "confidence": 0.2},
        {"member": "a", "round": 1, "sample": 1, "text": "x is 5", "answer": "5", "confidence": 0.3},
        {"member": "b", "round": 1, "sample": 0, "text": "x is 6", "answer": "6", "confidence": 0.9},
    ]
    last = {"round": 1, "method": method, "winner": "5", "replies": replies}
    if with_rankings:
        last["rankings"] = [{"member": "a", "ranking": ["6", "5"]}, {"member": "b", "ranking": ["6", "5"]}]
    return {"schema": 2, "run_id": "r1", "strategy": "vote", "fingerprint": "f", "id": "q1", "status": "ok",
            "output": "5", "details": {"extract": "number", "method": method, "winner": "5", "rounds": [last],
                                       "agreement_per_round": [0.667]},
            "members": [{"name": "a", "weight": 1.0}, {"name": "b", "weight": 3.0}],
            "settings": {"vote": {"method": method}}, "usage": {"calls": 3}, "errors": []}


def test_revote_majority_weighted_confidence_from_stored_replies():
    record = vote_record()
    assert revote_record(record, "majority")["output"] == "5"
    weighted = revote_record(record, "weighted")
    assert weighted["output"] == "6" and weighted["details"]["method"] == "weighted"
    assert weighted["details"]["revote"] == {"from_method": "majority", "from_run_id": "r1", "round": 1, "new_calls": 0}
    assert weighted["usage"] == {"calls": 3} and weighted["fingerprint"] != record["fingerprint"]
    assert revote_record(record, "confidence")["output"] == "6"
    assert record["output"] == "5"  # the input is not changed


def test_revote_borda_needs_rankings():
    with pytest.raises(InputError, match="no rankings"):
        revote_record(vote_record(), "borda")
    assert revote_record(vote_record("borda", with_rankings=True), "borda")["output"] == "6"


def test_revote_command(tmp_path):
    path = write(tmp_path / "votes.jsonl", json.dumps(vote_record()) + "\n")
    result = invoke("revote", path, "--method", "weighted")
    assert result.exit_code == 0, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["output"] == "6"
    bad = invoke("revote", path, "--method", "irv")
    assert bad.exit_code == 2 and "votes.jsonl:1: the record holds no rankings" in bad.stderr
    assert "Traceback" not in bad.stderr


# The command, against the fake server

def answer_model():
    """Answers '12' to questions about 5 + 7 and '3' otherwise; a sampled (temperature > 0) call with an odd
    seed says '12' always, so that a vote can beat the single greedy call."""

    def reply(ctx):
        if "5 + 7" in ctx.user or (ctx.temperature > 0 and (ctx.seed or 0) % 2):
            return "The answer is 12."
        return "I think it is 3" if "apples" in ctx.user else "no idea"

    return ReplyModel(reply)


def bench_yaml(tmp_path, server, arms: str) -> Path:
    return write(tmp_path / "bench.yaml", f"provider: vllm\nmodel: toy\nbase_url: {server.base_url}\n"
                                          f"max_retries: 0\nseed: 1\ncache: false\n{arms}")


DATA = "".join(json.dumps({"id": f"q{i}", "prompt": p, "answer": "12"}) + "\n" for i, p in enumerate(
    ["What is 5 + 7?", "Tom has 5 apples and gets 7 more. How many apples?", "Seven plus five?", "5 + 7 again?"]))

ARMS = """arms:
  - name: vote
    strategy: vote
    temperature: 0.7
    vote: {samples: 3}
  - name: vote-weighted
    strategy: vote
    temperature: 0.7
    vote: {samples: 3, method: weighted}
"""


def bench_on_fake_server(tmp_path, fake_server, arms: str):
    """``ensemble bench`` of DATA with ``arms`` against the toy model; the fake server and the run directory."""
    server = fake_server({"toy": answer_model()})
    data = write(tmp_path / "data.jsonl", DATA)
    run_dir = tmp_path / "run"
    result = invoke("bench", "--dataset", data, "--config", bench_yaml(tmp_path, server, arms), "-o", run_dir)
    assert result.exit_code == 0, result.stderr
    return server, run_dir


def test_bench_end_to_end_on_fake_server(tmp_path, fake_server):
    server, run_dir = bench_on_fake_server(tmp_path, fake_server, ARMS)
    for name in ("single", "vote", "vote-weighted"):
        assert (run_dir / "records" / f"{name}.jsonl").exists()
    summary = json.loads((run_dir / "summary.json").read_text())
    arms = {a["name"]: a for a in summary["arms"]}
    assert arms["single"]["correct"] == 2 and arms["single"]["unextracted"] == 1
    assert arms["vote"]["correct"] == 4 and arms["vote"]["vs_baseline"]["only_arm"] == 2
    assert arms["vote-weighted"]["recount_of"] == "vote" and arms["vote-weighted"]["new_calls"] == 0
    assert arms["single"]["calls_per_item"] == 1 and arms["vote"]["calls_per_item"] == 1  # vllm honours n
    assert arms["vote"]["completion_tokens_per_item"] > 2 * arms["single"]["completion_tokens_per_item"]
    assert arms["single"]["cost_usd"] is None and summary["cost_axis"] == "tokens_per_item"
    assert arms["single"]["pareto"] and arms["vote"]["pareto"]
    record = json.loads((run_dir / "records" / "vote.jsonl").read_text().splitlines()[0])
    assert record["gold"] == {"answer": "12"} and record["score"]["correct"] and record["strategy"] == "vote"
    assert server.calls == 4 + 4  # the weighted arm made no call
    report = (run_dir / "report.md").read_text()
    assert "| vote |" in report and "unknown" in report and (run_dir / "chart.png").stat().st_size > 1000

    # bench report re-renders from the records without a call
    (run_dir / "report.md").unlink()
    again = invoke("bench", "report", run_dir)
    assert again.exit_code == 0 and (run_dir / "report.md").read_text() == report
    assert server.calls == 8

    # a second run into the same directory needs --resume; with it, nothing is left to call
    data = tmp_path / "data.jsonl"
    refused = invoke("bench", "--dataset", data, "--config", tmp_path / "bench.yaml", "-o", run_dir)
    assert refused.exit_code == 2 and "--resume" in refused.stderr
    resumed = invoke("bench", "--dataset", data, "--config", tmp_path / "bench.yaml", "-o", run_dir, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert server.calls == 8


def test_bench_math_scoring_end_to_end(tmp_path, fake_server):
    """score: math: the baseline's whole reply and the vote arm's boxed answer, both checked by math-verify."""
    replies = {"half": r"Halving gives $\boxed{0.5}$.", "square": r"Expanding, $\boxed{1 + x^2}$.", "none": "Unsure."}

    def reply(ctx):
        return next((text for key, text in replies.items() if key in ctx.user), "Unsure.")

    server = fake_server({"toy": ReplyModel(reply)})
    items = [("q-half", "What is half of one?", r"\frac{1}{2}"), ("q-square", "Expand the square plus one.", "x^2+1"),
             ("q-none", "Say none.", "7")]
    data = write(tmp_path / "math.jsonl", "".join(json.dumps({"id": i, "prompt": p, "answer": a}) + "\n"
                                                  for i, p, a in items))
    arms = "score: math\narms:\n  - name: vote\n    strategy: vote\n    temperature: 0.7\n    vote: {samples: 3}\n"
    run_dir = tmp_path / "run"
    result = invoke("bench", "--dataset", data, "--config", bench_yaml(tmp_path, server, arms), "-o", run_dir)
    assert result.exit_code == 0, result.stderr
    for arm in ("single", "vote"):
        records = {r["id"]: r for r in map(json.loads, (run_dir / "records" / f"{arm}.jsonl").read_text().splitlines())}
        assert records["q-half"]["score"]["correct"] and records["q-square"]["score"]["correct"], arm
        assert records["q-none"]["score"]["extracted"] is False
    vote = next(r for r in map(json.loads, (run_dir / "records" / "vote.jsonl").read_text().splitlines())
                if r["id"] == "q-half")  # records come in the order items finish
    assert vote["details"]["extract"] == "boxed" and vote["score"]["method"] == "math"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {a["name"]: a["correct"] for a in summary["arms"]} == {"single": 2, "vote": 2}
    assert invoke("bench", "report", run_dir).exit_code == 0


def test_bench_resume_after_a_cut(tmp_path, fake_server):
    server = fake_server({"toy": answer_model()})
    data = write(tmp_path / "data.jsonl", DATA)
    config = bench_yaml(tmp_path, server, ARMS)
    run_dir = tmp_path / "run"
    assert invoke("bench", "--dataset", data, "--config", config, "-o", run_dir, "--limit", "2").exit_code == 0
    first = server.calls
    vote_file = run_dir / "records" / "vote.jsonl"
    lines = vote_file.read_text().splitlines()
    vote_file.write_text(lines[0] + "\n" + lines[1][:40])  # a kill mid-write of the second record
    result = invoke("bench", "--dataset", data, "--config", config, "-o", run_dir, "--resume")
    assert result.exit_code == 0, result.stderr
    # the single arm runs the 2 new items, the vote arm the cut item and the 2 new ones
    assert server.calls - first == 2 + 3
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {a["name"]: a["items"] for a in summary["arms"]} == {"single": 4, "vote": 4, "vote-weighted": 4}


def test_bench_bad_config_and_dataset(tmp_path, fake_server):
    server = fake_server({"toy": answer_model()})
    data = write(tmp_path / "data.jsonl", DATA)
    config = bench_yaml(tmp_path, server, "arms:\n  - name: v\n    strategy: vote\n    vote: {samples: 0}\n")
    result = invoke("bench", "--dataset", data, "--config", config, "-o", tmp_path / "r")
    assert result.exit_code == 2 and "arm 'v': vote.samples" in result.stderr and "Traceback" not in result.stderr
    missing = invoke("bench", "--dataset", tmp_path / "none.jsonl", "-o", tmp_path / "r")
    assert missing.exit_code == 2 and "dataset not found" in missing.stderr


def test_default_arms_skip_what_the_members_cannot_do(tmp_path, fake_server):
    server = fake_server({"toy": answer_model()}, honour_prefix=False)
    data = write(tmp_path / "data.jsonl", DATA)
    config = write(tmp_path / "b.yaml", f"provider: openai-compatible\nmodel: toy\nbase_url: {server.base_url}\n"
                                        "max_retries: 0\nmax_tokens: 8\n")
    result = invoke("bench", "--dataset", data, "--config", config, "-o", tmp_path / "r", "--limit", "1")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    skipped = {s["name"]: s["reason"] for s in summary["skipped"]}
    assert "cot-decode" in skipped and "committee" in skipped and "prefix" in skipped["committee"]
    assert {a["name"] for a in summary["arms"]} == {"single", "vote", "moa-lite"}


@pytest.mark.embedded
def test_bench_with_the_embedded_model(tmp_path):
    config = write(tmp_path / "b.yaml", "max_tokens: 6\narms:\n  - name: vote\n    strategy: vote\n"
                                        "    temperature: 0.7\n    seed: 3\n    vote: {samples: 2}\n")
    run_dir = tmp_path / "run"
    result = invoke("bench", "--dataset", "arith", "--config", config, "-o", run_dir, "--limit", "2")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [a["name"] for a in summary["arms"]] == ["single", "vote"]
    assert all(a["items"] == 2 and a["cost_usd"] is None or a["cost_usd"] == 0 for a in summary["arms"])
    assert (run_dir / "chart.png").exists() and "single" in (run_dir / "report.md").read_text()


def test_judge_scores_free_text_and_report_keeps_its_verdicts(tmp_path, fake_server):
    """score: judge asks a judge member about each answer (one call each); bench report makes no call."""
    def judge(ctx):
        candidate = ctx.user.split("Candidate answer:\n", 1)[-1]
        return "Yes." if "12" in candidate else "No, it is not."

    server = fake_server({"toy": answer_model(), "judge": ReplyModel(judge)})
    data = write(tmp_path / "data.jsonl", DATA)
    config = bench_yaml(tmp_path, server, f"score: judge\njudge: {{model: judge, base_url: {server.base_url}}}\narms: []\n")
    run_dir = tmp_path / "run"
    result = invoke("bench", "--dataset", data, "--config", config, "-o", run_dir)
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in (run_dir / "records" / "single.jsonl").read_text().splitlines()]
    assert all(r["score"]["method"] == "judge" and r["score"]["judged"] for r in records)
    right = {r["id"] for r in records if r["score"]["correct"]}
    assert right == {r["id"] for r in records if "12" in r["output"]} and right  # the judge's verdicts, not a match
    judge_calls = [r for r in server.requests if r["body"]["model"] == "judge"]
    assert len(judge_calls) == len(records)
    before = server.calls
    again = invoke("bench", "report", run_dir)
    assert again.exit_code == 0 and server.calls == before
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["arms"][0]["correct"] == len(right)


def test_judge_scoring_needs_a_judge(tmp_path, fake_server):
    server = fake_server({"toy": answer_model()})
    data = write(tmp_path / "data.jsonl", DATA)
    config = bench_yaml(tmp_path, server, "score: judge\narms: []\n")
    result = invoke("bench", "--dataset", data, "--config", config, "-o", tmp_path / "run")
    assert result.exit_code == 2 and "judge: score: judge needs a judge member" in result.stderr


@pytest.mark.parametrize(("content", "expected"), [
    (None, "is a directory"),
    (b'{"id": "a"}\n\xe9\n', ":2: not UTF-8 (byte 0xe9)"),
    (b"", "holds no records"),
    (b'{"id": "a", "status": "ok"\n', ":1: not valid JSON (Expecting ',' delimiter at column"),
    (b'{"id": "a", "status": "ok\n', ":1: not valid JSON (Unterminated string starting at column 23)"),
])
def test_every_file_revote_and_bench_read_is_one_clear_line(tmp_path, content, expected):
    """revote's records and bench's datasets go through the tool's one file reader (inputs.read_file)."""
    path = tmp_path / "file.jsonl"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    for args in (["revote", path, "--method", "majority"], ["bench", "--dataset", path, "-o", tmp_path / "run"]):
        result = invoke(*args)
        if args[0] == "bench" and content == b"":
            continue  # an empty dataset is its own message, tested with the loaders
        assert result.exit_code == 2, (args, result.stderr)
        assert expected in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


ADAPTIVE_ARMS = """arms:
  - name: vote
    strategy: vote
    temperature: 0.7
    vote: {samples: 6, adaptive: true}
  - name: vote-weighted
    strategy: vote
    temperature: 0.7
    vote: {samples: 6, adaptive: true, method: weighted}
"""


def test_the_method_sweep_recounts_an_adaptive_arm_with_no_call(tmp_path, fake_server):
    _, run_dir = bench_on_fake_server(tmp_path, fake_server, ADAPTIVE_ARMS)
    arms = {a["name"]: a for a in json.loads((run_dir / "summary.json").read_text())["arms"]}
    assert arms["vote-weighted"]["recount_of"] == "vote" and arms["vote-weighted"]["new_calls"] == 0
    ran, recounted = ([json.loads(line) for line in (run_dir / "records" / f"{name}.jsonl").read_text().splitlines()]
                      for name in ("vote", "vote-weighted"))
    for original, recount in zip(ran, recounted):
        assert recount["details"]["samples_drawn"] == original["details"]["samples_drawn"]
        assert recount["details"]["rounds"][-1]["stopping"] == original["details"]["rounds"][-1]["stopping"]
        assert recount["settings"]["vote"]["method"] == "weighted"
    assert any(r["details"]["samples_drawn"] < 6 for r in ran), "unanimous items settle before the cap"
