"""The record schema as a pydantic model, generated from the strategies' typed details.

``ensemble schema`` prints its JSON Schema, for people who pipe records into other tools; tests
validate real records against it, so the schema and what the tool writes cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from .records import SCHEMA_VERSION


class MemberInfo(BaseModel):
    """A member as called: never a key or a header."""

    model_config = ConfigDict(extra="forbid")
    name: str
    role: str = Field(description="member, proposer, or the role the strategy calls it in (judge, aggregator...)")
    provider: str
    model: str
    weight: float
    temperature: float
    max_tokens: int
    base_url: str | None = None
    system: str | None = None


class UsageInfo(BaseModel):
    """What a prompt's calls cost; every call counts, failed ones too."""

    model_config = ConfigDict(extra="allow")
    calls: int
    failed_calls: int = 0
    retries: int
    prompt_tokens: int
    completion_tokens: int
    call_latency_s: float
    wall_s: float


class RecordBase(BaseModel):
    """One line of a JSONL output: one prompt's result (or its failure). ``record_model`` adds the details
    of every registered strategy."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    schema_version: int = Field(alias="schema", description=f"{SCHEMA_VERSION} for records written by this version")
    run_id: str
    strategy: str = Field(description="the strategy that wrote it")
    fingerprint: str = Field(description="hash of the strategy, settings and members that shape the output")
    id: str
    status: Literal["ok", "error"]
    input: dict[str, Any] = Field(description='{"prompt": text} or {"messages": [{role, content}, ...]}')
    output: Any = Field(description="text, the winning answer, or the draws; null on error")
    details: Any
    members: list[MemberInfo]
    settings: dict[str, Any] = Field(description="seed, max_tokens, temperature, n and the strategy's section")
    usage: UsageInfo
    errors: list[str]
    created: str

    @model_validator(mode="after")
    def _details_of_its_strategy(self) -> "RecordBase":
        """Its strategy is a registered one, and an ok record's details are that strategy's own (a partial
        dict belongs to a failed prompt only)."""
        from . import catalog

        spec = catalog.find(self.strategy)
        if spec is None:
            raise ValueError(f"strategy {self.strategy!r} is not one of {', '.join(catalog.names())}")
        if self.status == "ok" and not isinstance(self.details, spec.details):
            raw = self.details if isinstance(self.details, dict) else self.details.model_dump(mode="json")
            self.details = spec.details.model_validate(raw)
        return self


def record_model() -> type[RecordBase]:
    """The record model of the strategies registered now: ``details`` is one of their details models."""
    from . import catalog

    details = tuple(spec.details for spec in catalog.specs())
    annotation = Union[(*details, dict[str, Any])]  # type: ignore[valid-type]
    return create_model("Record", __base__=RecordBase, details=(annotation, Field(
        union_mode="left_to_right",
        description="the strategy's typed details; on error, what was gathered before the failure")))


def record_schema() -> dict[str, Any]:
    return record_model().model_json_schema(by_alias=True)
