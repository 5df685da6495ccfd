"""Progress reporting and training diagnostics (Python side, per epoch).

verbose=1 prints scikit-learn's lines per epoch, with Keras-like figures added;
verbose=2 also draws a tqdm progress bar inside each epoch, advanced once per
chunk of steps (the C loop is called once per chunk, never per step, so
printing costs nothing measurable). After each epoch the per-layer gradient norms are checked for
the chapter's two failure modes, vanishing and exploding gradients.
"""

import math
import signal
import threading
import warnings


# A bar is advanced this many times per epoch at most.
PROGRESS_UPDATES_PER_EPOCH = 50
# A layer whose mean gradient norm is below this fraction of the largest
# layer's learns (almost) nothing: vanishing gradients. Measured: healthy nets
# (relu, tanh, sigmoid with BatchNorm) stay above 0.2, deep sigmoid nets fall to ~1e-5.
VANISHING_RATIO = 1e-3
# A mean per-layer gradient norm above this is exploding.
EXPLODING_NORM = 1e4


class GradientWarning(UserWarning):
    """Per-layer gradient norms vanish or explode during training."""


def epoch_chunks(n_steps, verbose):
    """Step ranges for the C calls of one epoch: one range, or up to
    PROGRESS_UPDATES_PER_EPOCH ranges when a progress bar is drawn."""
    if verbose < 2 or n_steps <= 1:
        return [(0, n_steps)]
    size = max(1, math.ceil(n_steps / PROGRESS_UPDATES_PER_EPOCH))
    return [(s, min(s + size, n_steps)) for s in range(0, n_steps, size)]


class EpochProgress:
    """A tqdm bar over one epoch's steps (verbose >= 2, tqdm installed)."""

    _warned_missing = False

    def __init__(self, epoch, max_epochs, n_steps, verbose):
        self.bar = None
        if verbose < 2 or n_steps <= 1:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if not EpochProgress._warned_missing:
                warnings.warn("verbose=2 draws a progress bar with tqdm, which is not "
                              "installed (pip install tqdm); printing one line per epoch.")
                EpochProgress._warned_missing = True
            return
        self.bar = tqdm(total=n_steps, desc=f"Epoch {epoch}/{max_epochs}", unit="step",
                        leave=False)

    def advance(self, steps, loss=None):
        if self.bar is not None:
            self.bar.update(steps)
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def epoch_line(iteration, history, seconds):
    """scikit-learn's verbose line for one epoch (``Iteration N, loss = ...``,
    N counted within the call as sklearn's n_iter_), then Keras-like figures
    from the last history_ entries."""
    parts = ["Iteration %d, loss = %.8f" % (iteration, history["loss"][-1]), f"{seconds:.3f}s"]
    if history.get("val_loss"):
        parts.append(f"val_loss: {history['val_loss'][-1]:.6f}")
    parts.append(f"lr: {history['lr'][-1]:.3g}")
    return " - ".join(parts)


class GradientMonitor:
    """Warns (once per fit and kind) when per-layer gradient norms vanish or
    explode, naming the layer and what the chapter suggests against it."""

    def __init__(self):
        self.warned = set()

    def check(self, epoch, norms, n_layers, frozen_layers=0):
        # Plain floats, not numpy: this runs once per epoch, and on tiny
        # networks an epoch takes a few hundred microseconds.
        norms = [float(x) for x in norms]
        if len(self.warned) == 2 or not norms or not all(map(math.isfinite, norms)):
            return
        names = [f"hidden layer {i + 1}" if i < n_layers - 1 else "the output layer"
                 for i in range(n_layers)]
        # Frozen layers get no gradient at all: nothing vanished there.
        norms, names = norms[frozen_layers:], names[frozen_layers:]
        top = max(norms)
        if "exploding" not in self.warned and top > EXPLODING_NORM:
            i = norms.index(top)
            self.warned.add("exploding")
            warnings.warn(
                f"Exploding gradients in epoch {epoch}: the kernel gradient of {names[i]} "
                f"has norm {norms[i]:.3g}. Try gradient clipping (clipnorm=1.0 or "
                "global_clipnorm), a lower learning_rate_init, or batch_norm=True.",
                GradientWarning, stacklevel=5)
        if "vanishing" not in self.warned and top > 0:
            i = norms.index(min(norms))
            if norms[i] < VANISHING_RATIO * top:
                self.warned.add("vanishing")
                warnings.warn(
                    f"Vanishing gradients in epoch {epoch}: the kernel gradient of "
                    f"{names[i]} is {top / max(norms[i], 1e-300):.3g} times smaller than "
                    f"the largest layer's ({norms[i]:.3g} vs {top:.3g}). Try He or LeCun "
                    "initialization (kernel_initializer), a non-saturating activation "
                    "('relu', 'elu', 'selu'), or batch_norm=True.",
                    GradientWarning, stacklevel=5)


class InterruptAtEpochEnd:
    """Holds a Ctrl-C (SIGINT) until the current epoch is trained and recorded,
    so an interrupted fit leaves a consistent, usable model (SPEC section 4).
    A second Ctrl-C interrupts at once, also inside an epoch's C call (which
    polls a flag between steps, see presses_to_stop). Only the main thread
    receives signals; elsewhere this does nothing."""

    _active = None  # the instance holding Ctrl-C in the main thread, if any

    def __init__(self):
        self.requested = False
        self._previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
            InterruptAtEpochEnd._active = self

    @classmethod
    def presses_to_stop(cls):
        """Ctrl-C presses during the next C call that stop it at once: 2, or
        1 after a first press; 0 (do not watch) outside a fit's main thread."""
        active = cls._active
        if active is None or threading.current_thread() is not threading.main_thread():
            return 0
        return 1 if active.requested else 2

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def close(self):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if InterruptAtEpochEnd._active is self:
            InterruptAtEpochEnd._active = None
