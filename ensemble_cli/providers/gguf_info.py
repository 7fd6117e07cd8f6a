"""What a GGUF file says about itself, read from its header without loading the model: the metadata the
tool formats prompts with (chat template, BOS/EOS, add_bos), the vocabulary size and the parameter count.

The format (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): magic ``GGUF``, a version, the
tensor and key-value counts, the key-values, then one record per tensor (name, shape, type, offset).
Array values are skipped over except the token list, whose length is the vocabulary size.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ConfigError

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
KEPT_ARRAYS = ("tokenizer.ggml.tokens",)
"""Arrays whose length is kept (as the value): the rest are skipped."""


@dataclass(frozen=True)
class GgufInfo:
    """The header facts of one GGUF file."""

    path: Path
    metadata: dict[str, Any]
    parameters: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "?"))

    @property
    def vocabulary(self) -> int | None:
        value = self.metadata.get("tokenizer.ggml.tokens")
        return value if isinstance(value, int) else None

    @property
    def chat_template(self) -> str | None:
        from .prompt_form import chat_template_of

        return chat_template_of(self.metadata)

    @property
    def title(self) -> str:
        return str(self.metadata.get("general.name") or self.metadata.get("general.basename") or self.path.stem)


def _read(stream: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = stream.read(size)
    if len(data) != size:
        raise ValueError("the file ends inside its header")
    return struct.unpack(fmt, data)[0]


def _string(stream: BinaryIO) -> str:
    length = _read(stream, "<Q")
    return stream.read(length).decode("utf-8", errors="replace")


def _value(stream: BinaryIO, kind: int, key: str) -> Any:
    if kind in _SCALARS:
        return _read(stream, _SCALARS[kind])
    if kind == _STRING:
        return _string(stream)
    if kind == _ARRAY:
        item, count = _read(stream, "<I"), _read(stream, "<Q")
        if item in _SCALARS:
            stream.seek(struct.calcsize(_SCALARS[item]) * count, 1)
        elif item == _STRING:
            for _ in range(count):
                stream.seek(_read(stream, "<Q"), 1)
        else:
            for _ in range(count):
                _value(stream, item, key)
        return count if key in KEPT_ARRAYS else None
    raise ValueError(f"unknown metadata type {kind} at key {key!r}")


@lru_cache(maxsize=16)
def read_info(path: Path) -> GgufInfo:
    """The header of the GGUF at ``path``; a file that is not one is a ConfigError naming it."""
    try:
        with path.open("rb") as stream:
            if stream.read(4) != b"GGUF":
                raise ValueError("it does not start with the GGUF magic")
            _read(stream, "<I")  # version
            tensors, pairs = _read(stream, "<Q"), _read(stream, "<Q")
            metadata: dict[str, Any] = {}
            for _ in range(pairs):
                key = _string(stream)
                metadata[key] = _value(stream, _read(stream, "<I"), key)
            parameters = 0
            for _ in range(tensors):
                _string(stream)
                dims = [_read(stream, "<Q") for _ in range(_read(stream, "<I"))]
                _read(stream, "<I"), _read(stream, "<Q")  # type, offset
                count = 1
                for dim in dims:
                    count *= dim
                parameters += count
    except (OSError, ValueError, struct.error) as exc:
        raise ConfigError(f"{path}: not a readable GGUF model file ({exc})") from None
    return GgufInfo(path, {k: v for k, v in metadata.items() if v is not None}, parameters)
