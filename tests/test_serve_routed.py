"""Routed names behind `ensemble serve`: `ENSEMBLE@PROVIDER/MODEL` through the openai SDK against a fake upstream.

The server holds a key for `openai` and `deepseek`, both moved to the fake upstream by `OPENAI_BASE_URL` and
`DEEPSEEK_BASE_URL` (as an operator points a provider at a proxy); the fake server records the model of every
call it gets. Every refusal is a 400 naming the piece at fault, made before any upstream call.
"""

from __future__ import annotations

import openai
import pytest
from fake_server import ReplyModel, ScriptedModel
from serve_helpers import serve

OPENAI_KEY = "sk-routed-openai-key-0123456789abcdef"
DEEPSEEK_KEY = "sk-routed-deepseek-key-0123456789abcdef"


def models():
    paris = ReplyModel(lambda ctx: "Paris")
    return {"home": paris, "mini": paris, "judge-model": paris, "deepseek-v4-flash": paris, "big": paris,
            "sky": ScriptedModel("The sky is blue ."), "sky2": ScriptedModel("The sky is blue since air scatters .")}


def configs(url: str) -> dict[str, dict]:
    base = {"provider": "vllm", "base_url": url, "max_retries": 0, "timeout": 5, "cache": False, "max_tokens": 16}
    return {
        "vote": {**base, "strategy": "vote", "model": "home", "temperature": 0.5,
                 "members": [{"name": "a"}, {"name": "b"}], "vote": {"extract": "text", "rounds": 1}},
        "mixed": {**base, "strategy": "vote", "model": "home", "temperature": 0.5,
                  "members": [{"name": "switched"}, {"name": "own", "provider": "vllm", "model": "big"},
                              {"name": "spec-member", "provider": "openai", "model": "judge-model"}],
                  "vote": {"extract": "text", "rounds": 1}},
        "partial": {**base, "strategy": "vote", "model": "home",
                    "members": [{"name": "a"}, {"name": "half", "provider": "vllm"}], "vote": {"extract": "text"}},
        "aimed": {**base, "strategy": "vote", "model": "home",
                  "members": [{"name": "a"}, {"name": "elsewhere", "base_url": "http://127.0.0.1:9/v1"}]},
        "committee": {**base, "strategy": "committee", "model": "sky", "members": [{"name": "a"}, {"name": "b"}]},
        "moa-lite": {**base, "strategy": "moa", "model": "home", "n": 2, "moa": {"layers": 1}},
    }


@pytest.fixture
def upstream(fake_server):
    return fake_server(models())


@pytest.fixture
def server(upstream, tmp_path):
    environ = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": upstream.base_url,
               "DEEPSEEK_API_KEY": DEEPSEEK_KEY, "DEEPSEEK_BASE_URL": upstream.base_url}
    with serve(tmp_path / "ens", configs(upstream.base_url), environ=environ) as url:
        yield url


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def ask(url: str, model: str, **extra):
    return client(url).chat.completions.create(model=model, messages=[{"role": "user", "content": "Capital of France?"}],
                                               **extra)


def called(upstream) -> list[tuple[str, str]]:
    """(authorization, model) of every chat call the upstream got."""
    return [(headers.get("authorization", ""), entry["body"]["model"])
            for entry, headers in zip(upstream.requests, upstream.headers_seen) if entry["path"].endswith("/chat/completions")]


def test_a_routed_vote_calls_the_upstream_model_named(server, upstream):
    reply = ask(server, "vote@openai/mini")
    assert reply.model == "vote@openai/mini" and reply.choices[0].message.content == "Paris"
    assert called(upstream) == [(f"Bearer {OPENAI_KEY}", "mini")] * 2, "both members switched, with openai's key"
    upstream.reset_counters()
    assert ask(server, "vote").choices[0].message.content == "Paris"  # the ensemble itself is unchanged
    assert {model for _, model in called(upstream)} == {"home"}


def test_members_that_name_their_own_provider_and_model_keep_them(server, upstream):
    ask(server, "mixed@deepseek/deepseek-v4-flash")
    models_called = sorted(model for _, model in called(upstream))
    assert models_called == ["big", "deepseek-v4-flash", "judge-model"]
    keys = {model: key for key, model in called(upstream)}
    assert keys["deepseek-v4-flash"] == f"Bearer {DEEPSEEK_KEY}" and keys["judge-model"] == f"Bearer {OPENAI_KEY}"
    assert keys["big"] != f"Bearer {DEEPSEEK_KEY}", "the vllm member kept its endpoint, without the routed key"


def test_a_provider_alone_is_its_default_model_and_moa_streams(server, upstream):
    stream = client(server).chat.completions.create(model="moa-lite@deepseek", stream=True,
                                                    messages=[{"role": "user", "content": "Capital of France?"}])
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Paris"
    assert {model for _, model in called(upstream)} == {"deepseek-v4-flash"}


@pytest.mark.parametrize("model, says", [
    ("vote@nope/x", "unknown provider 'nope'; the part after '@' starts with one of local, openai"),
    ("nothing@openai/mini", "no ensemble 'nothing' to route; choose one of aimed, committee"),
    ("vote@together/some-model", "the server has no key for provider 'together' (TOGETHER_API_KEY is not set"),
    ("vote@ollama/llama3:8b", "provider 'ollama' takes no key"),
    ("vote@llamacpp/vote", "provider 'llamacpp' takes no key"),
    ("vote@openai-compatible/x", "provider 'openai-compatible' takes no key"),
    ("vote@llm/gpt-4o-mini", "the llm backend cannot be routed to"),
    ("vote@openai", "provider 'openai' has no default model; write vote@openai/MODEL"),
    ("vote@openai/http://127.0.0.1:9/v1", "looks like a URL; a routed name names a model, never a base URL"),
    ("vote@local//etc/passwd", "a routed name never names a file; local models are named: smollm2"),
    ("vote@local/models/x.gguf", "a routed name never names a file"),
    ("vote@local/x.gguf", "a routed name never names a file"),
    ("vote@local/~/x", "a routed name never names a file"),
    ("vote@local/tinyllama", "no local model 'tinyllama' on this server; local models are named: smollm2"),
    ("vote@a=openai/mini", "takes no member name (a=)"),
    ("vote@openai/mini*3", "takes no copy count (*3)"),
    ("@openai/mini", "name the ensemble before '@'"),
    ("partial@openai/mini", "members[1] 'half' names its own provider 'vllm' but not the rest of its upstream"),
    ("aimed@openai/mini", "members[1] 'elsewhere' names its own base_url but not the rest of its upstream"),
    ("committee@openai/sky", "member 'a' (openai, sky) cannot continue an assistant prefix exactly, which committee "
                             "needs"),
])
def test_refusals_are_400s_naming_the_piece_before_any_upstream_call(server, upstream, model, says):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(server, model)
    error = caught.value.body
    assert caught.value.status_code == 400 and error["param"] == "model", error
    assert says in error["message"], error["message"]
    assert OPENAI_KEY not in error["message"] and DEEPSEEK_KEY not in error["message"]
    assert upstream.calls == 0, "refused before any upstream call"


def test_a_routed_committee_runs_where_the_upstream_can_continue_a_prefix(server, upstream):
    reply = ask(server, "committee@deepseek/sky")
    assert reply.choices[0].message.content.startswith("The sky is blue")
    assert {model for _, model in called(upstream)} == {"sky"}


def test_models_list_the_ensembles_and_say_how_to_route_them(server):
    page = client(server).models.list()
    cards = {m.id: m for m in page.data}
    assert set(cards) == set(configs("x"))
    assert cards["vote"].routed_as == "vote@PROVIDER/MODEL"  # type: ignore[attr-defined]
    routing = (page.model_extra or {})["routing"]
    assert routing["syntax"] == "ENSEMBLE@PROVIDER/MODEL"
    from ensemble_cli.providers.local_models import NAMED

    installed = [model.name for model in NAMED if model.installed()]
    assert routing["providers"] == ["local", "openai", "deepseek"] and routing["local_models"] == installed
    assert "aimed@openai/MODEL" in routing["examples"] and "never a file" in routing["description"]
    one = client(server).models.retrieve("vote@openai/mini")
    assert one.id == "vote@openai/mini" and one.routed_from == "vote"  # type: ignore[attr-defined]
    with pytest.raises(openai.NotFoundError):
        client(server).models.retrieve("nothing@openai/mini")
    with pytest.raises(openai.BadRequestError, match="no key for provider 'together'"):
        client(server).models.retrieve("vote@together/x")


def test_the_response_and_the_request_log_name_the_routed_model(upstream, tmp_path):
    import json

    from ensemble_cli.server import Limits

    environ = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": upstream.base_url}
    log = tmp_path / "requests.jsonl"
    with serve(tmp_path / "ens", configs(upstream.base_url), Limits(log_path=str(log)), environ=environ) as url:
        reply = ask(url, "vote@openai/mini")
        with pytest.raises(openai.BadRequestError):
            ask(url, "vote@local/x.gguf")
    assert reply.usage is not None and reply.usage.prompt_tokens == 20
    ensemble = (reply.model_extra or {})["ensemble"]
    assert [(m["name"], m["provider"], m["model"]) for m in ensemble["members"]] == [("a", "openai", "mini"),
                                                                                    ("b", "openai", "mini")]
    ok, refused = [json.loads(line) for line in log.read_text().splitlines()]
    assert ok["model"] == "vote@openai/mini" and ok["status"] == "ok"
    assert {m["model"] for m in ok["members"]} == {"mini"} and OPENAI_KEY not in log.read_text()
    assert refused["status"] == "rejected" and refused["model"] == "vote@local/x.gguf"
    assert "never names a file" in refused["errors"][0]


def test_routed_ensembles_are_kept_up_to_a_bound(upstream, tmp_path):
    from ensemble_cli.routing import Gate
    from ensemble_cli.server.routes import Models
    from serve_helpers import write_ensembles

    from ensemble_cli.server import load_ensembles

    environ = {"OPENAI_API_KEY": OPENAI_KEY}
    ensembles = load_ensembles(write_ensembles(tmp_path / "ens", configs(upstream.base_url)), environ)
    served = Models(ensembles, Gate(environ, {"smollm2": "smollm2"}), kept=2)
    first = served.find("vote@openai/one")
    assert served.find("vote@openai/one") is first
    served.find("vote@openai/two")
    served.find("vote@openai/three")
    assert served.find("vote@openai/one") is not first, "the oldest was let go"
    assert len(served._routed) == 2
    assert first.registry is None and first.config.members[0].provider is None
    assert first.config.provider == "openai" and first.config.base_url is None
