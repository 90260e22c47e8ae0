"""Embedding drift: maximum mean discrepancy (MMD) between reference and window vectors.

The reference keeps at most ``max_reference`` vectors (a seeded sample, float32:
1,000 vectors of 1,024 dimensions are 4 MB). Vectors wider than
``max_dims`` are first projected onto ``max_dims`` seeded Gaussian random
directions (scaled so distances are kept on average, Johnson-Lindenstrauss),
which bounds the cost whatever the width. Per window, at most ``max_rows``
vectors of each side enter a Gaussian-kernel MMD whose bandwidth is the median
distance between reference vectors (the median heuristic, fixed at fit).

The test is a permutation test: the (biased) MMD squared of the window against
the reference is compared with its value under ``permutations`` random
relabellings of the pooled vectors, all computed from one kernel matrix
(one matrix product for every permutation), and the window is flagged when
the permutation p-value ``(1 + #{permuted >= observed}) / (1 + permutations)``
is at most ``alpha``. Under no drift the vectors are exchangeable, so the
false-alarm rate is at most ``alpha`` exactly, whatever the distribution.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> detector = EmbeddingDrift(alpha=0.01)
>>> detector.fit(rng.normal(size=(2000, 64)))
>>> detector.evaluate(rng.normal(size=(500, 64))).detected
False
>>> direction = rng.normal(size=64); direction /= np.linalg.norm(direction)
>>> detector.evaluate(rng.normal(size=(500, 64)) + 0.5 * direction).detected
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class EmbeddingDriftResult:
    """One embedding's drift test on one window."""

    score: float
    """The biased MMD squared between window and reference vectors."""
    p_value: float
    detected: bool
    n: int


class EmbeddingDrift:
    """Permutation-tested Gaussian-kernel MMD of one embedding, with bounded cost per window.

    Parameters
    ----------
    alpha
        False-alarm probability per window.
    max_reference
        Reference vectors kept (seeded sample, float32).
    max_rows
        Vectors of each side used per window.
    max_dims
        Wider vectors are randomly projected to this many dimensions.
    permutations
        Random relabellings of the permutation test.
    seed
        Seeds the samples, the projection and the permutations.
    """

    def __init__(
        self,
        alpha: float = 0.01,
        max_reference: int = 1000,
        max_rows: int = 500,
        max_dims: int = 128,
        permutations: int = 200,
        seed: int = 0,
    ) -> None:
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
        for name, value, least in (
            ("max_reference", max_reference, 10),
            ("max_rows", max_rows, 10),
            ("max_dims", max_dims, 1),
        ):
            if value < least:
                raise ValueError(f"{name} must be >= {least}, got {value!r}")
        if permutations < int(np.ceil(1.0 / alpha)):
            raise ValueError(f"permutations must be >= 1/alpha, got {permutations!r}")
        self.alpha = alpha
        self.max_reference = max_reference
        self.max_rows = max_rows
        self.max_dims = max_dims
        self.permutations = permutations
        self.seed = seed
        self.reset()

    def __repr__(self) -> str:
        return (
            f"EmbeddingDrift(alpha={self.alpha}, max_reference={self.max_reference}, "
            f"max_rows={self.max_rows}, max_dims={self.max_dims}, "
            f"permutations={self.permutations}, seed={self.seed})"
        )

    def reset(self) -> None:
        self._reference: npt.NDArray[np.float32] | None = None
        self._projection: FloatArray | None = None
        self._bandwidth = 1.0
        self._windows = 0

    def state(self) -> dict[str, int]:
        """What later windows depend on beyond the fit: the windows tested (they seed the permutations)."""
        return {"windows": self._windows}

    def restore_state(self, state: dict[str, int]) -> None:
        """Continue after :meth:`state` on a detector fitted on the same reference."""
        self._windows = int(state["windows"])

    def fit(self, reference: npt.ArrayLike) -> None:
        """Keep a float32 sample of the reference vectors and fix the kernel bandwidth."""
        self.reset()
        vectors = self._finite(reference)
        if len(vectors) < 10:
            raise ValueError(f"need at least 10 finite reference vectors, got {len(vectors)}")
        rng = np.random.default_rng([self.seed, 0])
        if vectors.shape[1] > self.max_dims:
            gaussian = rng.normal(size=(vectors.shape[1], self.max_dims))
            self._projection = gaussian / np.sqrt(self.max_dims)
        kept = _sample(vectors, self.max_reference, rng)
        self._reference = self._project(kept).astype(np.float32)
        distances = _squared_distances(self._reference[:500], self._reference[:500])
        upper = distances[np.triu_indices(len(distances), k=1)]
        self._bandwidth = float(np.sqrt(np.median(upper))) or 1.0

    def evaluate(self, window: npt.ArrayLike) -> EmbeddingDriftResult:
        """Permutation-test the window's vectors against the reference sample."""
        if self._reference is None:
            raise RuntimeError("EmbeddingDrift used before fit")
        self._windows += 1
        rng = np.random.default_rng([self.seed, self._windows])
        current = self._project(_sample(self._finite(window), self.max_rows, rng))
        if len(current) < 2:
            raise ValueError(f"need at least 2 finite window vectors, got {len(current)}")
        reference = _sample(self._reference.astype(np.float64), self.max_rows, rng)
        pooled = np.vstack([reference, current])
        kernel = np.exp(-_squared_distances(pooled, pooled) / (2.0 * self._bandwidth**2))
        n, m = len(reference), len(current)
        signs = np.r_[np.full(n, 1.0 / n), np.full(m, -1.0 / m)]
        weights = np.column_stack([signs] + [rng.permutation(signs) for _ in range(self.permutations)])
        statistics = np.einsum("ij,ij->j", weights, kernel @ weights)
        observed = float(statistics[0])
        p_value = float((1 + np.sum(statistics[1:] >= observed)) / (1 + self.permutations))
        return EmbeddingDriftResult(observed, p_value, p_value <= self.alpha, m)

    def _project(self, vectors: FloatArray) -> FloatArray:
        return vectors if self._projection is None else vectors @ self._projection

    def _finite(self, vectors: npt.ArrayLike) -> FloatArray:
        matrix = np.asarray(vectors, dtype=np.float64)
        if matrix.ndim != 2:
            raise ValueError(f"vectors must be a 2-d array, got shape {matrix.shape}")
        if self._reference is not None and matrix.shape[1] != self._width:
            raise ValueError(f"vectors have {matrix.shape[1]} dimensions, the reference {self._width}")
        return matrix[np.isfinite(matrix).all(axis=1)]

    @property
    def _width(self) -> int:
        assert self._reference is not None
        return self._reference.shape[1] if self._projection is None else self._projection.shape[0]


def _sample(vectors: FloatArray, rows: int, rng: np.random.Generator) -> FloatArray:
    if len(vectors) <= rows:
        return vectors
    return vectors[np.sort(rng.choice(len(vectors), size=rows, replace=False))]


def _squared_distances(
    a: FloatArray | npt.NDArray[np.float32], b: FloatArray | npt.NDArray[np.float32]
) -> FloatArray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    squared = np.sum(a64**2, axis=1)[:, None] + np.sum(b64**2, axis=1)[None, :] - 2.0 * a64 @ b64.T
    return np.maximum(squared, 0.0)
