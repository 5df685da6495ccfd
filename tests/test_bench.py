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
