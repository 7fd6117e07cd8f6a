"""Every script in ``scripts/`` runs to the end with ``--quick`` and prints its tables.

Scripts are found by glob, so a new one must have a quick mode (the shared ``--quick`` of
``scripts/_bench.py``) and an entry in ``TABLES`` naming the table lines it prints. The assertions are on
structure (headers and row labels), never on numbers: quick sizes are too small for timings to mean
anything, and ``--quick`` never fails on one. A script that loads the embedded model is marked ``embedded``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = sorted(p for p in (REPO / "scripts").glob("*.py") if p.name != "_bench.py")
QUICK_NOTE = "quick mode: small sizes"
TIMEOUT_S = 45
EMBEDDED_IMPORT = "ensemble_cli.providers.local"

# extra flags: make_bench_sets checks the shipped sets instead of rewriting them
ARGS = {"make_bench_sets.py": ["--check"]}

# for each script, table lines by their first cells (a header, or a row's label)
TABLES: dict[str, list[list[str]]] = {
    "bench_adaptive.py": [
        ["run", "accuracy", "samples/item", "samples vs fixed", "target"], ["fixed self-consistency, 16 samples"],
        ["adaptive, cap 16, step 1 (default)"], ["adaptive, cap 16, step 2"],
        ["run", "accuracy", "$/item", "$ vs strong alone", "answered by tier 1", "target"],
        ["strong alone, 8 samples"], ["cascade, accept 0.8"],
        ["run", "samples/item", "right", "answers identical to fixed"], ["adaptive (0.95, 2 then 1 at a time)"],
    ],
    "bench_bench.py": [
        ["run", "calls", "wall s", "critical path s", "CPU floor s", "wall / max(path, floor)", "target"],
        ["first run"], ["calls", "target"],
        ["calls, one method", "calls, three methods", "extra calls", "target"],
    ],
    "bench_committee.py": [
        ["run", "tokens/s", "vs greedy", "target"], ["single-member greedy"], ["committee N=1"],
        ["committee N=20 identical"], ["committee N=5 distinct"],
        ["run", "calls/token", "wall s", "output"], ["naive per-token loop"], ["committee (stepwise)"],
        ["committee --draft 8"], ["naive / draft 8 (target >= 3x)"],
    ],
    "bench_cot_decode.py": [["run", "wall s", "x single", "target"], ["greedy single path"]],
    "bench_flash_attn.py": [["batch", "on", "off", "on/off", "faster"], ["1"]],
    "bench_moa.py": [["run", "wall s", "speed-up", "target"], ["sequential baseline"], ["moa (concurrent layers)"]],
    "bench_serve.py": [
        ["path", "p50 ms", "p95 ms", "ratio", "target"], ["in-process Session"], ["ensemble serve (HTTP)"],
        ["added by the server"], ["figure", "value", "target"], ["answered 200"], ["lost"], ["duplicated"],
        ["upstream calls"], ["upstream max in flight"], ["wall s"],
    ],
    "bench_startup.py": [
        ["command", "wall s", "x floor", "above floor"], ["python -c pass (floor)"], ["ensemble --version"],
        ["ensemble --help"], ["ensemble committee --help"],
    ],
    "bench_verbalize.py": [
        ["prompt", "method", "unique", "distinct_1", "distinct_2", "mean_pairwise_jaccard"],
        ["", "unique", "distinct_1", "distinct_2", "mean_pairwise_jaccard"], ["verbalized"], ["direct"],
        ["ratio verbalized/direct"],
    ],
    "bench_vote.py": [["run", "wall s", "speed-up", "target"], ["sequential baseline"], ["vote (concurrent)"]],
    "make_bench_sets.py": [],
}


def script_params() -> list:
    """One test per script; those that load the embedded model are marked ``embedded``."""
    params = []
    for path in SCRIPTS:
        embedded = EMBEDDED_IMPORT in path.read_text(encoding="utf-8")
        params.append(pytest.param(path, id=path.name, marks=[pytest.mark.embedded] if embedded else []))
    return params


def table_line(cells: list[str]) -> re.Pattern[str]:
    """A table line starting with these cells, whatever their padding."""
    return re.compile(r"^\|" + r"\|".join(rf" {re.escape(c)} *" for c in cells) + r"\|", re.MULTILINE)


def run_quick(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    return subprocess.run([sys.executable, str(path), "--quick", *ARGS.get(path.name, [])], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT_S)


@pytest.mark.parametrize("path", script_params())
def test_script_runs_quick_and_prints_its_tables(path: Path) -> None:
    assert path.name in TABLES, f"scripts/{path.name}: add the table lines it prints to TABLES in {__file__}"
    result = run_quick(path)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert QUICK_NOTE in result.stderr, "the script does not parse its flags with scripts/_bench.py's parse_args"
    missing = [cells for cells in TABLES[path.name] if not table_line(cells).search(result.stdout)]
    assert not missing, f"table lines missing: {missing}\n{result.stdout}"


def test_make_bench_sets_reproduces_the_shipped_sets_without_writing() -> None:
    shipped = REPO / "ensemble_cli" / "data" / "bench"
    before = {p.name: p.stat().st_mtime_ns for p in shipped.glob("*.jsonl")}
    result = run_quick(REPO / "scripts" / "make_bench_sets.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("reproduced PASS") == 2
    assert {p.name: p.stat().st_mtime_ns for p in shipped.glob("*.jsonl")} == before


def test_a_wrong_result_fails_a_quick_run(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "make_bench_sets.py"), "--quick", "--check",
                             "--out", str(tmp_path)], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 1
    assert "wrong result:" in result.stderr and not list(tmp_path.iterdir())


@pytest.fixture
def bench(monkeypatch):
    """scripts/_bench.py, imported with sys.path and PYTHONPATH restored after the test."""
    monkeypatch.syspath_prepend(str(REPO / "scripts"))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    import _bench

    return _bench


def test_quick_swaps_the_defaults_and_a_given_size_wins(bench) -> None:
    sizes = {"rounds": bench.Size(3, 1, "rounds"), "batches": bench.Size([1, 3, 5], [1], "batch sizes")}
    full = bench.parse_args("doc", sizes, argv=[])
    quick = bench.parse_args("doc", sizes, argv=["--quick", "--batches", "2", "4"])
    assert (full.quick, full.rounds, full.batches) == (False, 3, [1, 3, 5])
    assert (quick.quick, quick.rounds, quick.batches) == (True, 1, [2, 4])


@pytest.mark.parametrize("quick, strict, timing_ok, check_ok, status", [
    (True, True, False, True, 0),    # a missed timing never fails a quick run
    (False, False, False, True, 0),  # nor a full run, unless the script makes its timings strict
    (False, True, False, True, 1),
    (True, False, True, False, 1),   # a wrong result fails either mode
    (False, False, True, False, 1),
    (False, True, True, True, 0),
])
def test_targets_exit_status(bench, quick, strict, timing_ok, check_ok, status) -> None:
    targets = bench.Targets(quick, strict_timings=strict)
    assert targets.timing(timing_ok) == ("PASS" if timing_ok else "FAIL")
    assert targets.check(check_ok, "the answer") == ("PASS" if check_ok else "FAIL")
    assert targets.exit_status() == status
