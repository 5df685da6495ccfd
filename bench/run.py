"""Command line, orchestration and the markdown report (see bench/__init__.py for usage)."""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time

if __package__ in (None, ""):  # `python bench/run.py`: make `import bench` work
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import workloads  # noqa: E402
from bench.peers import REQUIRES  # noqa: E402
from bench.worker import MARK  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_PEERS = ("fastnn", "sklearn", "torch", "keras", "jax")
OTHERS = ("sklearn", "torch", "keras", "jax")
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
              "TF_NUM_INTEROP_THREADS")
OPENBLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
FASTNN_MEM_BUDGET_MB = 150.0


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _csv(kind, choices):
    def parse(s):
        items = [x.strip() for x in s.split(",") if x.strip()]
        bad = [x for x in items if x not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {kind} {bad}; choose from {','.join(choices)}")
        return items
    return parse


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench",
                                 description="Benchmark fastnn against scikit-learn, PyTorch, Keras and JAX.")
    ap.add_argument("--workloads", type=_csv("workload", workloads.NAMES), default=list(workloads.NAMES),
                    help="comma list from %s (default: all)" % ",".join(workloads.NAMES))
    ap.add_argument("--peers", type=_csv("peer", ALL_PEERS), default=list(ALL_PEERS),
                    help="comma list from %s (default: all)" % ",".join(ALL_PEERS))
    ap.add_argument("--threads", type=int, default=available_cpus(),
                    help="threads for every peer (default: all available CPUs = %(default)s)")
    ap.add_argument("--scaling", action="store_true",
                    help="also time fastnn with 1 thread (reports 1-thread and N-thread times)")
    ap.add_argument("--quick", action="store_true", help="smaller sizes/epochs for a smoke run")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per measurement; min is reported")
    ap.add_argument("--processes", type=int, default=1,
                    help="fresh worker processes per measurement, each doing --repeat runs; "
                         "min over all is reported (a process can be slow throughout: on a "
                         "shared VM, 2-thread fits were bimodal between processes); the "
                         "plan runs this many rounds, one process per measurement each")
    ap.add_argument("--load", type=int, default=0, metavar="N",
                    help="start N busy processes (a Python busy loop each) for the whole run and stop "
                         "them at the end: times on a machine busy with other work; implies --scaling "
                         "(fastnn's default-thread time beside its 1-thread time under the same load)")
    ap.add_argument("--json", metavar="PATH", help="also save all results as JSON")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per worker process (default 300 with --quick, else 3600)")
    a = ap.parse_args(argv)
    if a.threads < 1 or a.repeat < 1 or a.processes < 1 or a.load < 0:
        ap.error("--threads, --repeat and --processes must be >= 1, --load >= 0")
    if a.load:
        a.scaling = True
    if a.timeout is None:
        a.timeout = 300.0 if a.quick else 3600.0
    return a


# --------------------------------------------------------------------------- machine
def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(threads):
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            mem_gb = int(f.readline().split()[1]) / 1024 ** 2
    except (OSError, ValueError, IndexError):
        pass
    dists = {"fastnn": "fastnn", "numpy": "numpy", "scipy": "scipy", "scikit-learn": "scikit-learn",
             "threadpoolctl": "threadpoolctl", "torch": "torch", "tensorflow": "tensorflow-cpu",
             "keras": "keras", "jax": "jax", "jaxlib": "jaxlib"}
    versions = {k: _version(d) or (_version("tensorflow") if k == "tensorflow" else None)
                for k, d in dists.items()}
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "available_cpus": available_cpus(),
            "threads": threads, "mem_gb": mem_gb, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions,
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
            # these force OpenBLAS onto older kernels (numpy, scipy, sklearn, fastnn's BLAS paths)
            "openblas_env": {k: os.environ[k] for k in OPENBLAS_ENV if k in os.environ}}


# --------------------------------------------------------------------------- workers
def peer_missing(peer):
    missing = [m for m in REQUIRES[peer] if importlib.util.find_spec(m) is None]
    return f"{peer} not installed ({', '.join(missing)} missing)" if missing else None


def run_worker(peer, workload, threads, args):
    env = dict(os.environ)
    env.update({k: str(threads) for k in THREAD_ENV})
    env.update(TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, "-m", "bench.worker", "--peer", peer, "--workload", workload,
           "--threads", str(threads), "--repeat", str(args.repeat)] + (["--quick"] if args.quick else []) \
        + (["--no-pin"] if args.load else [])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"peer": peer, "workload": workload, "threads": threads, "status": "error",
                "note": f"timed out after {args.timeout:g} s"}
    res = None
    for line in p.stdout.splitlines():
        if line.startswith(MARK):
            res = json.loads(line[len(MARK):])
    if res is None:
        tail = (p.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        res = {"peer": peer, "workload": workload, "threads": threads, "status": "error",
               "note": f"worker exited {p.returncode}: {tail[:200]}"}
    if res.get("status") == "error":
        res["stderr_tail"] = p.stderr[-3000:]
    res["process_seconds"] = time.perf_counter() - t0
    res["loadavg_before"] = load
    return res


def _progress(res):
    tag = f"[{res['workload']:<10}] {res['peer']:<7} {res['threads']}T"
    if res["status"] == "ok" and "latency_us" in res:
        msg = "µs per call: " + ", ".join(f"{rows} rows {us:.1f}" for rows, us in res["latency_us"].items()) \
            + f"  score {res.get('score', float('nan')):.3f}"
    elif res["status"] == "ok" and "seconds" in res:
        msg = f"{res['seconds']:.3f} s  score {res.get('score', float('nan')):.3f}  " \
              f"peak RSS {res.get('peak_rss_mb', 0):.0f} MB"
    elif res["status"] == "ok" and "sgemm_gflops" in res:
        msg = f"sgemm {res['sgemm_gflops']:.1f} GFLOP/s"
    else:
        msg = f"{res['status']}: {res.get('note', '')}"
    print(f"{tag}  {msg}", file=sys.stderr, flush=True)


class BusyLoad:
    """N processes that each keep a CPU busy (a Python busy loop), for the
    duration of a `with` block: the machine a user shares with other work."""

    def __init__(self, n):
        self.n, self.procs = n, []

    def __enter__(self):
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(self.n)]
        time.sleep(0.5 if self.n else 0)  # let them reach their loops
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()
        return False


# --------------------------------------------------------------------------- report
def fmt3(x):
    """3 significant digits, keeping trailing zeros (0.00830, 1.50, 100)."""
    return f"{x:#.3g}".rstrip(".")


def fmt_s(x):
    if x is None:
        return "n/a"
    return f"{x:.0f}" if x >= 1000 else fmt3(x)


def _get(results, workload, peer, threads):
    for r in results:
        if r["workload"] == workload and r["peer"] == peer and r["threads"] == threads:
            return r
    return None


def _secs(r):
    return r["seconds"] if r and r.get("status") == "ok" and "seconds" in r else None


def fmt_time(x, mode):
    """A table cell: seconds, or microseconds per call for the latency workload."""
    if x is not None and mode == "latency":
        return fmt_s(x * 1e6) + " µs"
    return fmt_s(x)


def openblas_kernels(results, peer):
    """'architecture (library)' of every OpenBLAS pool threadpoolctl saw in the
    peer's worker processes: the kernel OpenBLAS ran there."""
    return sorted({f"{t.get('architecture') or '?'} ({t['lib']})" for r in results if r["peer"] == peer
                   for t in r.get("threadpools", []) if t["api"] == "openblas"})


def report(info, results, args) -> str:
    N = args.threads
    v = info["versions"]
    out = ["## fastnn benchmark", ""]
    out.append(f"- CPU: {info['cpu']}; {info['logical_cpus']} logical CPUs "
               f"({info['available_cpus']} available to this process)"
               + (f"; {info['mem_gb']:.1f} GB RAM" if info["mem_gb"] else ""))
    out.append(f"- threads used by every peer: {N}" + (" (fastnn also at 1 thread)" if args.scaling else ""))
    out.append("- versions: python " + info["python"] + ", "
               + ", ".join(f"{k} {v[k] or 'not installed'}" for k in v))
    blas = sorted({f"{t['api']} {t.get('version') or ''} ({t['lib']})".replace("  ", " ")
                   for r in results for t in r.get("threadpools", []) if r["peer"] in ("fastnn", "sklearn", "sgemm")})
    if blas:
        out.append("- thread pools seen (threadpoolctl, fastnn/sklearn/sgemm workers): " + "; ".join(blas))
    kernels = [f"{p} {', '.join(openblas_kernels(results, p))}" for p in ("fastnn",) + OTHERS + ("sgemm",)
               if openblas_kernels(results, p)]
    if kernels:
        out.append("- OpenBLAS kernel per peer (threadpoolctl `architecture`; torch and jax do their own "
                   "products, numpy's OpenBLAS is only loaded there): " + "; ".join(kernels))
    ob_env = info.get("openblas_env")
    out.append("- OpenBLAS environment: " + (", ".join(f"{k}={v}" for k, v in ob_env.items()) +
                                             " (forces older kernels)" if ob_env else
                                             "no OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (native kernels)"))
    kernel = {r.get("sgemm_kernel", "?") for r in results if r["peer"] == "fastnn"}
    if kernel and kernel != {"?"}:
        k = kernel.pop() if len(kernel) == 1 else "mixed"
        out.append("- fastnn's products: " + {
            "avx512": "its AVX-512 kernels",
            "avx2": "its AVX2 kernels",
            None: "BLAS only"}.get(k, str(k)) + " where csrc/dense.c's shape rule (own_kernel_for) "
            "gives them, BLAS for the rest (FASTNN_SGEMM_KERNEL)")
    if hasattr(os, "getloadavg"):
        out.append(f"- 1-min load average at the start: {info['loadavg'][0]:.2f} (other processes compete "
                   "for the cores; compare ratios within a run only)")
    if args.load:
        out.append(f"- **under load**: {args.load} busy processes (`python -c 'while True: pass'`) ran "
                   "beside every measurement; no process pinned to CPUs")
    out.append(f"- mode: {'--quick (smoke sizes)' if args.quick else 'full'}, repeat {args.repeat} "
               f"in each of {args.processes} fresh process(es) per measurement (min reported)"
               + (f"; the plan ran {args.processes} rounds, one process of every measurement "
                  "per round" if args.processes > 1 else ""))
    out.append("")

    scaling = args.scaling and N > 1
    head = ["workload", "fastnn s"] + (["fastnn 1-thr s", f"{N}-thr / 1-thr"] if scaling else []) + \
           [f"{p} s" for p in OTHERS] + [f"vs {p}" for p in OTHERS] + ["notes"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join("---" for _ in head) + "|")
    for name in args.workloads:
        w = workloads.get(name, args.quick)
        fr = _get(results, name, "fastnn", N)
        f = _secs(fr)
        notes = []
        row = [name, fmt_time(f, w.mode)]
        if scaling:
            f1 = _secs(_get(results, name, "fastnn", 1))
            row += [fmt_time(f1, w.mode), fmt3(f / f1) if f and f1 else "n/a"]
        secs = {}
        for p in ("fastnn",) + OTHERS:
            r = _get(results, name, p, N)
            if r is None:
                continue
            secs[p] = _secs(r)
            if r["status"] != "ok":
                notes.append(f"{p} {r['status']}: {r.get('note', '')}")
            elif r.get("epochs_run") not in (None, w.epochs) and w.mode == "fit":
                notes.append(f"{p} stopped after {r['epochs_run']} of {w.epochs} epochs")
        row += [fmt_time(secs.get(p), w.mode) for p in OTHERS]
        row += [fmt3(f / secs[p]) if f and secs.get(p) else "n/a" for p in OTHERS]
        if w.mode == "predict":
            rps = [f"{p} {_get(results, name, p, N)['rows_per_s']:.3g}" for p in secs if secs[p]]
            if rps:
                notes.append(f"rows/s ({w.n_samples} rows): " + ", ".join(rps))
        if w.mode == "latency":
            rows = w.latency_rows[-1]
            us = [f"{p} {fmt_s(_get(results, name, p, N)['latency_us'][str(rows)])}" for p in secs if secs[p]]
            if us:
                notes.append(f"µs per {rows}-row call: " + ", ".join(us))
        if w.dtype == "float64" and w.data == "synthetic":
            notes.append("float64 X: fastnn and sklearn compute in float64, torch/keras/jax convert to float32")
        if name == "wide":
            sg = _get(results, name, "sgemm", N)
            fl = workloads.train_gemm_flops(w)
            gf = [f"{p} {fl / secs[p] / 1e9:.1f}" for p in secs if secs[p]]
            if sg and sg["status"] == "ok":
                gf.append(f"machine sgemm at these shapes {sg['sgemm_gflops']:.1f} "
                          f"(scipy BLAS {sg['sgemm_gflops_scipy']:.1f}, numpy {sg['sgemm_gflops_numpy']:.1f})")
            elif sg:
                gf.append(f"sgemm {sg['status']}: {sg.get('note', '')}")
            notes.append("GFLOP/s: " + ", ".join(gf))
        row.append("; ".join(notes).replace("|", "/"))
        out.append("| " + " | ".join(row) + " |")

    out += ["", "Ratios are fastnn s / peer s (lower is better; < 1 means fastnn is faster), "
            "3 significant digits. score = accuracy (R^2 for regression) on the first 10000 training rows, "
            "untimed: a check that every peer really trained."]
    if args.processes > 1:
        out += within_rounds(results, args)

    # details: per measurement
    out += ["", "### Details", "",
            "| workload | peer | threads | seconds (each run; / between processes) | CPU s / run | score | X MB "
            "| RSS after imports MB | RSS before fit MB | peak RSS MB | load avg before |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.get("status") != "ok" or "seconds" not in r:
            continue
        out.append(f"| {r['workload']} | {r['peer']} | {r['threads']} | "
                   + " / ".join(", ".join(f"{t * 1e6:.1f} µs" if r["workload"] == "latency" else f"{t:.3f}"
                                          for t in ts)
                                for ts in r.get("times_by_process", [r["times"]]))
                   + f" | {r.get('cpu_seconds', float('nan')):.3g} | {r.get('score', float('nan')):.3f} "
                     f"| {r['x_mb']:.1f} | {r['rss_imports_mb']:.0f} | {r['rss_baseline_mb']:.0f} "
                     f"| {r['peak_rss_mb']:.0f} | {r.get('loadavg_before') or float('nan'):.2f} |")

    fm = _get(results, "chapter", "fastnn", N)
    if fm and fm.get("status") == "ok":
        limit = fm["rss_imports_mb"] + fm["x_mb"] + FASTNN_MEM_BUDGET_MB
        ok = fm["peak_rss_mb"] <= limit
        out += ["", f"fastnn `chapter` memory{' (quick sizes)' if args.quick else ''}: "
                f"X {fm['x_mb']:.1f} MB (float32, C-contiguous); RSS after imports {fm['rss_imports_mb']:.0f} MB; "
                f"baseline after data generation, before fit {fm['rss_baseline_mb']:.0f} MB; "
                f"peak RSS {fm['peak_rss_mb']:.0f} MB (fit added {fm['peak_rss_mb'] - fm['rss_baseline_mb']:+.0f} MB). "
                f"Target peak <= RSS after imports + X + {FASTNN_MEM_BUDGET_MB:.0f} MB = {limit:.0f} MB: "
                f"**{'PASS' if ok else 'FAIL'}**"]

    jit = {r.get("jit_compile") for r in results if r["peer"] == "keras" and r.get("status") == "ok"}
    out += ["", "Method notes:",
            "- Each (peer, workload) runs in a fresh `python -m bench.worker` process with the same thread "
            f"count N={N}: OMP/OPENBLAS/MKL_NUM_THREADS=N, threadpoolctl limits, torch.set_num_threads/"
            "set_num_interop_threads(N), TF intra/inter-op threads N; CPU affinity pinned to N CPUs when N < "
            "available. C-contiguous synthetic data from a fixed seed, identical for every peer, float32 except "
            "`chapter64` (the same values in float64: fastnn and sklearn compute in float64, torch, keras and "
            "jax convert X to float32 inside the timed fit, as Keras itself does).",
            "- Timed: the fit call only (data generation, model construction, Keras compile and torch optimizer "
            "construction are outside the timer); each timed run starts from a fresh model. sklearn/fastnn: "
            "tol=0, n_iter_no_change huge, early_stopping=False, alpha=0, ConvergenceWarning suppressed.",
            f"- Keras: keras.Sequential, jit_compile left at the Keras default ('auto', resolved to "
            f"{', '.join(str(j) for j in jit) if jit else 'False'} on this CPU-only machine: no XLA); the timed "
            "fit includes Keras' one-time tracing of the train function, as a normal fit does.",
            "- PyTorch: plain nn.Sequential loop, per-epoch torch.randperm indexing (no DataLoader), "
            "BatchNorm1d(momentum=0.01, eps=1e-3) to match Keras; NAdam's momentum_decay default differs "
            "slightly from Keras Nadam (fine for timing); clipnorm applied per parameter tensor as Keras does.",
            "- JAX: pure jax (no flax/optax): Dense, BatchNorm (batch statistics, moving averages momentum 0.99, "
            "eps 1e-3), activations, softmax cross-entropy / MSE, Adam, Keras' Nadam, SGD momentum and per-tensor "
            "clipnorm written out in bench/peers.py; one jit-compiled epoch (`lax.scan` over the mini-batches of a "
            "per-epoch permutation, a last partial batch through a separately jitted step); compile time is "
            "inside the timed fit; Keras' initializers (glorot_uniform, or he_normal where the workload says so); "
            "float32 (x64 disabled: float64 X is converted, as Keras does); threads: "
            f"{_jax_env(results)} set before jax is imported (XLA's CPU client sizes its thread pools from NPROC; "
            "the XLA_FLAGS `--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=N` left 4 threads "
            "busy at N=1 in jax 0.10, NPROC=1 one).",
            "- sklearn: skipped where it cannot express the network (BatchNorm, swish/ELU, Nadam, clipnorm).",
            "- predict: brief untimed fit on a few rows, one untimed warm-up call, then predict_proba on all "
            "rows in one call (Keras: model.predict with batch_size = all rows).",
            "- latency: brief untimed fit of the 64-100-10 network, then predict_proba of 1 row and of 100 rows "
            "(float32): microseconds per call, the best of several batches of many calls after warm-up calls. "
            "torch: eager mode under inference_mode; keras: `model(x, training=False)` (model.predict builds a "
            "data pipeline per call); jax: the jitted forward + softmax, result copied to numpy; fastnn/sklearn: "
            "predict_proba. The table shows the 1-row time; the 100-row time is in the notes.",
            "- wide GFLOP/s = forward + backward GEMM FLOPs of the epoch / fit seconds (backward: weight and input "
            "gradient per layer, no input gradient for the first layer); the machine's sgemm rate is measured on "
            "exactly one training step's GEMM shapes in its own worker with the same thread count."]
    return "\n".join(out)


def within_rounds(results, args):
    """The table's ratios taken within each round: a shared VM is slow for
    stretches of tens of seconds, which the best-of-processes times above can
    catch in one peer's process and not in another's."""
    N = args.threads
    out = ["", "Within-round ratios: fastnn s / peer s of the processes run in the same round, "
           "median (min-max, rounds); for `wide`, fastnn's GFLOP/s / the sgemm probe's "
           "in the same round.",
           "", "| workload | " + " | ".join(f"vs {p}" for p in OTHERS) + " | notes |",
           "|---|" + "|".join("---" for _ in OTHERS) + "|---|"]
    for name in args.workloads:
        fr = _get(results, name, "fastnn", N)
        cells = [fmt_spread([f / p for f, p in round_pairs(fr, _get(results, name, peer, N))])
                 for peer in OTHERS]
        if name == "wide":
            fl = workloads.train_gemm_flops(workloads.get(name, args.quick))
            of_sgemm = [fl / f / 1e9 / rate for f, rate in
                        round_pairs(fr, _get(results, name, "sgemm", N), "round_rates")]
            note = f"GFLOP/s / sgemm's: {fmt_spread(of_sgemm)}"
        else:
            note = ""
        out.append(f"| {name} | " + " | ".join(cells) + f" | {note} |")
    return out


def round_pairs(fr, pr, key="round_seconds"):
    """(fastnn's seconds, the peer's seconds, or with key='round_rates' the
    sgemm probe's GFLOP/s) of each round both ran in: the same stretch of a
    shared machine."""
    peer = {k: v for k, v in (pr or {}).get(key, []) if k is not None and v}
    return [(v, peer[k]) for k, v in (fr or {}).get("round_seconds", []) if k in peer]


def fmt_spread(ratios):
    """'median (min-max, n rounds)' of per-round ratios."""
    if not ratios:
        return "n/a"
    r = sorted(ratios)
    return f"{fmt3(statistics.median(r))} ({fmt3(r[0])}-{fmt3(r[-1])}, {len(r)})"


def _jax_env(results):
    envs = {" ".join(f"{k}={v}" for k, v in r["xla_env"].items())
            for r in results if r["peer"] == "jax" and r.get("xla_env")}
    return " / ".join(sorted(envs)) or "NPROC=N"


# --------------------------------------------------------------------------- main
def plan(args):
    jobs = []
    for name in args.workloads:
        for p in args.peers:
            jobs.append((p, name, args.threads))
            if p == "fastnn" and args.scaling and args.threads > 1:
                jobs.append((p, name, 1))
        if name == "wide":
            jobs.append(("sgemm", name, args.threads))
    return jobs


def best_of_processes(runs):
    """One measurement's worker runs combined: the fastest process's result,
    with every run's time kept (times_by_process); for the sgemm probe, the
    highest rate."""
    rates = [r for r in runs if r.get("status") == "ok" and "sgemm_gflops" in r]
    if rates:  # the machine's sgemm rate: the fastest process
        best = dict(max(rates, key=lambda r: r["sgemm_gflops"]))
        best["round_rates"] = [[r.get("round"), r["sgemm_gflops"]] for r in rates]
        return best
    timed = [r for r in runs if r.get("status") == "ok" and "seconds" in r]
    if not timed:
        return runs[0]
    best = dict(min(timed, key=lambda r: r["seconds"]))
    best["times_by_process"] = [r["times"] for r in timed]
    best["times"] = [t for r in timed for t in r["times"]]
    best["round_seconds"] = [[r.get("round"), r["seconds"]] for r in timed]
    return best


def run_plan(args, results):
    """Every measurement of the plan, appended to results.  With --processes
    N the whole plan runs N times over, each measurement's processes spread
    across the run: on a shared VM the machine is slow for stretches of tens
    of seconds, and a stretch then slows one process of every peer instead of
    all processes of the few peers measured in it."""
    jobs, runs = [], {}
    for peer, name, threads in plan(args):
        w = workloads.get(name, args.quick)
        base = {"peer": peer, "workload": name, "threads": threads}
        why = (peer_missing(peer) if peer != "sgemm" else None) or workloads.peer_unsupported(peer, w)
        if why:
            results.append(dict(base, status="skipped", note=why))
            _progress(results[-1])
        else:
            jobs.append((peer, name, threads))
    for i in range(args.processes):
        for job in jobs:
            res = dict(run_worker(*job, args), round=i + 1)
            _progress(res)
            runs.setdefault(job, []).append(res)
    results.extend(best_of_processes(runs[job]) for job in jobs)


def main(argv=None):
    args = parse_args(argv)
    info = machine_info(args.threads)
    t_start = time.perf_counter()
    results = []
    with BusyLoad(args.load):
        run_plan(args, results)
    text = report(info, results, args)
    total = time.perf_counter() - t_start
    print(text + f"\n\nTotal benchmark wall time: {total:.1f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "args": {k: v for k, v in vars(args).items()},
                       "total_seconds": total, "results": results}, f, indent=1)
        print(f"(results saved to {args.json})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
