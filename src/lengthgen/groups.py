"""Breakdown groups of metric rows: evaluation reports some variables separately (k for sparse
tasks, hops for variable chains) and stores each group under a name such as "k=3" ("" is the
pooled row). This module is the one place that writes and reads those names."""

from __future__ import annotations

# Metric rows of the longest bin's validation draw (evaluate.VALIDATION_TAG): not a breakdown group,
# so views of the reported sets never read them.
VALIDATION = "validation"


def group_name(values: dict[str, int]) -> str:
    """The stored name of a breakdown group, e.g. {"k": 3} -> "k=3"; {} -> "" (pooled)."""
    return ",".join(f"{name}={value}" for name, value in values.items())


def group_values(name: str) -> dict[str, int]:
    """The variables of a stored group name: "k=3" -> {"k": 3}; "" -> {}. Names that are not
    breakdown groups read as {}."""
    values = {}
    for part in filter(None, name.split(",")):
        var, sep, value = part.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            return {}
        values[var] = int(value)
    return values
