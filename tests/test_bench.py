"""The benchmark's own plumbing (bench/ in a source checkout): the --load
option and the grid-search workload.  No timing is asserted."""
import os

import pytest

bench_run = pytest.importorskip("bench.run", reason="needs a source checkout (bench/)")
from bench import workloads  # noqa: E402


def test_load_implies_scaling_and_is_validated():
    args = bench_run.parse_args(["--load", "2"])
    assert args.load == 2 and args.scaling
    assert not bench_run.parse_args([]).scaling
    with pytest.raises(SystemExit):
        bench_run.parse_args(["--load", "-1"])


def test_busy_load_starts_and_stops_its_processes():
    with bench_run.BusyLoad(2) as load:
        pids = [p.pid for p in load.procs]
        assert len(pids) == 2 and all(p.poll() is None for p in load.procs)
    assert all(p.poll() is not None for p in load.procs)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_search_workload_runs_for_sklearn_api_peers_only():
    w = workloads.get("search", quick=True)
    assert w.mode == "search" and w.epochs < workloads.get("search").epochs
    assert workloads.peer_unsupported("fastnn", w) is None
    assert workloads.peer_unsupported("sklearn", w) is None
    assert "GridSearchCV" in workloads.peer_unsupported("torch", w)
    X, y = workloads.make_data(w)
    assert X.shape == (7188, 64) and X.dtype.name == "float64" and len(y) == 7188


# --------------------------------------------------------------------------- issue 11
import dataclasses  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

from bench import worker  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_JAX = importlib.util.find_spec("jax") is not None


def test_chapter64_is_chapter_with_the_same_values_in_float64():
    for quick in (False, True):
        w32, w64 = workloads.get("chapter", quick), workloads.get("chapter64", quick)
        assert w64.dtype == "float64" and w32.dtype == "float32"
        same = {f.name for f in dataclasses.fields(w32)} - {"name", "dtype", "description"}
        assert all(getattr(w32, k) == getattr(w64, k) for k in same)
    X32, y32 = workloads.make_data(workloads.get("chapter", quick=True))
    X64, y64 = workloads.make_data(workloads.get("chapter64", quick=True))
    assert X64.dtype == np.float64 and X64.flags.c_contiguous and X64.shape == (1600, 784)
    np.testing.assert_array_equal(X64, X32.astype(np.float64))
    np.testing.assert_array_equal(y64, y32)


def test_latency_workload_is_the_digits_network_for_every_peer():
    w, q = workloads.get("latency"), workloads.get("latency", quick=True)
    assert w.mode == "latency" and w.layer_sizes == (64, 100, 10) and w.latency_rows == (1, 100)
    assert q.latency_batches < w.latency_batches and q.latency_batch_seconds < w.latency_batch_seconds
    assert all(workloads.peer_unsupported(p, w) is None for p in bench_run.ALL_PEERS)
    X, y = workloads.make_data(q)
    assert X.shape == (1797, 64) and X.dtype == np.float32 and set(np.unique(y)) == set(range(10))


def test_jax_is_a_peer_everywhere_but_the_grid_search():
    assert "jax" in bench_run.ALL_PEERS and "jax" in bench_run.OTHERS
    assert workloads.peer_unsupported("jax", workloads.get("search")) is not None
    assert all(workloads.peer_unsupported("jax", workloads.get(n)) is None
               for n in workloads.NAMES if n != "search")


def test_seconds_per_call_times_batches_of_many_calls():
    calls = []
    per_call = worker.seconds_per_call(lambda: calls.append(1), batches=4, batch_seconds=0.001)
    assert len(per_call) == 4 and all(t > 0 for t in per_call)
    assert len(calls) >= 3 + 10 + 4 * 10  # warm-up, calibration, 4 batches of >= 10 calls


def test_threadpools_name_the_openblas_kernel():
    import numpy  # noqa: F401  (loads its OpenBLAS)
    pools = [t for t in worker.threadpools() if t["api"] == "openblas"]
    if not pools:
        pytest.skip("numpy is not built with OpenBLAS here")
    assert all(isinstance(t["architecture"], str) and t["architecture"] for t in pools)


def _fake(peer, workload, seconds, **extra):
    pools = [{"api": "openblas", "threads": 2, "lib": f"lib{peer}.so", "version": "0.3",
              "architecture": f"Arch{peer}"}]
    return dict(peer=peer, workload=workload, threads=2, status="ok", seconds=seconds, times=[seconds],
                score=0.5, x_mb=1.0, rss_imports_mb=100.0, rss_baseline_mb=101.0, peak_rss_mb=110.0,
                threadpools=pools, **extra)


def test_report_has_ratios_to_every_peer_kernels_and_microseconds():
    args = bench_run.parse_args(["--workloads", "latency,chapter64", "--threads", "2", "--quick"])
    info = bench_run.machine_info(2)
    info["openblas_env"] = {"OPENBLAS_CORETYPE": "Haswell"}
    results = [_fake(p, "latency", s * 1e-6, latency_us={"1": s, "100": 10 * s})
               for p, s in (("fastnn", 20.0), ("sklearn", 80.0), ("torch", 40.0), ("keras", 400.0),
                            ("jax", 25.0))]
    results += [_fake("fastnn", "chapter64", 1.0), _fake("jax", "chapter64", 4.0)]
    text = bench_run.report(info, results, args)
    header = next(line for line in text.splitlines() if line.startswith("| workload"))
    assert all(f"vs {p}" in header for p in ("sklearn", "torch", "keras", "jax"))
    latency = next(line for line in text.splitlines() if line.startswith("| latency"))
    cells = [c.strip() for c in latency.split("|")[1:-1]]
    assert cells[1] == "20.0 µs" and cells[5] == "25.0 µs"
    assert cells[6:10] == ["0.250", "0.500", "0.0500", "0.800"]
    assert "µs per 100-row call: fastnn 200, sklearn 800" in cells[10]
    chapter64 = next(line for line in text.splitlines() if line.startswith("| chapter64"))
    assert "| 0.250 |" in chapter64 and "float64 X" in chapter64
    assert "jax Archjax (libjax.so)" in text and "OPENBLAS_CORETYPE=Haswell" in text


@pytest.mark.skipif(not HAS_JAX, reason="jax not installed")
@pytest.mark.parametrize("workload", ["tiny", "latency"])
def test_jax_peer_quick_run_in_a_worker(workload):
    p = subprocess.run([sys.executable, "-m", "bench.worker", "--peer", "jax", "--workload", workload,
                        "--threads", "1", "--quick"], cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, PYTHONPATH=ROOT))
    line = [x for x in p.stdout.splitlines() if x.startswith(worker.MARK)]
    assert line, p.stderr[-2000:]
    res = json.loads(line[-1][len(worker.MARK):])
    assert res["status"] == "ok", res.get("note")
    assert res["versions"]["jax"] and res["xla_env"]["NPROC"] == "1"
    assert np.isfinite(res["score"]) and res["seconds"] > 0
    if workload == "latency":
        assert set(res["latency_us"]) == {"1", "100"} and min(res["latency_us"].values()) > 0
        assert res["score"] > 0.15  # 10 classes: better than chance after the brief fit
    else:
        assert res["score"] > 0.0  # R^2: it learned something in 10 epochs


HAS_KERAS = importlib.util.find_spec("keras") is not None


def _jax_and_keras_peers():
    """The two peers without their setup(), which would set process-wide thread
    settings (TensorFlow refuses them once it has run)."""
    import jax
    import keras
    from bench.peers import JaxPeer, KerasPeer
    jp, kp = JaxPeer(), KerasPeer()
    jp.jax, jp.jnp, kp.keras = jax, jax.numpy, keras
    return jp, kp


def jax_trains_as_keras_does(changes):
    """Three full-batch steps of the JAX peer's jitted step from Keras' starting
    weights give Keras' weights and BatchNorm moving statistics (run in a fresh
    interpreter by the test below)."""
    jp, kp = _jax_and_keras_peers()
    changes = dict(changes, hidden=tuple(changes["hidden"]))  # a list after JSON
    w = dataclasses.replace(workloads.get("tiny"), n_samples=48, n_features=5, lr=0.05, **changes)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((48, 5)).astype(np.float32)
    y = (rng.integers(0, 3, 48) if w.task == "classification" else rng.standard_normal(48)).astype(
        np.int32 if w.task == "classification" else np.float32)
    model, keras_model = jp.build(w), kp.build(w)
    keras_layers = [layer for layer in keras_model.layers if layer.weights]
    params, stats, opt = model["state"]
    params = [dict(p) for p in params]
    stats = [dict(s) for s in stats]
    # Keras' starting weights into the JAX parameters: Dense, then BatchNorm if any
    k = 0
    for i, p in enumerate(params):
        weights = keras_layers[k].get_weights()
        p["W"] = jp.jnp.asarray(weights[0])
        if "b" in p:
            p["b"] = jp.jnp.asarray(weights[1])
        k += 1
        if "gamma" in p:
            gamma, beta, mean, var = keras_layers[k].get_weights()
            p["gamma"], p["beta"] = jp.jnp.asarray(gamma), jp.jnp.asarray(beta)
            stats[i] = {"mean": jp.jnp.asarray(mean), "var": jp.jnp.asarray(var)}
            k += 1
    state = (params, stats, opt)
    start = np.asarray(params[0]["W"])
    idx = np.arange(48, dtype=np.int32)
    for _ in range(3):
        keras_model.train_on_batch(X, y)
        state = model["last_batch"](state, jp.jnp.asarray(X), jp.jnp.asarray(y), idx)
    params, stats, _ = state
    k = 0
    for i, p in enumerate(params):
        got = [p["W"]] + ([p["b"]] if "b" in p else [])
        for a, b in zip(got, keras_layers[k].get_weights()):
            np.testing.assert_allclose(np.asarray(a), b, rtol=1e-3, atol=2e-5)
        k += 1
        if "gamma" in p:
            got = [p["gamma"], p["beta"], stats[i]["mean"], stats[i]["var"]]
            for a, b in zip(got, keras_layers[k].get_weights()):
                np.testing.assert_allclose(np.asarray(a), b, rtol=1e-3, atol=2e-5)
            k += 1
    # and the moves are real: the weights left their starting point
    assert np.abs(np.asarray(params[0]["W"]) - start).max() > 1e-3




@pytest.mark.skipif(not (HAS_JAX and HAS_KERAS), reason="jax or keras not installed")
@pytest.mark.parametrize("changes", [
    dict(task="regression", n_classes=0, hidden=(8, 8), activation="swish", batch_norm=True, solver="adam",
         kernel_initializer="he_normal"),
    dict(task="classification", n_classes=3, hidden=(8,), activation="elu", batch_norm=True, solver="nadam",
         clipnorm=0.05),
    dict(task="classification", n_classes=3, hidden=(8, 8), activation="relu", batch_norm=False, solver="sgd"),
], ids=["bn-swish-adam", "bn-elu-nadam-clipnorm", "relu-sgd-momentum"])
def test_jax_peer_trains_as_keras_does(changes):
    """In its own interpreter: TensorFlow and JAX loaded into the pytest
    process broke the later tests/test_keras_parity.py (float/double AddV2
    errors in 40 tests)."""
    code = ("import json, runpy, sys; "
            "runpy.run_path(sys.argv[1])['jax_trains_as_keras_does'](json.loads(sys.argv[2]))")
    p = subprocess.run([sys.executable, "-c", code, os.path.abspath(__file__), json.dumps(changes)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2",
                                KERAS_BACKEND="tensorflow"))
    assert p.returncode == 0, p.stderr[-3000:]


def test_processes_are_spread_over_rounds_of_the_whole_plan(monkeypatch):
    """--processes N runs the plan N times over (one process of every
    measurement per round) and reports each measurement's fastest process."""
    calls = []

    def fake_worker(peer, name, threads, args):
        calls.append((peer, name, threads))
        t = 1.0 + 0.1 * len(calls)
        return {"peer": peer, "workload": name, "threads": threads, "status": "ok",
                "seconds": t, "times": [t]}

    monkeypatch.setattr(bench_run, "run_worker", fake_worker)
    monkeypatch.setattr(bench_run, "peer_missing", lambda peer: None)
    args = bench_run.parse_args(["--workloads", "tiny,chapter", "--peers", "fastnn",
                                 "--processes", "3", "--scaling"])
    results = []
    bench_run.run_plan(args, results)
    plan = bench_run.plan(args)
    assert calls == plan * 3
    assert [(r["peer"], r["workload"], r["threads"]) for r in results] == plan
    for i, r in enumerate(results):  # the first round's process was the fastest
        assert r["seconds"] == 1.0 + 0.1 * (i + 1)
        assert len(r["times_by_process"]) == 3
        step = 0.1 * len(plan)  # the same job one round later
        assert r["round_seconds"] == [[k + 1, pytest.approx(r["seconds"] + k * step)]
                                      for k in range(3)]


def test_within_round_ratios_pair_the_processes_of_each_round():
    """The within-round table divides fastnn's time by each peer's in the
    same round (a round the peer missed is left out) and gives `wide`'s
    fraction of the sgemm probe's rate in the same round."""
    args = bench_run.parse_args(["--workloads", "chapter,wide", "--peers", "fastnn,jax",
                                 "--processes", "3"])
    results = [_fake("fastnn", "chapter", 0.6, round_seconds=[[1, 0.6], [2, 0.9], [3, 0.7]]),
               _fake("jax", "chapter", 1.5, round_seconds=[[1, 2.0], [2, 1.5], [3, 1.4]]),
               _fake("fastnn", "wide", 3.0, round_seconds=[[1, 3.0], [2, 4.0], [3, 3.2]]),
               _fake("jax", "wide", 3.3, round_seconds=[[2, 3.6], [3, 3.3]]),
               dict(peer="sgemm", workload="wide", threads=2, status="ok", sgemm_gflops=190.0,
                    sgemm_gflops_scipy=190.0, sgemm_gflops_numpy=185.0,
                    round_rates=[[1, 190.0], [2, 160.0], [3, 170.0]])]
    text = "\n".join(bench_run.within_rounds(results, args))
    chapter = next(line for line in text.splitlines() if line.startswith("| chapter"))
    # rounds: 0.6 / 2.0, 0.9 / 1.5, 0.7 / 1.4
    assert "| 0.500 (0.300-0.600, 3) |" in chapter
    assert chapter.count("n/a") == 3  # sklearn, torch, keras not run
    wide = next(line for line in text.splitlines() if line.startswith("| wide"))
    # rounds 2 and 3 only (4.0 / 3.6, 3.2 / 3.3): the median of two is their mean
    assert "| 1.04 (0.970-1.11, 2) |" in wide
    fl = workloads.train_gemm_flops(workloads.get("wide")) / 1e9
    fractions = sorted([fl / 3.0 / 190.0, fl / 4.0 / 160.0, fl / 3.2 / 170.0])
    assert f"GFLOP/s / sgemm's: {bench_run.fmt3(fractions[1])} " in wide
    assert "Within-round ratios" in bench_run.report(bench_run.machine_info(2), results, args)
