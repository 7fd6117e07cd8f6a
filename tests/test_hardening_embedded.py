"""Issue #10 on the real embedded model: in-process and through `ensemble serve --raw` give the same
results (cot-decode, committee, the llamacpp preset), the server keeps concurrent streams, and the
notes for --gate, --draft and identical copies are shown once on stderr."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from test_serve import server_url  # noqa: F401  (the module-scoped `ensemble serve --raw` fixture)
from typer.testing import CliRunner

from ensemble_cli.cli import app
from ensemble_cli.config import MemberConfig
from ensemble_cli.strategies.committee import CommitteeSettings
from ensemble_cli.strategies.cot_decode import CotDecodeSettings
from ensemble_cli.inputs import from_prompt
from ensemble_cli.calls import Message, Request
from ensemble_cli.strategies.base import Member

pytestmark = pytest.mark.embedded
runner = CliRunner()


def plain(details):
    return details.model_dump(mode="json") if hasattr(details, "model_dump") else details


def http(registry_for, url):
    return registry_for().provider_for(MemberConfig(name="http", provider="llamacpp", model="smollm2", base_url=url))


# 1: same paths, answers and confidences in-process and over HTTP (greedy)


def test_cot_decode_equal_in_process_and_over_http(server_url, registry_for, local_provider):  # noqa: F811
    from ensemble_cli.strategies.cot_decode import CotDecode

    item = from_prompt("I have 3 apples and buy 5 more. How many apples do I have?")
    settings = CotDecodeSettings(k=4)

    def run(provider):
        result = asyncio.run(CotDecode([Member("m", provider)], settings, 24).run(item))
        return result.output, plain(result.details)["paths"]

    local_output, local_paths = run(local_provider)
    remote_output, remote_paths = run(http(registry_for, server_url))
    assert remote_output == local_output
    assert [(p["first_token"], p["text"], p["answer"]) for p in remote_paths] == \
        [(p["first_token"], p["text"], p["answer"]) for p in local_paths]
    for remote, local in zip(remote_paths, local_paths):
        assert remote["text"].startswith(remote["first_token"].strip()[:1])  # the first token is kept
        assert remote["confidence"] == pytest.approx(local["confidence"], abs=2e-3)


def test_committee_equal_in_process_and_over_http(server_url, registry_for, local_provider):  # noqa: F811
    from ensemble_cli.strategies.committee import Committee

    item = from_prompt("Name two rivers.")

    def run(provider):
        members = [Member("a", provider), Member("b", provider, system="You are a terse geographer.")]
        result = asyncio.run(Committee(members, CommitteeSettings(), 12).run(item))
        return result.output, [(s["token"], round(s["p"], 3)) for s in plain(result.details)["steps"]]

    local_output, local_steps = run(local_provider)
    remote_output, remote_steps = run(http(registry_for, server_url))
    assert remote_output == local_output and local_output
    assert [t for t, _ in remote_steps] == [t for t, _ in local_steps]
    assert [p for _, p in remote_steps] == pytest.approx([p for _, p in local_steps], abs=2e-3)


# 6: the llamacpp preset answers as the local provider does, with and without a system prompt


@pytest.mark.parametrize("system", [None, "You are a pirate. Answer like one."])
def test_llamacpp_preset_equals_local(system, server_url, registry_for, local_provider):  # noqa: F811
    messages = ((Message("system", system),) if system else ()) + (Message("user", "What is the capital of France?"),)
    request = Request(messages, max_tokens=16)
    (remote,) = asyncio.run(http(registry_for, server_url).complete(request))
    (local,) = asyncio.run(local_provider.complete(request))
    assert remote.text == local.text and remote.text


# 28: the server never drops an accepted request; no client path records an empty stream as ok


def test_two_concurrent_streams_both_complete(server_url):  # noqa: F811
    async def stream(prompt: str) -> str:
        body = {"model": "smollm2", "stream": True, "max_tokens": 24, "temperature": 0,
                "messages": [{"role": "user", "content": prompt}]}
        text = ""
        async with httpx.AsyncClient(timeout=60) as client:
            async with client.stream("POST", f"{server_url}/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        for choice in json.loads(line[6:]).get("choices", []):
                            text += (choice.get("delta") or {}).get("content") or ""
        return text

    async def both() -> list[str]:
        return await asyncio.gather(stream("Name a fruit."), stream("Name a country."))

    first, second = asyncio.run(both())
    assert first.strip() and second.strip()


def test_moa_against_serve_records_no_empty_ok(server_url, tmp_path):  # noqa: F811
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"Name a {w}."}) + "\n"
                               for i, w in enumerate(["fruit", "colour", "city"])))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["moa", "--input", str(prompts), "--n", "2", "--layers", "1", "--max-tokens", "16",
                                 "--provider", "llamacpp", "--model", "smollm2", "--base-url", server_url,
                                 "--parallel-prompts", "3", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(written) == 3 and all(r["status"] == "ok" and r["output"].strip() for r in written)


# 5: --gate and --draft on local members say so once and cost nothing extra


def test_gate_never_costs_more_calls_and_is_noted_once(tmp_path):
    def run(*extra: str):
        out = tmp_path / f"out{'-'.join(extra)}.jsonl"
        result = runner.invoke(app, ["committee", "-p", "Name a colour.", "--n", "2", "-t", "0.5", "--max-tokens",
                                     "8", "-o", str(out), *extra])
        assert result.exit_code == 0, result.stderr
        return json.loads(out.read_text())["usage"]["calls"], result.stderr

    plain_calls, _ = run()
    gated_calls, gated_err = run("--gate", "0.5")
    drafted_calls, drafted_err = run("--draft", "4")
    assert gated_calls <= plain_calls and drafted_calls <= plain_calls
    assert gated_err.count("--gate does nothing here") == 1
    assert drafted_err.count("--draft") == 1 and "does nothing" in drafted_err


# 2, 3: identical deterministic copies are reported on stderr; the vote judge is in members


def test_vote_copies_at_temperature_0_are_reported_and_judge_is_listed(tmp_path):
    config = tmp_path / "vote.yaml"
    config.write_text("n: 3\nmax_tokens: 6\nvote:\n  method: usc\n  judge: {name: referee, temperature: 0.1}\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["vote", "--config", str(config), "-p", "What is 2 + 2?", "-o", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("at temperature 0 are the same call, made once") == 1
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["usage"]["calls"] == 2  # the three greedy copies once, then the judge
    roles = {(m["name"], m["role"], m["temperature"]) for m in record["members"]}
    assert ("referee", "judge", 0.1) in roles
    assert {("m#1", "member", 0.0), ("m#2", "member", 0.0), ("m#3", "member", 0.0)} <= roles
