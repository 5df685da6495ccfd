"""fastnn benchmarks against scikit-learn, PyTorch (CPU) and Keras 3 (TensorFlow CPU).

Run from the repository root (fastnn must be installed, e.g. ``pip install .``;
peers that are not installed are skipped with a note)::

    python -m bench                                   # all workloads, all peers, all cores
    python bench/run.py                               # same
    python -m bench --quick                           # smoke run (< 2 min on 2 cores)
    python -m bench --workloads tiny,chapter --peers fastnn,torch
    python -m bench --threads 1                       # every peer single-threaded
    python -m bench --scaling                         # fastnn at 1 thread and at N threads
    python -m bench --repeat 3 --json results.json    # min of 3 runs, save everything

Workloads (bench/workloads.py): ``tiny`` (506x13 regression, (8,8,8) BN-before-swish,
Adam, batch 32, 200 epochs), ``chapter`` (60000x784, 10 classes, (300,100) relu, Adam,
batch 32, 1 epoch), ``chapter_bn`` (BN-before-ELU, he_normal, Nadam, clipnorm=1),
``wide`` (16384x1024, (2048,2048) relu, SGD momentum 0.9, batch 512; also GFLOP/s vs
the machine's sgemm at the same shapes) and ``predict`` (predict_proba throughput of
the chapter network on 60000 rows).

Every (peer, workload) runs in a fresh worker process (bench/worker.py) with the
same thread count, float32 C-contiguous data from a fixed seed, and reports its
time and peak RSS as JSON.  The report is a markdown table of seconds and
fastnn's ratio to each peer (fastnn s / peer s: lower is better).  The machine is
usually shared: only ratios within one run mean anything.

Modules: run.py (CLI, orchestration, report), workloads.py (workloads, data, FLOPs),
peers.py (one runner per library, sgemm measurement), worker.py (subprocess entry).
"""
