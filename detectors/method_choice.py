"""Evidently's automatic choice of drift method, decided once from the reference.

Evidently 0.7.23 (``legacy/calculations/stattests/registry.py``,
``_get_default_stattest``) chooses by column type, the number of present
reference values and the number of distinct values:

============================  =========================  ==========================
                               reference <= 1,000 values  reference > 1,000 values
============================  =========================  ==========================
numerical, <= 2 distinct       ztest                      jensenshannon
numerical, 3 to 5 distinct     chisquare                  jensenshannon
numerical, > 5 distinct        ks                         wasserstein
categorical, <= 2 distinct     ztest                      jensenshannon
categorical, > 2 distinct      chisquare                  jensenshannon
============================  =========================  ==========================

Departure: Evidently counts distinct values over the reference and the
current window together, so a window bringing a new value can change a
feature's method from one window to the next. Driftline counts them in the
reference only, so a feature's method (and its ``method`` label) is fixed for
the reference's lifetime. The two agree whenever the window brings no value
unseen in the reference, or the new values do not cross the 2 or 5 limits.

>>> choose_method("numerical", reference_size=5000, n_unique=4000)
'wasserstein'
>>> choose_method("categorical", reference_size=800, n_unique=2)
'ztest'
"""

from __future__ import annotations

from detectors.base import FeatureKind
from detectors.drift_methods import METHODS, Method

SMALL_REFERENCE = 1000
"""A reference with at most this many present values is 'small' (tests), above it 'large' (distances)."""
FEW_VALUES = 5
"""A numerical feature with at most this many distinct values is treated like a category."""
NUMERICAL_ONLY: frozenset[str] = frozenset({"ks", "wasserstein"})


def choose_method(kind: FeatureKind, *, reference_size: int, n_unique: int) -> Method:
    """Evidently's default method for a feature of ``kind`` with this reference."""
    if kind not in ("numerical", "categorical"):
        raise ValueError(f"unknown feature kind {kind!r}; expected 'numerical' or 'categorical'")
    if reference_size <= SMALL_REFERENCE:
        if kind == "numerical" and n_unique > FEW_VALUES:
            return "ks"
        return "chisquare" if n_unique > 2 else "ztest"
    if kind == "numerical" and n_unique > FEW_VALUES:
        return "wasserstein"
    return "jensenshannon"


def check_override(feature: str, kind: FeatureKind, method: str) -> Method:
    """Validate a configured per-feature method: known, and applicable to the feature's kind."""
    for known in METHODS:
        if method == known:
            if kind == "categorical" and known in NUMERICAL_ONLY:
                raise ValueError(f"method {method!r} for categorical feature {feature!r} needs numbers")
            return known
    expected = ", ".join(METHODS)
    raise ValueError(f"unknown drift method {method!r} for feature {feature!r}; expected one of {expected}")
