"""One thread for the numeric libraries where a window is evaluated, set cheaply.

The collector's other work shares the cores, and on a busy machine threads
that spin-wait for each other cost more than they save on the small matrices
of one window: OpenMP makes a tree model's ``predict`` 10-30 times slower
(measured: 93-160 ms against 5 ms for 100 trees on 1,000 rows on two loaded
cores), and two OpenBLAS threads make the embedding MMD test of 1,000
128-dimension vectors take 45-50 ms of CPU and 67-87 ms of wall time against
27 ms and 57 ms on one (two cores at a load of 5-7). ``threadpoolctl.threadpool_limits`` finds the loaded
libraries anew on every call, about 3 ms each time; the controller is found
once per process (on first use, after scikit-learn has loaded its OpenMP
runtime) and then limits in microseconds.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from typing import Any

from threadpoolctl import ThreadpoolController


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def one_thread() -> AbstractContextManager[Any]:
    """A context in which BLAS and OpenMP run on one thread each (process-wide while it lasts)."""
    return _controller().limit(limits=1)


def one_openmp_thread() -> AbstractContextManager[Any]:
    """A context in which OpenMP (scikit-learn's trees) runs on one thread."""
    return _controller().limit(limits=1, user_api="openmp")
