"""One thread pool while the C core runs.

The core parallelizes everything itself with OpenMP, large matrix products
included (split into blocks, one single-threaded BLAS or SIMD kernel call
each). So
while it runs, BLAS's own threads are held at one: two pools spinning on the
same cores (OpenMP's and OpenBLAS's) slow each other down by orders of
magnitude on a busy machine, and a multi-threaded BLAS would make results
depend on the thread count.

The hold is reference-counted, so several Python threads fitting at once
share it and the user's BLAS setting comes back when the last one leaves.
"""

import os
import threading

from threadpoolctl import ThreadpoolController

from . import _core

_lock = threading.Lock()
_holders = 0
_limiter = None
_controller = None
_saved = None


def n_threads():
    """Threads for the core: OpenMP's current limit (OMP_NUM_THREADS,
    threadpoolctl.threadpool_limits, joblib's worker limits); 1 in a process
    forked after the core ran threads (GNU OpenMP's pool does not survive
    fork: the child computes the same results serially)."""
    return _core.max_threads()


def adaptive_threads():
    """Whether training steps choose between n_threads() and one thread by
    timing themselves (the default), so that a machine busy with other work
    never makes a fit much slower than one thread would be.
    FASTNN_THREADS=fixed keeps every step on n_threads() (for measuring)."""
    value = os.environ.get("FASTNN_THREADS", "adaptive").strip().lower()
    if value not in ("adaptive", "fixed"):
        raise ValueError("FASTNN_THREADS must be 'adaptive' or 'fixed', got %r" % value)
    return value == "adaptive"


class blas_single_threaded:
    """Hold the BLAS the core calls at one thread for the duration (a
    context manager; a class rather than a generator: it wraps every
    one-row prediction).

    The library behind scipy's sgemm is held through its own controls (found
    by the core next to that sgemm); when they are unknown, every loaded BLAS
    is held through threadpoolctl instead."""

    def __enter__(self):
        global _holders, _limiter, _controller, _saved
        with _lock:
            if _holders == 0:
                _saved = _core.blas_get_threads()
                if _saved is not None:
                    _core.blas_set_threads(1)
                else:
                    if _controller is None:  # created after _core loaded scipy's BLAS
                        _controller = ThreadpoolController()
                    _limiter = _controller.limit(limits=1, user_api="blas")
            _holders += 1
        return self

    def __exit__(self, *exc):
        global _holders, _limiter
        with _lock:
            _holders -= 1
            if _holders == 0:
                if _saved is not None:
                    _core.blas_set_threads(_saved)
                else:
                    _limiter.restore_original_limits()
                    _limiter = None
        return False
