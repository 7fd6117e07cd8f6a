"""Diversity of a set of responses: unique count, distinct-n, mean pairwise word-level Jaccard similarity."""

from __future__ import annotations

import math
from itertools import combinations
from typing import Sequence

from .extraction import normalise_text


def words(text: str) -> list[str]:
    return normalise_text(text).split()


def distinct_n(responses: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams across the responses (0 when there are none)."""
    grams = [tuple(w[i:i + n]) for w in map(words, responses) for i in range(len(w) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def jaccard(a: str, b: str) -> float:
    left, right = set(words(a)), set(words(b))
    if not left and not right:
        return 1.0
    return len(left & right) / len(left | right)


def mean_pairwise_similarity(responses: Sequence[str]) -> float:
    pairs = list(combinations(responses, 2))
    return sum(jaccard(a, b) for a, b in pairs) / len(pairs) if pairs else 1.0


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def mean_pairwise_cosine(vectors: Sequence[Sequence[float]]) -> float:
    pairs = list(combinations(vectors, 2))
    return sum(cosine(a, b) for a, b in pairs) / len(pairs) if pairs else 1.0


def report(responses: Sequence[str], vectors: Sequence[Sequence[float]] | None = None) -> dict[str, float | int]:
    """The metrics of one set of responses; with embedding ``vectors``, their mean pairwise cosine too."""
    metrics: dict[str, float | int] = {
        "responses": len(responses),
        "unique": len({normalise_text(r) for r in responses}),
        "distinct_1": round(distinct_n(responses, 1), 4),
        "distinct_2": round(distinct_n(responses, 2), 4),
        "mean_pairwise_jaccard": round(mean_pairwise_similarity(responses), 4),
    }
    if vectors is not None:
        metrics["mean_pairwise_cosine"] = round(mean_pairwise_cosine(vectors), 4)
    return metrics
