"""Numeric helpers over next-token logits: log-softmax, top-k and the top-2 probabilities of a row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TopCandidates:
    """The k most likely next tokens of one sequence: ids and log-probabilities, best first."""

    ids: np.ndarray
    logprobs: np.ndarray


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature if temperature > 0 and temperature != 1.0 else logits
    shifted = scaled - scaled.max()
    return shifted - np.log(np.exp(shifted, dtype=np.float64).sum())


def top_k(logprobs: np.ndarray, k: int) -> TopCandidates:
    """The k best ids, ties broken by lower id (as ``argmax`` does), so greedy and top-1 agree."""
    k = min(k, logprobs.shape[0])
    part = np.argpartition(-logprobs, k - 1)[:k]
    order = np.lexsort((part, -logprobs[part]))
    ids = part[order]
    return TopCandidates(ids=ids, logprobs=logprobs[ids])


def top2_probabilities(logits: np.ndarray) -> tuple[int, float, float]:
    """Greedy token, p(top-1) and p(top-2) of one logits row: two argmax passes and one exp pass."""
    best = int(np.argmax(logits))
    top = float(logits[best])
    total = float(np.exp(logits - top).sum())
    logits[best] = -np.inf
    second = float(logits[int(np.argmax(logits))])
    logits[best] = top
    return best, 1.0 / total, float(np.exp(second - top)) / total


def top_logprobs(logits: np.ndarray, k: int) -> TopCandidates:
    """The k best ids of a logits row with their log-probabilities: one exp pass and one partition
    (cheaper than a full log-softmax when only the top few are wanted)."""
    peak = float(logits.max())
    log_total = peak + float(np.log(np.exp(logits - peak, dtype=np.float32).sum(dtype=np.float64)))
    k = min(k, logits.shape[0])
    part = np.argpartition(-logits, k - 1)[:k]
    order = np.lexsort((part, -logits[part]))
    ids = part[order]
    return TopCandidates(ids=ids, logprobs=logits[ids].astype(np.float64) - log_total)
