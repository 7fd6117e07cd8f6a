"""Usage in records: every call counted in its prompt's record, failed or retried, summing to the server's count."""

from __future__ import annotations

import json

from fake_server import Fault, ReplyModel
from typer.testing import CliRunner

from conftest import batch, echo, records
from ensemble_cli.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_usage_of_a_run_sums_to_the_servers_own_count(fake_server, tmp_path):
    server = fake_server({"a": ReplyModel(echo)})
    served = {"prompt_tokens": 0, "completion_tokens": 0}
    original = server.handle

    def counting(path, body, headers, fault, call_index):
        reply = original(path, body, headers, fault, call_index)
        if reply.status == 200:
            data = b"".join(reply.chunks).decode()
            found = [json.loads(line[6:]) for line in data.splitlines() if line.startswith("data: {")] \
                if data.startswith("data:") else [json.loads(data)]
            for usage in (part.get("usage") for part in found):
                if usage:
                    served["prompt_tokens"] += usage["prompt_tokens"]
                    served["completion_tokens"] += usage["completion_tokens"]
        return reply

    server.handle = counting
    server.fail_when = lambda body: "PROMPT-1" in json.dumps(body)  # every call of prompt 1 fails
    server.faults.extend([Fault("status", 503), Fault("status", 429, headers={"retry-after-ms": "1"})])
    out = tmp_path / "out.jsonl"
    config = tmp_path / "run.yaml"
    config.write_text("max_retries: 1\nparallel_prompts: 1\n")
    result = invoke("moa", "--config", str(config), "--input", str(batch(tmp_path, 3, "name a colour")), "--n", "2", "--layers", "2",
                    "--provider", "vllm", "--model", "a", "--base-url", server.base_url, "-o", str(out), "-q")
    assert result.exit_code == 5, result.stderr
    written = records(out.read_text())
    assert {r["id"]: r["status"] for r in written} == {"id0": "ok", "id1": "error", "id2": "ok"}
    failed = next(r for r in written if r["status"] == "error")
    assert failed["usage"]["calls"] >= 1 and failed["usage"]["retries"] >= 1 and failed["usage"]["failed_calls"] >= 1
    total = {key: sum(r["usage"][key] for r in written) for key in ("calls", "retries", "prompt_tokens",
                                                                     "completion_tokens")}
    assert total["calls"] + total["retries"] == server.calls  # every request: a first attempt or a retry
    assert total["retries"] >= 2
    assert total["prompt_tokens"] == served["prompt_tokens"] > 0
    assert total["completion_tokens"] == served["completion_tokens"] > 0
    ok = next(r for r in written if r["id"] == "id0")
    assert ok["usage"]["calls"] == 2 * 2 + 1  # two layers of two proposers, and the aggregator
