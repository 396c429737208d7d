"""Vectors as queries and seeds give them: a list of numbers of the index's dimension.

The platform stores vectors as 32-bit floats (``array<float>``), so each number must be one:
finite and within float32's range. That also keeps every score above 0 (1 / (1 + L2²) of
float32 vectors cannot underflow in float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from obo_auth.local.seed_parts import short_repr

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def vector_problem(value: Any, dimension: int) -> str | None:
    """What is wrong with ``value`` as a vector of ``dimension`` numbers, said as 'got ...'; None if nothing."""
    if not isinstance(value, list):
        return f"got {short_repr(value)}"
    if len(value) != dimension:
        return f"got a list of {len(value)}"
    for position, item in enumerate(value):
        # bool is an int in Python, never a number in JSON.
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            return f"got a list whose item {position} is {short_repr(item)}"
        if not abs(item) <= _FLOAT32_MAX:  # also false for NaN (JSON parsers accept NaN and Infinity)
            return f"got a list whose item {position} ({short_repr(item)}) is not a finite 32-bit float"
    return None
