"""
latentbridge CUDA kernels (private: use the latentbridge package)
"""
from __future__ import annotations
import latentbridge._core
from latentbridge._core import EigshOptions
import numpy
import numpy.typing
import typing
__all__: list[str] = ['EigshOptions', 'build_info', 'cross_accumulate', 'device_count', 'device_name', 'diffusion_graph', 'eigsh_largest', 'knn_sqeuclidean', 'mahalanobis_rerank', 'pairwise_distances', 'pairwise_distances_device']
def build_info() -> dict:
    ...
@typing.overload
def cross_accumulate(A: numpy.typing.NDArray[numpy.float32], a: typing.Any, B: typing.Any, b: typing.Any, C: numpy.typing.NDArray[numpy.float64], sum_a: typing.Any = None, sum_b: typing.Any = None, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> None:
    """
    C += (A - a)^T (B - b) in float64 (B None: B = A, C made exactly symmetric); sum_a/sum_b += column sums of the shifted chunks.
    """
@typing.overload
def cross_accumulate(A: numpy.typing.NDArray[numpy.float64], a: typing.Any, B: typing.Any, b: typing.Any, C: numpy.typing.NDArray[numpy.float64], sum_a: typing.Any = None, sum_b: typing.Any = None, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> None:
    """
    C += (A - a)^T (B - b) in float64 (B None: B = A, C made exactly symmetric); sum_a/sum_b += column sums of the shifted chunks.
    """
def device_count() -> tuple[int, str]:
    """
    (number of usable CUDA devices, message explaining a zero); never raises.
    """
def device_name(device: typing.SupportsInt | typing.SupportsIndex = 0) -> str:
    ...
def diffusion_graph(idx: numpy.typing.NDArray[numpy.int64], d2: numpy.typing.NDArray[numpy.float64], epsilon: typing.SupportsFloat | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> dict:
    """
    Symmetric normalised kernel T = Q^-1/2 W Q^-1/2 (CSR) on the union of the k-NN lists.
    """
def eigsh_largest(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float64], nev: typing.SupportsInt | typing.SupportsIndex, deflate: typing.Any = None, options: latentbridge._core.EigshOptions = ...) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], dict]:
    """
    Largest nev eigenpairs of a symmetric CSR matrix (thick-restart Lanczos, float64), in the orthogonal complement of the columns of deflate; returns (values desc, vectors (n, nev), info). options: an EigshOptions (basis size, tolerance, seed, threads, filter).
    """
def knn_sqeuclidean(X: numpy.typing.NDArray[numpy.float64], Q: typing.Any, k: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1, method: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float64]]:
    """
    Exact k nearest neighbours (squared Euclidean) of the rows of Q (None: X, self excluded) among the rows of X; returns (idx int64 (nq, k), d2 (nq, k)) sorted by (distance, index). method: 0 auto, 1 kd-tree, 2 brute force.
    """
def mahalanobis_rerank(Y: numpy.typing.NDArray[numpy.float64], G: numpy.typing.NDArray[numpy.float64], Yq: typing.Any, Gq: typing.Any, cand: numpy.typing.NDArray[numpy.int64], k: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1, order: typing.Any = None) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float64]]:
    """
    Keep the k candidates with the smallest (y_q - y_j)^T (G_q^T G_q + G_j^T G_j) (y_q - y_j).
    """
@typing.overload
def pairwise_distances(X: numpy.typing.NDArray[numpy.float32], Y: typing.Any, out: numpy.typing.NDArray[numpy.float32], metric: str = 'euclidean', n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> None:
    """
    Distances between the rows of X and Y (None: Y = X) written into out.
    """
@typing.overload
def pairwise_distances(X: numpy.typing.NDArray[numpy.float64], Y: typing.Any, out: numpy.typing.NDArray[numpy.float64], metric: str = 'euclidean', n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> None:
    """
    Distances between the rows of X and Y (None: Y = X) written into out.
    """
def pairwise_distances_device(X: typing.SupportsInt | typing.SupportsIndex, Y: typing.SupportsInt | typing.SupportsIndex, out: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, m: typing.SupportsInt | typing.SupportsIndex, d: typing.SupportsInt | typing.SupportsIndex, double_precision: bool, metric: str, stream: typing.SupportsInt | typing.SupportsIndex, device: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Distances between device arrays given as raw pointers (Y = 0 for Y = X), on `stream`.
    """
