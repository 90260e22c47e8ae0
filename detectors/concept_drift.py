"""Concept drift: the model now errs more than it should on the inputs it gets.

A drop in realized performance alone is not concept drift: covariate shift
that moves traffic to inputs where the model is naturally less sure lowers
realized accuracy too, and the expected accuracy (CBPE) falls with it.
Concept drift is a change in P(y|x), which shows as a *gap* between the errors
the model makes and the errors its own calibrated probabilities predict. So
the detector watches the per-event residual

    residual = error - expected_error

where ``error`` is 0/1 for a classifier (or an absolute error, scaled, for a
regressor) and ``expected_error`` is the probability that the decision is
wrong (:meth:`detectors.cbpe.CBPE.expected_errors`: ``1 - p(predicted
class)`` after calibration). Without probabilities, pass the reference's mean
error as a constant: the test then compares the window with the reference
performance.

Two signals per window:

- a sequential change detector from river on the residual stream, carried
  across windows: ``adwin`` (default), ``page_hinkley`` (one-sided, upward) or
  ``ddm`` (fed ``(1 + residual) / 2``, a value in [0, 1] whose mean is 0.5 while
  the model performs as expected; DDM's Bernoulli variance bounds that of any
  [0, 1] variable with the same mean, so it stays conservative). Only an
  upward change (more errors than expected) counts;
- a one-sided t-test of the window's mean residual against ``tolerance``
  (H0: realized error exceeds expected error by at most ``tolerance``).

They feed ``driftline_concept_drift_detected{detector=<detector>}`` and
``{detector="gap_test"}``.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> expected = rng.uniform(0.0, 0.3, size=4000)
>>> errors = (rng.uniform(size=4000) < expected + np.r_[np.zeros(2000), np.full(2000, 0.2)])
>>> detector = ConceptDriftDetector("adwin")
>>> [detector.update(errors[i:i + 1000], expected[i:i + 1000]).detected for i in (0, 1000, 2000)]
[False, False, True]
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from river import drift
from scipy import stats

DetectorName = Literal["adwin", "page_hinkley", "ddm"]
DETECTORS: tuple[DetectorName, ...] = ("adwin", "page_hinkley", "ddm")
GAP_TEST = "gap_test"
"""The ``detector`` label value of the significance test."""


@dataclass(frozen=True)
class ConceptDriftResult:
    """Concept drift signals of one window of labelled events."""

    detector: DetectorName
    detected: bool
    """The sequential detector found an upward change in this window."""
    changes: int
    """Upward changes found in this window."""
    n: int
    realized_error: float
    """Mean error of the window."""
    expected_error: float
    """Mean expected error of the window."""
    gap: float
    """``realized_error - expected_error``."""
    p_value: float
    """One-sided p-value of the gap test (1.0 under ``min_events`` events)."""
    significant: bool
    """The gap test rejects H0 at ``alpha``: ``{detector="gap_test"}``."""


class ConceptDriftDetector:
    """Sequential change detection and a gap test on ``error - expected_error``.

    Parameters
    ----------
    detector
        ``adwin``, ``page_hinkley`` or ``ddm`` (river's implementations).
    alpha
        Significance level of the gap test. The default 0.001 keeps false
        alarms rare over many windows (one window a minute is 1,440 tests a day).
    tolerance
        How much more error than expected is still no concept drift. The
        default 0.01 absorbs the small optimism of a calibration fitted on a
        finite reference (isotonic steps at the extremes), which would
        otherwise show as a persistent tiny gap in large windows.
    min_events
        Fewest events in a window for the gap test to speak.
    detector_params
        Passed to the river detector's constructor (e.g. ``{"delta": 0.002}``
        for ADWIN, ``{"threshold": 50.0}`` for Page-Hinkley); Page-Hinkley's
        ``mode`` is always ``"up"``.
    max_log
        Most recent residuals kept for :meth:`state`. River keeps ADWIN's
        buckets in a native object that cannot be serialized, so a restored
        detector replays this log; it is the same detector as long as it has
        seen no more than ``max_log`` residuals since its reset.
    """

    def __init__(
        self,
        detector: DetectorName = "adwin",
        alpha: float = 0.001,
        tolerance: float = 0.01,
        min_events: int = 30,
        detector_params: Mapping[str, float] | None = None,
        max_log: int = 100_000,
    ) -> None:
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        if not tolerance >= 0.0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
        if min_events < 2:
            raise ValueError(f"min_events must be >= 2, got {min_events!r}")
        if max_log < 0:
            raise ValueError(f"max_log must be >= 0, got {max_log!r}")
        self.max_log = max_log
        self.detector = detector
        self.alpha = alpha
        self.tolerance = tolerance
        self.min_events = min_events
        self.detector_params = dict(detector_params or {})
        self.reset()

    def __repr__(self) -> str:
        return (
            f"ConceptDriftDetector(detector={self.detector!r}, alpha={self.alpha}, "
            f"tolerance={self.tolerance}, min_events={self.min_events}, "
            f"detector_params={self.detector_params!r}, max_log={self.max_log})"
        )

    def reset(self) -> None:
        self._river = self._make_river_detector()
        self._log = _ResidualLog(self.max_log)
        self._seen = 0
        self._estimation = float(self._river.estimation) if self.detector == "adwin" else math.nan
        """ADWIN's mean after the last residual: the next step's "before", without asking river again."""

    def state(self) -> dict[str, Any]:
        """The residuals seen since reset (the most recent ``max_log``), as plain data."""
        return {"residuals": self._log.tolist(), "seen": self._seen}

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Rebuild the detector by replaying the residuals :meth:`state` returned.

        Exact when nothing was dropped from the log (``seen <= max_log``);
        otherwise the detector starts from the last ``max_log`` residuals.
        """
        self.reset()
        for residual in state["residuals"]:
            self._step(float(residual))
        self._seen = max(self._seen, int(state["seen"]))

    def _make_river_detector(self) -> Any:
        """The river detector (typed ``Any``: DDM is declared for bools but averages floats)."""
        params: dict[str, Any] = dict(self.detector_params)
        if self.detector == "adwin":
            return drift.ADWIN(**params)
        if self.detector == "page_hinkley":
            params["mode"] = "up"
            return drift.PageHinkley(**params)
        return drift.binary.DDM(**params)

    def update(
        self, errors: npt.ArrayLike, expected_errors: npt.ArrayLike | float
    ) -> ConceptDriftResult:
        """Feed one window's per-event errors and expected errors (or one expected value)."""
        error = np.asarray(errors, dtype=np.float64)
        if error.ndim != 1 or len(error) == 0:
            raise ValueError(f"errors must be a non-empty 1-d array, got shape {error.shape}")
        expected = np.broadcast_to(np.asarray(expected_errors, dtype=np.float64), error.shape)
        residuals = error - expected
        changes = sum(self._step(float(r)) for r in residuals)
        p_value = self._gap_p_value(residuals)
        return ConceptDriftResult(
            detector=self.detector,
            detected=changes > 0,
            changes=changes,
            n=len(error),
            realized_error=float(np.mean(error)),
            expected_error=float(np.mean(expected)),
            gap=float(np.mean(residuals)),
            p_value=p_value,
            significant=p_value < self.alpha,
        )

    def _step(self, residual: float) -> bool:
        """Feed one residual; True when the detector flags an upward change."""
        self._log.append(residual)
        self._seen += 1
        if self.detector == "ddm":
            self._river.update(min(1.0, max(0.0, (1.0 + residual) / 2.0)))
            return bool(self._river.drift_detected)
        if self.detector == "adwin":
            before = self._estimation
            self._river.update(residual)
            after = self._estimation = float(self._river.estimation)
            return bool(self._river.drift_detected) and after > before
        self._river.update(residual)
        return bool(self._river.drift_detected)

    def _gap_p_value(self, residuals: npt.NDArray[np.float64]) -> float:
        """P(mean residual this high | true gap = tolerance), one-sided t-test."""
        n = len(residuals)
        if n < self.min_events:
            return 1.0
        excess = float(np.mean(residuals)) - self.tolerance
        spread = float(np.std(residuals, ddof=1))
        if spread == 0.0:
            return 0.0 if excess > 0 else 1.0
        return float(stats.t.sf(excess / (spread / np.sqrt(n)), df=n - 1))


class _ResidualLog:
    """The last ``limit`` residuals as C doubles, a ring once full (8 bytes each, not a float object's 32)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._values = array("d")
        self._next = 0
        """Where the next residual goes once the ring is full (there the oldest is)."""

    def append(self, residual: float) -> None:
        if len(self._values) < self.limit:
            self._values.append(residual)
        elif self.limit:
            self._values[self._next] = residual
            self._next = (self._next + 1) % self.limit

    def tolist(self) -> list[float]:
        """The residuals, oldest first."""
        return self._values[self._next :].tolist() + self._values[: self._next].tolist()
