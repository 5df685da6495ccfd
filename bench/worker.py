"""Run ONE (peer, workload, threads) measurement in this fresh process.

Invoked by bench.run as ``python -m bench.worker --peer P --workload W --threads N``;
prints one line ``BENCH_RESULT <json>`` on stdout.  A fresh process per
measurement is needed because torch/TF thread settings are process-global (TF
must be configured before first use) and it gives a clean per-peer peak RSS
(resource.getrusage(RUSAGE_SELF).ru_maxrss).

Order: pin CPU affinity (only when N < available CPUs) -> import + configure the
library -> RSS "after imports" -> generate data -> RSS "baseline" (before fit)
-> timed runs -> peak RSS -> untimed score.  ``latency`` workloads time
calls instead of runs: the best of several batches of many calls.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import traceback

MARK = "BENCH_RESULT "
MB = 1024.0 * 1024.0


def current_rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024 / MB
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    return kb * (1.0 if sys.platform == "darwin" else 1024.0) / MB


def threadpools():
    """The thread pools loaded in this process; for OpenBLAS, the kernel it runs
    ("architecture": e.g. SkylakeX, or Haswell when OPENBLAS_CORETYPE forces it)."""
    try:
        from threadpoolctl import threadpool_info
        return [{"api": i.get("internal_api") or i.get("user_api"), "threads": i.get("num_threads"),
                 "lib": os.path.basename(i.get("filepath", "")), "version": i.get("version"),
                 "architecture": i.get("architecture")}
                for i in threadpool_info()]
    except Exception:  # pragma: no cover - informative only
        return []


def seconds_per_call(call, batches: int, batch_seconds: float) -> list:
    """Seconds per call of ``call()``, for each of ``batches`` timed batches of
    calls (each about ``batch_seconds`` long), after untimed warm-up calls."""
    for _ in range(3):
        call()
    t0 = time.perf_counter()
    for _ in range(10):
        call()
    calls = max(10, int(batch_seconds / ((time.perf_counter() - t0) / 10)))
    out = []
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(calls):
            call()
        out.append((time.perf_counter() - t0) / calls)
    return out


def pin_affinity(threads: int):
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:
        return None
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])
        return cpus[:threads]
    return cpus


def run(peer_name: str, workload: str, threads: int, quick: bool, repeat: int,
        pin: bool = True) -> dict:
    # Before numpy/BLAS/OpenMP start any threads.  Not under --load: a process
    # pinned to one CPU would compete with the busy process on that CPU only.
    cpus = pin_affinity(threads) if pin else None
    from bench import workloads
    w = workloads.get(workload, quick)
    res = {"peer": peer_name, "workload": workload, "threads": threads, "quick": quick,
           "status": "ok", "note": "", "cpus": cpus}

    if peer_name == "sgemm":
        from bench.peers import measure_sgemm
        res.update(measure_sgemm(w, threads, min_time=0.5 if quick else 2.0))
        res["threadpools"] = threadpools()
        return res

    from bench.peers import PEERS
    peer = PEERS[peer_name]()
    try:
        res["versions"] = peer.setup(threads)
    except ImportError as e:
        res.update(status="skipped", note=f"not importable: {e}")
        return res
    import numpy as np
    res["rss_imports_mb"] = current_rss_mb()
    if peer_name == "fastnn":
        from fastnn import _core
        res["sgemm_kernel"] = _core.sgemm_kernel_in_use()
    X, y = workloads.make_data(w)
    res["x_mb"] = X.nbytes / MB
    res["rss_baseline_mb"] = current_rss_mb()
    res["peak_rss_before_mb"] = peak_rss_mb()

    times = []
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    if w.mode == "fit":
        model = None
        for _ in range(repeat):
            del model
            model = peer.build(w)
            t0 = time.perf_counter()
            peer.fit(model, X, y, w)
            times.append(time.perf_counter() - t0)
        res["peak_rss_mb"] = peak_rss_mb()
        if hasattr(model, "n_iter_"):  # sklearn API: check nothing stopped early
            res["epochs_run"] = int(model.n_iter_)
        k = min(len(X), 10000)
        res["score"] = peer.score(model, X[:k], y[:k], w)
        res["gemm_flops"] = workloads.train_gemm_flops(w)
    elif w.mode == "search":
        for _ in range(repeat):
            t0 = time.perf_counter()
            search = peer.search(w, X, y)
            times.append(time.perf_counter() - t0)
        res["peak_rss_mb"] = peak_rss_mb()
        res["score"] = float(search.best_score_)
    elif w.mode == "latency":  # brief untimed fit, then microseconds per call at each row count
        k = min(len(X), w.predict_fit_rows)
        model = peer.build(w)
        peer.fit(model, X[:k], y[:k], w)
        per_rows = {}
        for rows in w.latency_rows:
            x = np.ascontiguousarray(X[:rows])
            assert np.asarray(peer.predict_small(model, x)).shape == (rows, w.n_classes)
            per_rows[rows] = seconds_per_call(lambda: peer.predict_small(model, x),
                                              w.latency_batches, w.latency_batch_seconds)
        res["peak_rss_mb"] = peak_rss_mb()
        res["score"] = peer.score(model, X[:k], y[:k], w)
        res["latency_us"] = {str(r): 1e6 * min(t) for r, t in per_rows.items()}
        times = per_rows[w.latency_rows[0]]  # the main figure: seconds per one-row call
    else:  # predict: brief untimed fit, one untimed warm-up call, then timed calls
        k = min(len(X), w.predict_fit_rows)
        model = peer.build(w)
        peer.fit(model, X[:k], y[:k], w)
        peer.predict_proba(model, X)
        for _ in range(repeat):
            t0 = time.perf_counter()
            proba = peer.predict_proba(model, X)
            times.append(time.perf_counter() - t0)
            assert proba.shape == (len(X), w.n_classes)
        res["peak_rss_mb"] = peak_rss_mb()
        res["score"] = float((np.asarray(proba).argmax(1) == y).mean())
        res["rows_per_s"] = len(X) / min(times)
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    res["times"] = times
    res["seconds"] = min(times)
    # CPU seconds per timed run (includes warm-up/untimed parts in predict mode)
    res["cpu_seconds"] = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / len(times)
    if peer_name == "keras":
        res["jit_compile"] = getattr(peer, "jit_compile", None)
    if peer_name == "jax":
        res["xla_env"] = {k: os.environ[k] for k in ("NPROC", "XLA_FLAGS") if k in os.environ}
    res["threadpools"] = threadpools()
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peer", required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--no-pin", action="store_true", help="leave CPU affinity alone")
    a = ap.parse_args(argv)
    try:
        res = run(a.peer, a.workload, a.threads, a.quick, a.repeat, pin=not a.no_pin)
    except Exception as e:  # report, don't crash the whole benchmark
        traceback.print_exc()
        res = {"peer": a.peer, "workload": a.workload, "threads": a.threads, "status": "error",
               "note": f"{type(e).__name__}: {e}"[:300]}
    sys.stdout.write(MARK + json.dumps(res) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
