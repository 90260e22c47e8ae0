"""The shapes every detector shares: the column table it reads and the interface it offers.

Detectors follow river's drift-detector shape: constructor parameters stored
under their own names and validated with a ``ValueError`` naming the bad value,
state reset in one place (:meth:`WindowDetector.reset`), results as small frozen
dataclasses. A window detector is fitted once on a reference table and then
evaluates one window table at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

FeatureKind = Literal["numerical", "categorical"]
FEATURE_KINDS: tuple[FeatureKind, ...] = ("numerical", "categorical")


@dataclass(frozen=True)
class FeatureTable:
    """The columns of one window or one reference.

    A numerical column is a float64 array with NaN for a missing value; a
    categorical column is an object array of ``str`` with ``None`` for a missing
    value. ``type_errors`` counts values of the wrong type per feature (a string
    in a numerical feature): they are also NaN/None in the column, so the
    statistics see them as missing while data quality reports them apart.
    """

    kinds: Mapping[str, FeatureKind]
    columns: Mapping[str, npt.NDArray[np.generic]]
    n_rows: int
    type_errors: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if set(self.kinds) != set(self.columns):
            raise ValueError(
                f"kinds and columns name different features: {sorted(self.kinds)} vs {sorted(self.columns)}"
            )
        for name, column in self.columns.items():
            if len(column) != self.n_rows:
                raise ValueError(f"column {name!r} has {len(column)} rows, table has {self.n_rows}")

    def numerical(self, name: str) -> npt.NDArray[np.float64]:
        """The column of a numerical feature as float64 (NaN = missing)."""
        return self.columns[name].astype(np.float64, copy=False)

    def present(self, name: str) -> npt.NDArray[np.generic]:
        """The column without its missing values."""
        column = self.columns[name]
        if self.kinds[name] == "numerical":
            values = column.astype(np.float64, copy=False)
            return values[~np.isnan(values)]
        return column[column != None]  # noqa: E711 -- elementwise comparison on an object array

    def missing_count(self, name: str) -> int:
        return self.n_rows - len(self.present(name))


ResultT_co = TypeVar("ResultT_co", covariant=True)


class WindowDetector(Protocol, Generic[ResultT_co]):
    """A detector fitted on a reference table and evaluated once per closed window."""

    def fit(self, reference: FeatureTable) -> None:
        """Prepare everything that depends only on the reference (sorted values, frequencies)."""

    def evaluate(self, window: FeatureTable) -> ResultT_co:
        """Compare one window with the reference."""

    def reset(self) -> None:
        """Forget everything learned since construction (reference and persistence state)."""


BatchStatistic = Callable[[npt.NDArray[np.intp]], Mapping[str, npt.NDArray[np.float64]]]
"""Metrics of many resamples of a table's rows: a (resamples x window) matrix of row indices in,
one value per resample and metric out, NaN where a metric is undefined in a resample (what
:class:`detectors.performance_threshold.PerformanceThresholds` fits thresholds from)."""
