"""Deterministic lexical ranking for ``query_text``: Okapi BM25 (k1=1.5, b=0.75).

The local workspace has no embedding model, so "similarity" is lexical: rows that share
no term with the query score 0 and are not returned. Ties break on the primary key, so the
same query over the same rows always gives the same order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_K1 = 1.5
_B = 0.75
_WORD = re.compile(r"[a-z0-9]+")
# Words that match nearly every passage and would drown the signal.
_STOPWORDS = frozenset(
    "a an and are as at be by can do does for from how i in is it my of on or the to what when where who with you your".split()
)


def tokenize(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def bm25_scores(query: str, documents: Sequence[str]) -> list[float]:
    """One BM25 score per document, for ``query``; 0.0 where no query term occurs."""
    docs = [Counter(tokenize(d)) for d in documents]
    if not docs:
        return []
    lengths = [sum(d.values()) for d in docs]
    average = (sum(lengths) / len(docs)) or 1.0
    scores = [0.0] * len(docs)
    for term in set(tokenize(query)):
        containing = sum(1 for d in docs if term in d)
        if not containing:
            continue
        idf = math.log(1 + (len(docs) - containing + 0.5) / (containing + 0.5))
        for i, d in enumerate(docs):
            tf = d.get(term, 0)
            if tf:
                scores[i] += idf * tf * (_K1 + 1) / (tf + _K1 * (1 - _B + _B * lengths[i] / average))
    return scores
