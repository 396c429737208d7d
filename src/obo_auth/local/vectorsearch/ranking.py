"""Nearest rows first: each row's score for the query vector, ties broken on the primary key.

The score is the platform's for L2 distance, 1 / (1 + distance²), from the local embedding
model (obo_auth.local.embedding_model): in (0, 1] for every row whatever the query's wording,
so a query returns its ``num_results`` nearest rows and ``score_threshold`` cuts where it
would on the platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from obo_auth.local.embedding_model import similarity_score


def ranked(query: np.ndarray | None, vectors: np.ndarray, keys: Sequence[Any]) -> list[tuple[float, int]]:
    """(score, position) for each row of ``vectors``, best first; ``keys`` are the rows' primary keys.

    Without a query every row scores 1, so rows come in primary-key order (a filter-only query).
    """
    scores = [1.0] * len(keys) if query is None else [_as_shown(similarity_score(query, row)) for row in vectors]
    # A column mask may turn a primary key into NULL: those rows sort last rather than fail.
    order = sorted(range(len(keys)), key=lambda i: (-scores[i], keys[i] is None, keys[i]))
    return [(scores[i], i) for i in order]


def _as_shown(score: float) -> float:
    """Six significant digits, as the response carries it: order and score_threshold then use the
    score the caller sees, and a tiny score stays above 0 (rounding to decimal places would not)."""
    return float(f"{score:.6g}")
