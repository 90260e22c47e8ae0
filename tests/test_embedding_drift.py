"""Embedding drift: a mean shift along a random direction is flagged, identical vectors are not."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detectors.embedding_drift import EmbeddingDrift


def _direction(rng: np.random.Generator, width: int) -> np.ndarray:
    direction = rng.normal(size=width)
    return direction / np.linalg.norm(direction)


@pytest.mark.parametrize(("width", "shift"), [(128, 0.5), (1024, 2.0)])
def test_a_mean_shift_along_a_random_direction_is_flagged(width: int, shift: float) -> None:
    """``shift`` is in units of the per-dimension spread (1); 1024 dimensions are projected to 128."""
    rng = np.random.default_rng(width)
    detector = EmbeddingDrift(alpha=0.01)
    detector.fit(rng.normal(size=(3000, width)).astype(np.float32))
    direction = _direction(rng, width)
    assert not detector.evaluate(rng.normal(size=(1000, width))).detected
    for _ in range(3):
        result = detector.evaluate(rng.normal(size=(1000, width)) + shift * direction)
        assert result.detected and result.p_value <= 0.01 and result.n == 500


def test_false_alarm_rate_on_identical_distributions_is_within_alpha() -> None:
    alpha, windows = 0.05, 60
    rng = np.random.default_rng(7)
    detector = EmbeddingDrift(alpha=alpha, max_rows=300, seed=1)
    detector.fit(rng.normal(size=(2000, 128)))
    alarms = sum(detector.evaluate(rng.normal(size=(300, 128))).detected for _ in range(windows))
    # Measured 1 of 60 (seeded); at most the 99% quantile of Binomial(60, alpha).
    assert alarms <= stats.binom.ppf(0.99, windows, alpha), alarms


def test_the_reference_is_a_float32_sample_and_wide_vectors_are_projected() -> None:
    detector = EmbeddingDrift(max_reference=1000, max_dims=128)
    detector.fit(np.random.default_rng(3).normal(size=(5000, 1024)))
    assert detector._reference is not None
    assert detector._reference.dtype == np.float32 and detector._reference.shape == (1000, 128)
    assert detector._reference.nbytes == 512_000


def test_invalid_input_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="permutations"):
        EmbeddingDrift(alpha=0.001, permutations=200)
    with pytest.raises(RuntimeError, match="before fit"):
        EmbeddingDrift().evaluate(np.zeros((5, 3)))
    detector = EmbeddingDrift()
    detector.fit(np.random.default_rng(4).normal(size=(100, 3)))
    with pytest.raises(ValueError, match="dimensions"):
        detector.evaluate(np.zeros((5, 4)))
    with pytest.raises(ValueError, match="2-d"):
        detector.evaluate(np.zeros(5))
