"""Every way a caller goes away — a non-streamed or streamed client that disconnects, an SDK that times out
and retries, an llm plugin prompt whose reader stops, a server shut down past its grace — makes no further
upstream call, cancels the calls in flight, and the server's log says ``cancelled``."""

from __future__ import annotations

import _thread
import json
import threading
import time

import httpx
import llm
import openai
import pytest
from fake_server import ReplyModel
from serve_helpers import ServerThread, write_ensembles

from ensemble_cli.server import Limits, load_ensembles

LATENCY = 0.4
"""Each upstream call takes this long, so a moa of 2 layers and an aggregator takes 3 of them."""


@pytest.fixture
def upstream(fake_server):
    return fake_server({"a": ReplyModel(lambda ctx: "Blue.")}, latency=LATENCY)


def moa(upstream) -> dict:
    return {"strategy": "moa", "provider": "vllm", "model": "a", "base_url": upstream.base_url, "max_retries": 0,
            "n": 2, "cache": False, "moa": {"layers": 2}}


def log_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def settle(upstream) -> int:
    """The upstream's call count once nothing more comes (a run that went on would make 5)."""
    time.sleep(4 * LATENCY)
    return upstream.calls


def started_after(upstream, moment: float) -> list[dict]:
    """The upstream calls that began after ``moment`` (time.monotonic, as the fake server stamps them)."""
    return [r for r in upstream.requests if r["start"] > moment + 0.1]


ASK = {"model": "m", "messages": [{"role": "user", "content": "Name a colour."}]}


def test_a_non_streamed_client_that_leaves_stops_the_run(upstream, tmp_path):
    log = tmp_path / "log.jsonl"
    ensembles = load_ensembles(write_ensembles(tmp_path / "ens", {"m": moa(upstream)}), {})
    with ServerThread(ensembles, Limits(log_path=str(log))) as url:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/chat/completions", json=ASK, timeout=1.5 * LATENCY)  # leaves in layer 2
        gone = time.monotonic()
        calls = settle(upstream)
        statuses = [entry["status"] for entry in log_lines(log)]
    assert calls < 5 and not started_after(upstream, gone)  # never the aggregator, no call after it left
    assert statuses == ["cancelled"]


def test_a_streamed_client_that_leaves_stops_the_run(upstream, tmp_path):
    log = tmp_path / "log.jsonl"
    ensembles = load_ensembles(write_ensembles(tmp_path / "ens", {"m": moa(upstream)}), {})
    with ServerThread(ensembles, Limits(log_path=str(log), keep_alive_s=0.05)) as url:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json={**ASK, "stream": True}, timeout=10) as response:
            lines = response.iter_lines()
            next(lines)  # the role chunk
            time.sleep(1.5 * LATENCY)
        gone = time.monotonic()
        calls = settle(upstream)
        statuses = [entry["status"] for entry in log_lines(log)]
    assert calls < 5 and not started_after(upstream, gone) and statuses == ["cancelled"]


def test_an_sdk_that_times_out_and_retries_leaves_no_run_behind(upstream, tmp_path):
    log = tmp_path / "log.jsonl"
    ensembles = load_ensembles(write_ensembles(tmp_path / "ens", {"m": moa(upstream)}), {})
    with ServerThread(ensembles, Limits(log_path=str(log))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=0.5 * LATENCY, max_retries=1)
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(**ASK)
        gone = time.monotonic()
        calls = settle(upstream)
        statuses = [entry["status"] for entry in log_lines(log)]
    assert calls <= 4 and not started_after(upstream, gone)  # each attempt's first layer at most
    assert statuses == ["cancelled", "cancelled"]


def test_a_shutdown_past_its_grace_cancels_the_run(upstream, tmp_path):
    import uvicorn

    from ensemble_cli.server import create_app
    from serve_helpers import free_port

    log = tmp_path / "log.jsonl"
    ensembles = load_ensembles(write_ensembles(tmp_path / "ens", {"m": moa(upstream)}), {})
    port = free_port()
    config = uvicorn.Config(create_app(ensembles, Limits(log_path=str(log))), host="127.0.0.1", port=port,
                            log_config=None, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    client = threading.Thread(target=lambda: httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={
        **ASK, "ensemble": {"layers": 6}}, timeout=30), daemon=True)
    client.start()
    time.sleep(0.5 * LATENCY)
    server.should_exit = True  # grace 1 s: the run (7 x 0.4 s) is cancelled past it
    thread.join(timeout=10)
    gone = time.monotonic()
    calls = settle(upstream)
    assert calls < 7 * 2 and not started_after(upstream, gone) and [entry["status"] for entry in log_lines(log)] == ["cancelled"]


def test_an_llm_plugin_prompt_whose_reader_stops_stops_the_run(upstream, tmp_path, monkeypatch):
    home = tmp_path / "home"
    write_ensembles(home / "ensembles", {"gone": {**moa(upstream), "moa": {"layers": 3}}})
    monkeypatch.setenv("ENSEMBLE_HOME", str(home))
    model = llm.get_model("ensemble-gone")
    prompt = llm.Prompt("Name a colour.", model=model, options=model.Options())
    response = llm.Response(prompt, model, stream=True)
    answer = model.execute(prompt, stream=True, response=response, conversation=None)
    threading.Timer(1.5 * LATENCY, _thread.interrupt_main).start()  # Ctrl-C in layer 2
    with pytest.raises(KeyboardInterrupt):
        next(answer)  # the generator's finally cancels the run before Ctrl-C reaches llm
    gone = time.monotonic()
    assert settle(upstream) < 7 and not started_after(upstream, gone)
