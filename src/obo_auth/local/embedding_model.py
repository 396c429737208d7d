"""The local embedding model behind the seeded embedding endpoints (``databricks-gte-large-en``,
``databricks-bge-large-en``): deterministic, 1024 dimensions, unit length.

Not a language model: a hashed bag of words and word pieces (feature hashing), so texts that
share words or word stems land near each other, and every text has some similarity to every
other (a vector search query returns its nearest rows whatever the wording, as on the platform).
The same function embeds rows and queries, so a query by text and a query by the text's
vector (``query_vector``) rank alike.
"""

from __future__ import annotations

import functools
import hashlib
import re

import numpy as np

DIMENSION = 1024
_WORD = re.compile(r"[a-z0-9]+")
# A small constant component: keeps every pair of texts a little similar (scores above 0.2).
_BASELINE = 0.15


@functools.lru_cache(maxsize=262_144)
def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % DIMENSION, (1.0 if (value >> 40) & 1 else -1.0)


def _features(text: str) -> list[tuple[str, float]]:
    features = []
    for word in _WORD.findall(text.lower()):
        features.append((f"w:{word}", 1.0))
        stem = word[:5]  # "vacation"/"vacations", "parental"/"parents" share a piece
        if len(word) > 5:
            features.append((f"s:{stem}", 0.6))
        for i in range(max(len(word) - 2, 1)):
            features.append((f"g:{word[i:i + 3]}", 0.15))
    return features


@functools.lru_cache(maxsize=65_536)
def _embed(text: str) -> tuple[float, ...]:
    vector = np.zeros(DIMENSION)
    for feature, weight in _features(text):
        index, sign = _bucket(feature)
        vector[index] += sign * weight
    norm = np.linalg.norm(vector)
    vector = vector / norm if norm else vector
    vector[0] += _BASELINE  # every vector leans a little the same way
    return tuple(np.round(vector / np.linalg.norm(vector), 7).tolist())


def embed(text: str) -> list[float]:
    """The unit-length embedding of ``text``; the same text always gets the same vector."""
    return list(_embed(text))


def similarity_score(query: list[float] | np.ndarray, row: list[float] | np.ndarray) -> float:
    """The platform's score for L2 distance: 1 / (1 + distance²), in (0, 1]; 1 for the same vector."""
    difference = np.asarray(query, dtype=float) - np.asarray(row, dtype=float)
    return float(1.0 / (1.0 + float(difference @ difference)))
