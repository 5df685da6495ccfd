"""fastnn benchmarks against scikit-learn, PyTorch (CPU), Keras 3 (TensorFlow CPU) and JAX (CPU).

Run from the repository root (fastnn must be installed, e.g. ``pip install .``;
peers that are not installed are skipped with a note)::

    python -m bench                                   # all workloads, all peers, all cores
    python bench/run.py                               # same
    python -m bench --quick                           # smoke run (< 2 min on 2 cores)
    python -m bench --workloads tiny,chapter --peers fastnn,torch,jax
    python -m bench --threads 1                       # every peer single-threaded
    python -m bench --scaling                         # fastnn at 1 thread and at N threads
    python -m bench --repeat 3 --json results.json    # min of 3 runs, save everything

Workloads (bench/workloads.py): ``tiny`` (506x13 regression, (8,8,8) BN-before-swish,
Adam, batch 32, 200 epochs), ``chapter`` (60000x784, 10 classes, (300,100) relu, Adam,
batch 32, 1 epoch), ``chapter_bn`` (BN-before-ELU, he_normal, Nadam, clipnorm=1),
``wide`` (16384x1024, (2048,2048) relu, SGD momentum 0.9, batch 512; also GFLOP/s vs
the machine's sgemm at the same shapes), ``chapter64`` (chapter with float64 X, as
StandardScaler or pandas give it: fastnn and sklearn compute in float64, torch, Keras
and JAX convert X to float32), ``predict`` (predict_proba throughput of the chapter
network on 60000 rows), ``latency`` (predict_proba of 1 row and of 100 rows on the
digits-sized 64-100-10 network, microseconds per call: the table shows the 1-row
time, the notes the 100-row time) and ``search`` (a GridSearchCV on digits x4,
fastnn and sklearn only).

Peers (bench/peers.py): fastnn, sklearn, torch (eager nn.Sequential loop), keras
(Sequential, TensorFlow backend) and jax (pure jax written out in peers.py: one
jit-compiled ``lax.scan`` epoch, compile time inside the timed fit).  The report
header names the OpenBLAS kernel each peer's process ran (threadpoolctl's
``architecture``) and any OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE in the environment:
they force older kernels, so unset them in the benchmark command for a real run.

Every (peer, workload) runs in a fresh worker process (bench/worker.py) with the
same thread count, C-contiguous data from a fixed seed (float32 except chapter64
and search), and reports its time and peak RSS as JSON.  The report is a markdown
table of seconds and fastnn's ratio to each peer (fastnn s / peer s: lower is
better).  The machine is usually shared: only ratios within one run mean anything.

Modules: run.py (CLI, orchestration, report), workloads.py (workloads, data, FLOPs),
peers.py (one runner per library, sgemm measurement), worker.py (subprocess entry).
"""
