"""Linear CKA between every layer of A and every layer of B, streamed over batches of samples.

:class:`StreamingLinearCKA` keeps float64 feature-space statistics that do not grow with the number of
samples, so a layer x layer CKA matrix over any number of inputs needs memory
``8 (P Q + sum_a p_a^2 + sum_b q_b^2)`` bytes plus a batch, with ``P = sum_a p_a`` and ``Q = sum_b q_b``
the total widths of A's and B's layers. Its values equal :func:`latentbridge.cka` on the concatenated
activations (the biased and the debiased estimator) to float64 rounding.

How. Each layer's activations are shifted by the column means of the first batch (z = x - s), which
removes most of the cancellation of ``Z^T Z - n m m^T`` for activations far from the origin. Per batch,
with Z_A the shifted layers of A side by side (b x P) and Z_B those of B (b x Q):

* ``S = sum Z_A^T Z_B`` (P x Q), and ``sum Z_a^T Z_a`` per layer (the diagonal blocks of A^T A, B^T B);
* column sums ``u = sum z``;
* for the debiased estimator, with ``r_i = |z_i|^2`` per layer (b x L_A and b x L_B matrices R_A, R_B):
  ``R_A^T R_B``, ``R_A^T Z_B``, ``R_B^T Z_A`` and the same within each model.

The centred cross product is ``C_ab = S_ab - u_a u_b^T / n`` and the biased CKA
``||C_ab||_F^2 / (||C_aa||_F ||C_bb||_F)``. The debiased estimator (Song et al. 2012, in numerator and
denominators, as :func:`latentbridge.cka`) also needs ``sum_i k_i l_i``, ``sum_i k_i`` and
``sum_i l_i`` with ``k_i = |x_i - mean_x|^2``; expanding ``k_i = r_i - 2 z_i.d + |d|^2`` (``d = u / n``)
gives each from the sums above, so nothing of size n is kept.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_allocation

__all__ = ["StreamingLinearCKA"]


class _Side:
    """The running statistics of one model's layers."""

    def __init__(self, widths):
        self.widths = list(widths)
        self.offsets = np.concatenate([[0], np.cumsum(self.widths)]).astype(int)
        self.shift = None  # (P,)
        self.u = np.zeros(self.offsets[-1])  # sum of shifted rows
        self.gram = [np.zeros((p, p)) for p in self.widths]  # sum z z^T per layer
        L = len(self.widths)
        self.r_sum = np.zeros(L)  # sum r_i per layer
        self.rr = np.zeros((L, L))  # R^T R
        self.rz = np.zeros((L, self.offsets[-1]))  # R^T Z

    def block(self, a):
        return slice(self.offsets[a], self.offsets[a + 1])

    def shifted(self, layers):
        Z = np.concatenate([np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1) for x in layers], axis=1)
        if self.shift is None:
            self.shift = Z.mean(axis=0)
        Z -= self.shift
        R = np.stack([np.einsum("ij,ij->i", Z[:, self.block(a)], Z[:, self.block(a)])
                      for a in range(len(self.widths))], axis=1)
        return Z, R

    def update(self, Z, R, debiased):
        self.u += Z.sum(axis=0)
        for a, g in enumerate(self.gram):
            Za = Z[:, self.block(a)]
            g += Za.T @ Za
        if debiased:
            self.r_sum += R.sum(axis=0)
            self.rr += R.T @ R
            self.rz += R.T @ Z


class StreamingLinearCKA:
    """Accumulate linear CKA statistics for layers of A x layers of B over batches.

    Parameters
    ----------
    widths_a, widths_b : sequence of int
        Feature counts of A's and B's layers (known after the first batch).
    debiased : bool
        Also keep what the unbiased HSIC estimator needs.

    Notes
    -----
    ``update(layers_a, layers_b)`` takes one batch: lists of (b, p_a) and (b, q_b) arrays of the same
    b samples in the same order. ``result()`` returns the (L_A, L_B) matrix of CKA values.
    """

    def __init__(self, widths_a, widths_b, *, debiased=False):
        P, Q = int(sum(widths_a)), int(sum(widths_b))
        square = sum(int(p) ** 2 for p in widths_a) + sum(int(q) ** 2 for q in widths_b)
        check_allocation(8 * (P * Q + square + 2 * (P + Q)),
                         f"streamed linear CKA statistics ({P} features of A x {Q} of B, float64)")
        self.debiased = bool(debiased)
        self.a, self.b = _Side(widths_a), _Side(widths_b)
        self.cross = np.zeros((P, Q))  # sum Z_A^T Z_B
        self.rr_ab = np.zeros((len(self.a.widths), len(self.b.widths)))  # R_A^T R_B
        self.rz_ab = np.zeros((len(self.a.widths), Q))  # R_A^T Z_B
        self.rz_ba = np.zeros((len(self.b.widths), P))  # R_B^T Z_A
        self.n = 0

    def update(self, layers_a, layers_b):
        """Add one batch (lists of arrays, one per layer, rows = the same samples)."""
        Za, Ra = self.a.shifted(layers_a)
        Zb, Rb = self.b.shifted(layers_b)
        self.a.update(Za, Ra, self.debiased)
        self.b.update(Zb, Rb, self.debiased)
        self.cross += Za.T @ Zb
        if self.debiased:
            self.rr_ab += Ra.T @ Rb
            self.rz_ab += Ra.T @ Zb
            self.rz_ba += Rb.T @ Za
        self.n += Za.shape[0]

    # -- the centred quantities ------------------------------------------------------------------

    def _centred(self, S, u_x, u_y):
        return S - np.outer(u_x, u_y) / self.n

    def _kk(self, rr, rz_xy, rz_yx, S, u_x, u_y, r_x, r_y):
        """sum_i k_i l_i with k_i = |x_i - mean_x|^2, l_i = |y_i - mean_y|^2, from shifted sums.

        rr = sum r_x r_y; rz_xy = sum r_x z_y (vector over y's features); rz_yx = sum r_y z_x;
        S = sum z_x z_y^T; u = sums of z; r = sums of r.
        """
        n = self.n
        d, e = u_x / n, u_y / n
        dd, ee = float(d @ d), float(e @ e)
        return (rr - 2.0 * float(rz_xy @ e) - 2.0 * float(rz_yx @ d) + 4.0 * float(d @ S @ e)
                + ee * r_x + dd * r_y - 2.0 * ee * float(u_x @ d) - 2.0 * dd * float(u_y @ e)
                + n * dd * ee)

    def _k_sum(self, r, u):
        return r - float(u @ u) / self.n

    def _hsic(self, C, kl, k_sum, l_sum):
        n = self.n
        t = float(np.einsum("ij,ij->", C, C))
        if not self.debiased:
            return t / (n - 1) ** 2
        # the unbiased HSIC of the linear kernel with column-centred data (as similarity.cka):
        # tr(K~L~) = ||X'Y||^2 - sum k l, 1'K~1 = -sum k, 1'K~L~1 = sum k l
        return (t - kl + k_sum * l_sum / ((n - 1) * (n - 2)) - 2.0 * kl / (n - 2)) / (n * (n - 3))

    def _self_hsic(self, side, a):
        blk = side.block(a)
        C = self._centred(side.gram[a], side.u[blk], side.u[blk])
        if not self.debiased:
            return self._hsic(C, 0.0, 0.0, 0.0)
        kk = self._kk(side.rr[a, a], side.rz[a, blk], side.rz[a, blk], side.gram[a], side.u[blk],
                      side.u[blk], side.r_sum[a], side.r_sum[a])
        k = self._k_sum(side.r_sum[a], side.u[blk])
        return self._hsic(C, kk, k, k)

    def result(self):
        """The (L_A, L_B) matrix of linear CKA values (NaN where a layer is constant)."""
        min_n = 4 if self.debiased else 2
        if self.n < min_n:
            raise ValueError(f"linear CKA needs at least {min_n} samples; got {self.n}.")
        hx = [self._self_hsic(self.a, a) for a in range(len(self.a.widths))]
        hy = [self._self_hsic(self.b, b) for b in range(len(self.b.widths))]
        out = np.full((len(hx), len(hy)), np.nan)
        for a in range(len(hx)):
            ba = self.a.block(a)
            for b in range(len(hy)):
                bb = self.b.block(b)
                C = self._centred(self.cross[ba, bb], self.a.u[ba], self.b.u[bb])
                if self.debiased:
                    kl = self._kk(self.rr_ab[a, b], self.rz_ab[a, bb], self.rz_ba[b, ba],
                                  self.cross[ba, bb], self.a.u[ba], self.b.u[bb],
                                  self.a.r_sum[a], self.b.r_sum[b])
                    h = self._hsic(C, kl, self._k_sum(self.a.r_sum[a], self.a.u[ba]),
                                   self._k_sum(self.b.r_sum[b], self.b.u[bb]))
                else:
                    h = self._hsic(C, 0.0, 0.0, 0.0)
                if hx[a] > 0 and hy[b] > 0:
                    out[a, b] = h / np.sqrt(hx[a] * hy[b])
        return out
