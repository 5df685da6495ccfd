"""The flat-buffer layout of a network, and the views between it and the
estimator's sklearn-style attributes (coefs_, intercepts_, bn_*_).

Parameter vector: every Dense kernel (row-major, shape (fan_in, fan_out)),
then every Dense bias (as sklearn's ``_pack``), then gamma and beta of each
BatchNorm slot.  Statistics vector: moving mean and variance per BN slot.
BN slot 0 normalizes the inputs; slot l >= 1 follows hidden layer l.
"""

import numpy as np

from . import _core


# Byte offset within a 4 KiB page of each flat vector the optimizer streams
# together, in units of PAGE_SLOT_BYTES: one slot each for the parameters and
# the two moment buffers; the core puts the gradient in SLOT_GRAD (fastnn.h).
PAGE_SLOT_BYTES = _core.PAGE_SLOT_BYTES
SLOT_PARAMS, SLOT_MOMENT_M, SLOT_MOMENT_V = (_core.SLOT_PARAMS, _core.SLOT_MOMENT_M,
                                             _core.SLOT_MOMENT_V)


def staggered_empty(n, dtype, slot):
    """Uninitialized 1-D array of n elements starting slot * PAGE_SLOT_BYTES
    bytes past a 4096-byte boundary.

    The update streams parameters, gradient and moments element by element.
    Large allocations all start at the same offset within a page, and then
    every load matches the low 12 address bits of a store just made to
    another array: the CPU treats it as a possible dependency and waits (4K
    aliasing). Measured: the Adam update ran 1.3x slower.
    """
    dtype = np.dtype(dtype)
    return _staggered(np.empty(n + 4096 // dtype.itemsize, dtype=dtype), n, slot)


def staggered_zeros(n, dtype, slot):
    """staggered_empty, filled with zeros by the allocator (calloc): a large
    buffer comes as untouched pages, so its first write happens where it is
    first used (the core's threads) rather than in a serial fill here.  On
    the VMs measured a first touch cost 11-80 ms per 25 MB (CONTRIBUTING.md,
    "Profiling a fit")."""
    dtype = np.dtype(dtype)
    return _staggered(np.zeros(n + 4096 // dtype.itemsize, dtype=dtype), n, slot)


def _staggered(buf, n, slot):
    skip = (slot * PAGE_SLOT_BYTES - buf.ctypes.data) % 4096
    start = skip // buf.itemsize
    return buf[start:start + n]


class Layout:
    """Offsets of every tensor in the flat parameter and statistics vectors.

    Parameters
    ----------
    units : list of int
        Layer widths: n_features, hidden sizes..., n_outputs.
    batch_norm : {False, 'before', 'after'}
        BatchNorm on every hidden layer; with 'before' the hidden Dense
        layers have no bias (BN's beta replaces it).
    batch_norm_input : bool
        BatchNorm on the inputs (slot 0).
    """

    def __init__(self, units, batch_norm=False, batch_norm_input=False):
        self.units = [int(u) for u in units]
        self.n_layers = len(self.units) - 1
        self.batch_norm = batch_norm
        self.batch_norm_input = bool(batch_norm_input)
        L = self.n_layers
        off = 0
        self.w_off = []
        for l in range(L):
            self.w_off.append(off)
            off += self.units[l] * self.units[l + 1]
        self.b_off = []
        for l in range(L):
            if self.has_bias(l):
                self.b_off.append(off)
                off += self.units[l + 1]
            else:
                self.b_off.append(-1)
        self.bn_off, self.stat_off = [], []
        stat = 0
        for s in range(L):
            if self.has_bn(s):
                self.bn_off.append(off)
                off += 2 * self.units[s]
                self.stat_off.append(stat)
                stat += 2 * self.units[s]
            else:
                self.bn_off.append(-1)
                self.stat_off.append(-1)
        self.n_params = off
        self.n_stats = stat

    def has_bias(self, l):
        """Dense layer l keeps its bias unless BatchNorm follows it directly."""
        return not (self.batch_norm == "before" and l < self.n_layers - 1)

    def has_bn(self, s):
        """BN slot s: 0 is the input BN, s >= 1 follows hidden layer s."""
        if s == 0:
            return self.batch_norm_input
        return bool(self.batch_norm) and s < self.n_layers

    def network(self, dtype, **config):
        """A _core.Network with this layout and the given hyper-parameters."""
        return _core.Network(
            dtype=dtype, units=self.units, w_off=self.w_off, b_off=self.b_off,
            bn_off=self.bn_off, stat_off=self.stat_off, n_params=self.n_params,
            n_stats=self.n_stats, batch_norm=_core.BATCH_NORM[self.batch_norm],
            batch_norm_input=self.batch_norm_input, **config)

    def trainable(self, frozen_layers):
        """Boolean mask of the parameters training changes: all but the
        kernels and biases of the first frozen_layers Dense layers and BN
        slots 0..frozen_layers (fnn_net.frozen_layers)."""
        mask = np.ones(self.n_params, dtype=bool)
        for l in range(frozen_layers):
            mask[self.w_off[l]:self.w_off[l] + self.units[l] * self.units[l + 1]] = False
            if self.b_off[l] >= 0:
                mask[self.b_off[l]:self.b_off[l] + self.units[l + 1]] = False
        for s in range(frozen_layers + 1 if frozen_layers else 0):
            if self.has_bn(s):
                mask[self.bn_off[s]:self.bn_off[s] + 2 * self.units[s]] = False
        return mask

    # -- views between flat vectors and per-tensor arrays ------------------
    def kernel(self, params, l):
        size = self.units[l] * self.units[l + 1]
        return params[self.w_off[l]:self.w_off[l] + size].reshape(
            self.units[l], self.units[l + 1])

    def bias(self, params, l):
        o = self.b_off[l]
        return None if o < 0 else params[o:o + self.units[l + 1]]

    def gamma_beta(self, params, s):
        o, w = self.bn_off[s], self.units[s]
        return params[o:o + w], params[o + w:o + 2 * w]

    def moving(self, stats, s):
        o, w = self.stat_off[s], self.units[s]
        return stats[o:o + w], stats[o + w:o + 2 * w]

    def pack(self, coefs, intercepts, bn_gamma, bn_beta, bn_mean, bn_var, dtype):
        """Flat (params, stats) vectors from per-layer arrays; shapes checked."""
        params = staggered_empty(self.n_params, dtype, SLOT_PARAMS)
        stats = np.empty(self.n_stats, dtype=dtype)
        if len(coefs) != self.n_layers or len(intercepts) != self.n_layers:
            raise ValueError("coefs_ and intercepts_ must have one array per layer "
                             f"({self.n_layers})")
        for l in range(self.n_layers):
            shape = (self.units[l], self.units[l + 1])
            if np.shape(coefs[l]) != shape:
                raise ValueError(f"coefs_[{l}] has shape {np.shape(coefs[l])}, "
                                 f"expected {shape}")
            self.kernel(params, l)[...] = coefs[l]
            b = self.bias(params, l)
            if b is not None:
                if np.shape(intercepts[l]) != (self.units[l + 1],):
                    raise ValueError(f"intercepts_[{l}] has shape "
                                     f"{np.shape(intercepts[l])}, expected "
                                     f"({self.units[l + 1]},)")
                b[...] = intercepts[l]
        for s in range(self.n_layers):
            if not self.has_bn(s):
                continue
            g, b = self.gamma_beta(params, s)
            m, v = self.moving(stats, s)
            for dst, src, name in ((g, bn_gamma, "bn_gamma_"), (b, bn_beta, "bn_beta_"),
                                   (m, bn_mean, "bn_moving_mean_"),
                                   (v, bn_var, "bn_moving_var_")):
                if src is None or src[s] is None or np.shape(src[s]) != dst.shape:
                    raise ValueError(f"{name}[{s}] must be an array of shape {dst.shape}")
                dst[...] = src[s]
        return params, stats

    def unpack(self, params, stats, copy=True):
        """Per-layer arrays: (coefs, intercepts, gamma, beta, mean, var).

        copy=False gives views into params and stats instead, for a fit's
        final weights: the vectors are not written again (a later fit packs
        new ones), and copying them would cost a fresh pass over the model."""
        take = np.copy if copy else (lambda a: a)
        coefs = [take(self.kernel(params, l)) for l in range(self.n_layers)]
        intercepts = []
        for l in range(self.n_layers):
            b = self.bias(params, l)
            intercepts.append(np.zeros(self.units[l + 1], dtype=params.dtype)
                              if b is None else take(b))
        gamma, beta, mean, var = [], [], [], []
        for s in range(self.n_layers):
            if self.has_bn(s):
                g, b = self.gamma_beta(params, s)
                m, v = self.moving(stats, s)
                gamma.append(take(g))
                beta.append(take(b))
                mean.append(take(m))
                var.append(take(v))
            else:
                for lst in (gamma, beta, mean, var):
                    lst.append(None)
        return coefs, intercepts, gamma, beta, mean, var

    # -- inference ---------------------------------------------------------
    def fold(self, params, stats, epsilon):
        """BatchNorm folded into the Dense layers (SPEC section 3): returns the
        (Layout, params) of an equivalent network without BN.

        BN before layer l's activation: W' = W s, b' = (b - mu) s + beta.
        BN after an activation (or on the inputs) is an affine map of the next
        Dense layer's input: W' = diag(s) W, b' = b + (beta - mu s) W,
        with s = gamma / sqrt(var + eps).

        Without BatchNorm there is nothing to fold: the layout is already
        plain and params is returned as it is (callers only read it).  A
        copy through float64 cost each validation of a fit on a wide
        network new pages for three times the parameters."""
        plain = Layout(self.units)
        if not any(self.has_bn(s) for s in range(self.n_layers)):
            return plain, params
        out = np.empty(plain.n_params, dtype=params.dtype)
        for l in range(self.n_layers):
            w = self.kernel(params, l).astype(np.float64)
            b = self.bias(params, l)
            b = np.zeros(self.units[l + 1]) if b is None else b.astype(np.float64)
            s_in = l  # BN slot acting on this layer's input
            if self.has_bn(s_in) and (s_in == 0 or self.batch_norm == "after"):
                scale, shift = self._affine(params, stats, s_in, epsilon)
                b = b + shift @ w
                w = scale[:, None] * w
            s_out = l + 1
            if s_out < self.n_layers and self.has_bn(s_out) and self.batch_norm == "before":
                scale, shift = self._affine(params, stats, s_out, epsilon)
                w = w * scale[None, :]
                b = b * scale + shift
            plain.kernel(out, l)[...] = w
            plain.bias(out, l)[...] = b
        return plain, out

    def _affine(self, params, stats, s, epsilon):
        """BN slot s in inference mode as x * scale + shift (float64)."""
        g, b = (a.astype(np.float64) for a in self.gamma_beta(params, s))
        m, v = (a.astype(np.float64) for a in self.moving(stats, s))
        scale = g / np.sqrt(v + epsilon)
        return scale, b - m * scale
