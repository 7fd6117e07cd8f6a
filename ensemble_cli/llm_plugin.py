"""The ``llm`` plugin: every named ensemble as an ``llm`` model, ``ensemble-<name>``.

Declared as an entry point (``[project.entry-points.llm]``), so ``llm models`` lists the ensembles of
``ensembles.py`` and ``llm -m ensemble-vote "question"`` runs one through a ``Session``. Text streams
where the strategy streams (moa: the aggregator's text; committee: each chosen token); other strategies
give their output when they finish. ``-o KEY VALUE`` sets a key of the strategy's section or
``max_tokens``/``temperature``/``seed``, validated by the same models as the config files. The
response's usage is the run's token counts and its ``response_json`` the ensemble's record, so both
reach ``llm logs``.

A routed name, ``ensemble-vote@openai/gpt-4o-mini`` (``routing.py``), is the ensemble switched to that
upstream. ``llm`` finds only the models a plugin registers, so the plugin registers each routed name that
an ``llm`` alias points at (``llm aliases set vote-mini 'ensemble-vote@openai/gpt-4o-mini'``); both the
alias and the routed name then run it.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

import llm
from pydantic import Field, ValidationError, create_model, model_validator

from . import catalog
from .config import RunConfig, deep_merge, format_validation_error
from .ensemble_files import ensemble_files, load_named
from .errors import ConfigError, EnsembleError, render
from .events import Event, PromptFailed, PromptFinished, StreamDelta, TokenChosen
from .inputs import PromptItem, empty_reason, prompt_id
from .calls import Message
from .records import output_text
from .routing import is_routed, keep

PREFIX = "ensemble-"
COMMON_OPTIONS = ("max_tokens", "temperature", "seed")
OWNED = ("prompt", "input", "output", "resume")
"""Run-config keys the plugin sets itself: the prompt comes from llm, the record goes to llm's log."""


def option_name(path: str) -> str:
    """How the plugin names a setting in its messages: the ``-o`` option that sets it, else its key in the
    ensemble's file (a member setting, a run setting that no option takes)."""
    head, _, key = path.partition(".")
    if not key and path in COMMON_OPTIONS:
        return f"-o {path}"
    spec = catalog.find(head)
    if key and "." not in key and spec is not None and key not in spec.config_only():
        return f"-o {key}"
    return f"{path} in the ensemble's file"


def overrides(strategy: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options as a partial run config: common keys at the top, the rest in the strategy's section."""
    data: dict[str, Any] = {k: v for k, v in options.items() if k in COMMON_OPTIONS and v is not None}
    settings = {k: v for k, v in options.items() if k not in COMMON_OPTIONS and v is not None}
    if settings:
        data[strategy] = settings
    return data


def options_for(strategy: str | None) -> type[llm.Options]:
    """An ``llm`` Options class with the strategy's keys, every one optional, checked by RunConfig itself."""
    fields: dict[str, Any] = {}
    for name in COMMON_OPTIONS:
        info = RunConfig.model_fields[name]
        fields[name] = (Optional[info.annotation], Field(default=None, description=info.description))
    if strategy is not None:
        spec = catalog.spec(strategy)
        for name, info in spec.settings.model_fields.items():
            if name not in spec.config_only():
                fields[name] = (Optional[info.annotation], Field(default=None, description=info.description))

    def check(self: Any) -> Any:
        given = {k: v for k, v in self.model_dump().items() if v is not None}
        try:
            RunConfig.model_validate(overrides(strategy or "", given) if strategy else given)
        except ValidationError as exc:
            raise ValueError(render(format_validation_error(None, exc), option_name)) from None
        return self

    return create_model(f"{(strategy or 'ensemble').title().replace('-', '')}Options", __base__=llm.Options,
                        __validators__={"_check": model_validator(mode="after")(check)},  # type: ignore[dict-item]
                        **fields)


def messages_of(prompt: llm.Prompt, conversation: Any) -> tuple[Message, ...]:
    """The conversation as the ensemble sees it: system prompt, earlier turns, this prompt."""
    turns: list[Message] = [Message("system", prompt.system)] if prompt.system else []
    for previous in getattr(conversation, "responses", None) or []:
        turns += [Message("user", previous.prompt.prompt), Message("assistant", previous.text())]
    turns.append(Message("user", prompt.prompt))
    return tuple(turns)




class EnsembleModel(llm.Model):
    """One named ensemble; runs the whole Session on a worker thread and yields what it streams."""

    can_stream = True

    def __init__(self, name: str, path: Path) -> None:
        """``name``: the ensemble's, or a routed name ``ENSEMBLE@PROVIDER/MODEL`` of the ensemble at ``path``."""
        self.model_id = PREFIX + name
        self.path = path
        self.data: dict[str, Any] = {}
        self.kept: dict[str, str | None] = {}
        try:
            found = load_named(name, path, OWNED)
            self.data, self.kept = found.data, found.kept
            self.config: RunConfig | None = found.config()
            self.problem: str | None = None
        except ConfigError as exc:  # listed anyway: running it says what is wrong with the file
            self.config, self.problem = None, str(exc)
        self.strategy = self.config.strategy if self.config else None
        self.Options = options_for(self.strategy)  # type: ignore[misc,assignment]

    def run_config(self, options: llm.Options) -> tuple[RunConfig, str]:
        if self.config is None:
            raise llm.ModelError(f"{self.model_id}: {self.problem}")
        if self.strategy is None:
            raise llm.ModelError(f"{self.model_id}: {self.path} names no strategy; add `strategy: NAME` ("
                                 f"{', '.join(catalog.names())}) to the file")
        given = {k: v for k, v in options.model_dump().items() if v is not None}
        try:
            config = RunConfig.model_validate(deep_merge(self.data, overrides(self.strategy, given)))
        except ValidationError as exc:
            raise llm.ModelError(format_validation_error(f"{self.model_id} -o", exc)) from None
        return keep(config, self.kept), self.strategy

    def execute(self, prompt: llm.Prompt, stream: bool, response: llm.Response,
                conversation: Any) -> Iterator[str]:
        from .session import Session

        config, strategy = self.run_config(prompt.options)
        messages = messages_of(prompt, conversation)
        if empty_reason(messages) is not None:
            raise llm.ModelError(f"{self.model_id}: the prompt is empty; give it a question")
        item = PromptItem(prompt_id(prompt.prompt), messages)
        pieces: queue.Queue[Event | BaseException | None] = queue.Queue()
        running = Background(Session(config), strategy, item, pieces.put, self.model_id)
        try:
            yield from self._answer(pieces, response)
        finally:  # the caller stopped reading (Ctrl-C, a closed pipe): no further call for nobody
            running.cancel()

    def _answer(self, pieces: "queue.Queue[Event | BaseException | None]", response: llm.Response) -> Iterator[str]:
        streamed, record, failure = "", None, None
        while (event := pieces.get()) is not None:
            if isinstance(event, EnsembleError):
                raise llm.ModelError(f"{self.model_id}: {event.text(option_name)}") from event
            if isinstance(event, BaseException):
                raise event
            if isinstance(event, (StreamDelta, TokenChosen)) and event.text:
                streamed += event.text
                yield event.text
            elif isinstance(event, PromptFinished):
                record = event.record
            elif isinstance(event, PromptFailed):
                failure, record = event.error, event.record
        if record is not None:
            response.response_json = record
            usage = record.get("usage", {})
            response.set_usage(input=usage.get("prompt_tokens"), output=usage.get("completion_tokens"),
                               details={k: usage[k] for k in ("calls", "failed_calls", "retries") if k in usage})
        if failure is not None:
            raise llm.ModelError(f"{self.model_id}: {render(failure, option_name)}")
        text = output_text(record.get("output") if record else None)
        if text.startswith(streamed) and len(text) > len(streamed):
            yield text[len(streamed):]  # strategies that do not stream give their output here


class Background:
    """One prompt's Session, run in its own event loop on a worker thread, cancellable from the caller's."""

    def __init__(self, session: Any, strategy: str, item: PromptItem, emit: Any, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[Any] | None = None
        self.stopped = threading.Event()
        self.emit = emit
        self.thread = threading.Thread(target=self._work, args=(session, strategy, item), name=name, daemon=True)
        self.thread.start()

    def _work(self, session: Any, strategy: str, item: PromptItem) -> None:
        async def main() -> None:
            if self.stopped.is_set():
                return
            prepared = session.prepare(strategy)
            async with session:
                await session.run(prepared, [item], [self.emit])

        try:
            self.task = self.loop.create_task(main())
            self.loop.run_until_complete(self.task)
            self.emit(None)
        except asyncio.CancelledError:
            self.emit(None)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            self.emit(exc)
        finally:
            self.loop.close()

    def cancel(self, wait_s: float = 10.0) -> None:
        """Cancel the run if it is still going (its calls in flight too) and wait for its thread to end."""
        self.stopped.set()
        if self.thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(lambda: self.task.cancel() if self.task is not None else None)
            except RuntimeError:  # the loop closed in the meantime: the run is over
                pass
            self.thread.join(wait_s)


def aliased_routes() -> list[str]:
    """The routed names (without the prefix) that ``llm`` aliases point at, in llm's ``aliases.json``."""
    try:
        aliases = json.loads((llm.user_dir() / "aliases.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    targets = aliases.values() if isinstance(aliases, dict) else []
    return list(dict.fromkeys(t[len(PREFIX):] for t in targets
                              if isinstance(t, str) and t.startswith(PREFIX) and is_routed(t)))


@llm.hookimpl
def register_models(register: Any) -> None:
    files = ensemble_files()
    for name, path in files.items():
        register(EnsembleModel(name, path))
    for routed in aliased_routes():
        found = files.get(routed.partition("@")[0])
        if found is not None:
            register(EnsembleModel(routed, found))
