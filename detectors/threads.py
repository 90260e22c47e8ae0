"""One OpenMP thread for scikit-learn's gradient-boosted trees, cheaply, where a window needs them.

The collector's other work shares the cores, and on a busy machine OpenMP
threads that spin-wait for each other make a tree model's ``predict`` 10-30
times slower (measured: 93-160 ms against 5 ms for 100 trees on 1,000 rows
on two loaded cores). ``threadpoolctl.threadpool_limits`` finds the loaded
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


def one_openmp_thread() -> AbstractContextManager[Any]:
    """A context in which OpenMP (scikit-learn's trees) runs on one thread."""
    return _controller().limit(limits=1, user_api="openmp")
