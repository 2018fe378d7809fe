"""Streamed sufficient statistics in float64: the shared engine of the linear maps and of CKA.

``CrossStats`` accumulates, over row chunks of ``X`` (n, p) and ``Y`` (n, q) given as float32 or
float64, the shifted cross products ``(X - s_x)^T (X - s_x)``, ``(X - s_x)^T (Y - s_y)`` (and
optionally ``(Y - s_y)^T (Y - s_y)``), column sums and sums of squares, all in float64, in memory
that does not depend on n. The shifts ``s_x``, ``s_y`` are the column means of the first chunk; they
remove most of the cancellation of ``X^T X - n mu mu^T`` for data far from the origin, and the
centred statistics follow exactly from the shifted ones.

Three engines compute the products, chosen by ``backend``:

``"blas"`` (default)
    scipy's BLAS (``dsyrk`` for the symmetric products, ``dgemm`` for the cross product) on float64
    copies of row blocks of at most ``block_rows`` rows (default: 64 MiB per block). Faster on the
    machine we measured (two Zen 4 cores, p = q = 2048, 10k-row chunks: 77 GF/s against 58 GF/s
    for the native kernel, numpy's float64 GEMM at ~100 GF/s; bench/suite_alignment.py).
``"native"``
    the C++ kernel ``_core.cross_accumulate`` (ISA-dispatched dot-tile kernel, float32 read
    directly, GIL released, ``n_threads`` threads).
``"cuda"``
    the CUDA kernel ``_cuda.cross_accumulate`` (same contract; each chunk is copied to the current
    device, the float64 products are formed there and added into the host accumulators).

All give the same result to float64 rounding.

Determinism: the native kernel sums every entry of a product over the rows in one fixed order
(blocks of rows in sequence, each output tile owned by one task), so its result does not depend on
``n_threads``: bit-for-bit identical for any thread count. The "blas" backend inherits the BLAS
library's behaviour: OpenBLAS/MKL may change the summation order with their own thread count
(OPENBLAS_NUM_THREADS, MKL_NUM_THREADS), not with ``n_threads``; fix that count for bitwise
reproducibility across machines.
"""

from __future__ import annotations

import numpy as np

BACKENDS = ("blas", "native", "cuda")
CPU_BACKENDS = ("blas", "native")
DEFAULT_BACKEND = "blas"
BLOCK_ELEMENTS = 1 << 23  # float64 elements per converted row block (64 MiB)


def backend_for(device):
    """The accumulation backend for a device argument ("auto" | "cpu" | "cuda")."""
    from ._backend import resolve_device

    return "cuda" if resolve_device(device) == "cuda" else DEFAULT_BACKEND


def _shift_of(A):
    head = A[: min(A.shape[0], 1024)]
    return np.ascontiguousarray(head.mean(axis=0, dtype=np.float64))


class CrossStats:
    """Running float64 sufficient statistics of (X, Y) row chunks (see the module docstring)."""

    def __init__(self, p, q=None, *, want_yy=False, want_xx=True, backend=None, n_threads=1,
                 block_rows=None):
        backend = DEFAULT_BACKEND if backend is None else backend
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")
        self.p, self.q = int(p), None if q is None else int(q)
        self.want_yy = bool(want_yy) and q is not None
        self.want_xx = bool(want_xx) or q is None
        self.backend = backend
        self.n_threads = max(1, int(n_threads))
        if block_rows is None:
            block_rows = max(1024, BLOCK_ELEMENTS // max(self.p, self.q or 1))
        self.block_rows = int(block_rows)
        self.n = 0
        self.shift_x = self.shift_y = None
        order = "F" if backend == "blas" else "C"
        self.Sxx = np.zeros((self.p, self.p), order=order) if self.want_xx else None
        self.sx = np.zeros(self.p)
        self.sxsq = np.zeros(self.p)  # column sums of squares of the shifted X
        if q is not None:
            self.Sxy = np.zeros((self.p, self.q), order=order)
            self.sy = np.zeros(self.q)
            self.syy = np.zeros(self.q)  # column sums of squares of the shifted Y
            if self.want_yy:
                self.Syy = np.zeros((self.q, self.q), order=order)

    # -- accumulation -------------------------------------------------------------------------
    def update(self, X, Y=None):
        """Add a chunk: X (m, p) and, when q was given, Y (m, q); float32 or float64, C order."""
        if X.shape[0] == 0:
            return self
        if self.shift_x is None:
            self.shift_x = _shift_of(X)
            if self.q is not None:
                self.shift_y = _shift_of(Y)
        if self.backend == "blas":
            self._update_blas(X, Y)
        else:
            self._update_native(X, Y)
        self.n += X.shape[0]
        return self

    def _update_blas(self, X, Y):
        from scipy.linalg import blas

        for r0 in range(0, X.shape[0], self.block_rows):
            Xb = X[r0:r0 + self.block_rows].astype(np.float64)
            Xb -= self.shift_x
            self.sx += Xb.sum(axis=0)
            self.sxsq += np.einsum("ij,ij->j", Xb, Xb)
            if self.want_xx:
                self.Sxx = blas.dsyrk(1.0, Xb.T, beta=1.0, c=self.Sxx, trans=0, lower=0,
                                      overwrite_c=1)
            if self.q is None:
                continue
            Yb = Y[r0:r0 + self.block_rows].astype(np.float64)
            Yb -= self.shift_y
            self.sy += Yb.sum(axis=0)
            self.syy += np.einsum("ij,ij->j", Yb, Yb)
            self.Sxy = blas.dgemm(1.0, Xb.T, Yb.T, trans_b=1, beta=1.0, c=self.Sxy, overwrite_c=1)
            if self.want_yy:
                self.Syy = blas.dsyrk(1.0, Yb.T, beta=1.0, c=self.Syy, trans=0, lower=0,
                                      overwrite_c=1)

    def _update_native(self, X, Y):
        from . import _backend

        _core = _backend.kernels("cuda" if self.backend == "cuda" else "cpu")
        t = self.n_threads
        if self.q is not None and X.dtype != Y.dtype:  # one kernel instantiation per call
            X, Y = X.astype(np.float64), Y.astype(np.float64)
        if self.want_xx:
            _core.cross_accumulate(X, self.shift_x, None, None, self.Sxx, None, None, t)
        for r0 in range(0, X.shape[0], self.block_rows):
            Xb = X[r0:r0 + self.block_rows].astype(np.float64) - self.shift_x
            self.sx += Xb.sum(axis=0)
            self.sxsq += np.einsum("ij,ij->j", Xb, Xb)
        if self.q is None:
            return
        _core.cross_accumulate(X, self.shift_x, Y, self.shift_y, self.Sxy, None, self.sy, t)
        if self.want_yy:
            _core.cross_accumulate(Y, self.shift_y, None, None, self.Syy, None, None, t)
        for r0 in range(0, Y.shape[0], self.block_rows):
            Yb = Y[r0:r0 + self.block_rows].astype(np.float64) - self.shift_y
            self.syy += np.einsum("ij,ij->j", Yb, Yb)

    # -- results -------------------------------------------------------------------------------
    @staticmethod
    def _sym(S):
        # dsyrk fills the upper triangle only; the native kernel returns a full symmetric matrix.
        return np.triu(S) + np.triu(S, 1).T

    def mean_x(self):
        return self.shift_x + self.sx / self.n

    def mean_y(self):
        return self.shift_y + self.sy / self.n

    def cxx(self):
        """Centred sum of squares and products of X, (p, p) float64."""
        d = self.sx / self.n
        return self._sym(self.Sxx) - self.n * np.outer(d, d)

    def cxy(self):
        """Centred cross products of X and Y, (p, q) float64."""
        dx, dy = self.sx / self.n, self.sy / self.n
        return np.asarray(self.Sxy) - self.n * np.outer(dx, dy)

    def cyy(self):
        """Centred sum of squares and products of Y, (q, q) float64 (want_yy=True only)."""
        d = self.sy / self.n
        return self._sym(self.Syy) - self.n * np.outer(d, d)

    def xx_diag(self):
        """Centred column sums of squares of X, (p,) float64."""
        d = self.sx / self.n
        return self.sxsq - self.n * d * d

    def yy_diag(self):
        """Centred column sums of squares of Y, (q,) float64."""
        d = self.sy / self.n
        return self.syy - self.n * d * d
