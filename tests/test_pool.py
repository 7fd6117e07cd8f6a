"""Two real embedded models with different tokenizers in one process: SmolLM2-135M-Instruct (49k tokens, a
chat template) and Gemma 3 270M (262k tokens, a base model without one). Committees across the two continue
the shared text exactly in each model's own tokens; the base model is never given ChatML."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from ensemble_cli.calls import Request, user_prompt
from ensemble_cli.cli import app
from ensemble_cli.inputs import from_prompt
from ensemble_cli.providers.local import LocalDecoder, LocalProvider
from ensemble_cli.strategies.base import Member
from ensemble_cli.strategies.committee import Committee, CommitteeSettings
from ensemble_cli.usage import Tally

from conftest import run_strategy

pytestmark = [pytest.mark.embedded, pytest.mark.pool]
SKY = "Why is the sky blue?"


@pytest.fixture(scope="module")
def smollm2():
    return LocalProvider("smollm2")


@pytest.fixture(scope="module")
def gemma():
    return LocalProvider("gemma3-270m")


def fresh_top(provider: LocalProvider, text: str, question: str = SKY) -> tuple[str, float]:
    """The model's own top next token and its probability after ``text``, decoded from scratch."""
    request = Request(user_prompt(question), prefix=text, max_tokens=1, top_logprobs=5)
    (completion,) = asyncio.run(provider.complete(request))
    if not completion.tokens:
        return "", 1.0
    top = completion.tokens[0].top[0]
    return top.text, math.exp(top.logprob)


def test_ensemble_models_lists_both_models():
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["smollm2"]["vocabulary"] == 49152 and rows["smollm2"]["chat_template"] is True
    gemma = rows["gemma3-270m"]
    assert gemma["vocabulary"] == 262144 and gemma["chat_template"] is False and gemma["architecture"] == "gemma3"
    assert 250e6 < gemma["parameters"] < 300e6 and "Gemma" in gemma["license"]
    table = CliRunner().invoke(app, ["models"]).stdout
    assert "local/gemma3-270m" in table and "none (plain completion form)" in table


def test_the_base_model_gets_the_plain_form_with_one_bos(gemma):
    engine = gemma.engine
    assert gemma.plain_prompts and engine.add_bos
    rendered = engine.render(user_prompt("Hi", system="Be brief."))
    assert rendered == "Be brief.\n\nQuestion: Hi\nAnswer:" and "<|im_start|>" not in rendered
    tokens = engine.prompt_tokens(user_prompt("Hi"))
    bos = engine.model.token_bos()
    assert tokens[0] == bos and tokens.count(bos) == 1
    chatml = LocalProvider("gemma3-270m", template="chatml")  # asked for explicitly, it is given
    assert not chatml.plain_prompts and chatml.key() != gemma.key()
    assert "<|im_start|>user" in chatml.engine.render(user_prompt("Hi"), template="chatml")


def test_a_run_notes_the_base_models_prompt_form_and_llama_cpp_stays_quiet():
    command = [sys.executable, "-m", "ensemble_cli", "committee", "-p", "hi", "--member", "local/smollm2",
               "--member", "local/gemma3-270m", "--max-tokens", "2", "-o", "-"]
    quiet = subprocess.run([*command, "-q"], capture_output=True, text=True, timeout=180)
    assert quiet.returncode == 0 and quiet.stderr == ""
    shown = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert "local model 'gemma3-270m' has no chat template (a base model)" in shown.stderr
    assert "plain completion form" in shown.stderr and "llama_" not in shown.stderr


def test_after_a_winner_inside_its_token_gemma_holds_its_own_tokens(gemma):
    """" Ray" (SmolLM2's token) then "leigh": Gemma's sequence ends as its own single " Rayleigh" token, with
    only that last token evaluated again, and its next distribution is that of a fresh decode."""
    engine = gemma.engine
    fed: list[int] = []
    decoder = LocalDecoder(engine, [Request(user_prompt(SKY))], 5, Tally())
    asyncio.run(decoder.positions([0], 1))
    original_feed = decoder.batch.feed

    def counting(new_tokens):
        fed.extend(len(t) for t in new_tokens.values())
        return original_feed(new_tokens)

    decoder.batch.feed = counting
    decoder.extend(0, "The sky is blue because of")
    asyncio.run(decoder.positions([0], 1))
    decoder.extend(0, " Ray")
    asyncio.run(decoder.positions([0], 1))
    decoder.extend(0, "leigh")
    (position,) = asyncio.run(decoder.positions([0], 1))[0]
    text = "The sky is blue because of Rayleigh"
    assert decoder.text(0) == text
    assert decoder.generated[0][-1] == engine.tokenize(" Rayleigh", add_bos=False)[0]
    assert decoder.generated[0] == engine.tokenize(text, add_bos=False)
    assert decoder.rewound == 1 and fed[-1] == 1  # " Ray" was dropped and " Rayleigh" fed: no prefix re-read
    prompt = decoder.prompt_length[0]
    assert len(decoder.batch.tokens[0]) == prompt + len(decoder.generated[0])
    top, p = fresh_top(gemma, text)
    assert position.greedy == top and math.exp(position.top[0][1]) == pytest.approx(p, abs=0.02)
    asyncio.run(decoder.aclose())


def _committee(members, **settings):
    return Committee(members, CommitteeSettings(**settings), 40)


def test_a_committee_of_both_models_merges_across_vocabularies(smollm2, gemma):
    result = run_strategy(_committee([Member("smollm2", smollm2), Member("gemma", gemma)], trace=True),
                          from_prompt(SKY))
    assert "Rayleigh scattering" in result.output
    steps = result.details["steps"]
    partial = [s for s in steps if s.get("partial")]
    assert partial, "some step's top token of one model was cut apart by the other's winner"
    for step in partial:
        for name in step["partial"]:
            top = step["members"][name][0]
            assert top != step["token"] and (top.startswith(step["token"]) or step["token"].startswith(top))
    # each step's recorded Gemma top-1 is what Gemma itself says after the shared text so far
    text = ""
    for step in steps[:14]:
        top, p = fresh_top(gemma, text)
        assert step["members"]["gemma"][0] == top, (text, step)
        assert step["members"]["gemma"][1] == pytest.approx(p, abs=0.03), (text, step)
        text += step["token"] or ""
    assert "Rayleigh" in text


def test_gating_and_drafting_across_the_two_vocabularies(smollm2, gemma):
    members = [Member("smollm2", smollm2), Member("gemma", gemma)]
    plain = run_strategy(_committee(members), from_prompt(SKY))
    drafted = _committee(members, draft=4)
    assert any("does nothing for in-process members" in note for note in drafted.notes)
    assert run_strategy(drafted, from_prompt(SKY)).output == plain.output  # lossless: same answer
    gated = run_strategy(_committee(members, gate=0.6), from_prompt(SKY))
    steps = gated.details["steps"]
    share = gated.details["summary"]["ensembled_share"]
    assert 0 < share < 1 and gated.output
    text = ""
    checked = 0
    for step in steps:
        if step["ensembled"] and checked < 4:  # Gemma joins after text it did not see decoded, in its own tokens
            top, p = fresh_top(gemma, text)
            assert step["members"]["gemma"] == [top, pytest.approx(p, abs=0.03)], (text, step)
            checked += 1
        else:
            assert set(step["members"]) == ({"smollm2", "gemma"} if step["ensembled"] else {"smollm2"})
        text += step["token"] or ""
    assert checked == 4


def test_both_models_share_the_one_decode_thread(smollm2, gemma):
    assert smollm2.engine.executor is gemma.engine.executor


def test_a_vote_of_both_models_runs(tmp_path):
    result = CliRunner().invoke(app, ["vote", "--config", "configs/pool.yaml", "-q", "-o", "-"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout.splitlines()[0])
    assert {m["model"] for m in record["members"]} == {"smollm2", "gemma3-270m"}
    assert record["output"]


def test_cot_decode_on_the_base_model_uses_the_raw_template(gemma):
    from ensemble_cli.strategies.cot_decode import CotDecode, CotDecodeSettings

    strategy = CotDecode([Member("gemma", gemma)], CotDecodeSettings(k=2), 8)
    assert strategy.base_request(from_prompt("What is 2 + 3?")).prompt == "Q: What is 2 + 3?\nA:"
    assert any("raw prompt" in note for note in strategy.notes)
    chat = CotDecode([Member("gemma", gemma)], CotDecodeSettings(k=2, raw=False), 8)
    assert chat.base_request(from_prompt("What is 2 + 3?")).prompt is None


def test_shared_decode_state_survives_two_models_interleaved(smollm2, gemma):
    """Greedy replies of each model alone equal their replies decoded while the other model's run interleaves."""
    request = Request(user_prompt("Name three colours."), max_tokens=12)

    async def both():
        return await asyncio.gather(smollm2.complete(request), gemma.complete(request))

    alone = [asyncio.run(p.complete(request))[0].text for p in (smollm2, gemma)]
    together = [c[0].text for c in asyncio.run(both())]
    assert together == alone and np.all([bool(t) for t in alone])


def test_the_default_bench_arms_pool_both_models():
    from ensemble_cli.bench.arms import load_plan

    arms = {arm.name: arm for arm in load_plan(None, "number").arms}
    for name in ("vote", "moa-lite", "committee"):
        models = {m.model for m in arms[name].config.members}
        assert models == {"smollm2", "gemma3-270m"}, name
        assert any("the pool" in note for note in arms[name].notes)
    assert [m.model for m in arms["single"].config.members] == [None]  # the baseline stays one model
    assert load_plan(None, "number", {"members": ["local/smollm2"]}).arms[1].config.members[0].model == "smollm2"
