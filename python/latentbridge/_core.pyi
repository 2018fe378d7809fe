"""
latentbridge C++ core (private: use the latentbridge package)
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['EigshOptions', 'batched_eigh', 'build_info', 'check_distance_matrix', 'cross_accumulate', 'diffusion_graph', 'diffusion_workspace_bytes', 'eigsh_largest', 'eigsh_workspace_bytes', 'enclosing_radius', 'kdtree_order', 'knn_sqeuclidean', 'lanczos_basis_size', 'mahalanobis_rerank', 'median_kth_distance', 'pairwise_distances', 'r_cross_barcode_h1', 'r_cross_barcode_h1_batch', 'r_cross_inputs', 'r_cross_workspace_bytes', 'rips_barcodes', 'rips_homology_applies', 'rips_homology_bytes', 'rips_simplex_bytes', 'rips_workspace_bytes', 'set_simd_isa', 'simd_isa', 'symmetric_quantile']
class EigshOptions:
    """
    Options of eigsh_largest; every field has the C++ default when not given.
    """
    def __init__(self, *, ncv: typing.SupportsInt | typing.SupportsIndex = 0, tol: typing.SupportsFloat | typing.SupportsIndex = 1e-10, max_matvec: typing.SupportsInt | typing.SupportsIndex = 0, seed: typing.SupportsInt | typing.SupportsIndex = 0, n_threads: typing.SupportsInt | typing.SupportsIndex = 1, dense_below: typing.SupportsInt | typing.SupportsIndex = 200, poly_degree: typing.SupportsInt | typing.SupportsIndex = -1, reorder: bool = True) -> None:
        ...
    def __repr__(self) -> str:
        ...
    @property
    def dense_below(self) -> int:
        """
        Dense eigensolver when n - n_deflate is below this.
        """
    @dense_below.setter
    def dense_below(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def max_matvec(self) -> int:
        """
        Products with A at most; 0 = max(100000, 200 ncv).
        """
    @max_matvec.setter
    def max_matvec(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def n_threads(self) -> int:
        """
        CPU threads (ignored by _cuda).
        """
    @n_threads.setter
    def n_threads(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def ncv(self) -> int:
        """
        Lanczos basis size; 0 = max(2 nev + 1, nev + 32), capped by n - n_deflate - 1.
        """
    @ncv.setter
    def ncv(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def poly_degree(self) -> int:
        """
        Chebyshev filter degree (made odd); 1 = plain Lanczos, -1 = automatic.
        """
    @poly_degree.setter
    def poly_degree(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def reorder(self) -> bool:
        """
        Solve on the reverse Cuthill-McKee reordering (cache locality).
        """
    @reorder.setter
    def reorder(self, arg0: bool) -> None:
        ...
    @property
    def seed(self) -> int:
        """
        Seed of the random start vector.
        """
    @seed.setter
    def seed(self, arg0: typing.SupportsInt | typing.SupportsIndex) -> None:
        ...
    @property
    def tol(self) -> float:
        """
        Residual |A x - theta x| <= tol * max(1, |theta_max|).
        """
    @tol.setter
    def tol(self, arg0: typing.SupportsFloat | typing.SupportsIndex) -> None:
        ...
def batched_eigh(A: numpy.typing.NDArray[numpy.float64], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
    """
    Eigenvalues (ascending) and eigenvectors (columns) of each symmetric A[i], as numpy.linalg.eigh.
    """
def build_info() -> dict:
    ...
@typing.overload
def check_distance_matrix(D: numpy.typing.NDArray[numpy.float32], rtol: typing.SupportsFloat | typing.SupportsIndex, atol: typing.SupportsFloat | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> tuple[bool, float]:
    """
    (clean, enclosing radius): whether the float32 square matrix D has no NaN, no negative entry, a zero diagonal and is symmetric as allclose(D, D.T, rtol, atol) says (+inf equal to +inf), in one threaded pass; its enclosing radius when clean.
    """
@typing.overload
def check_distance_matrix(D: numpy.typing.NDArray[numpy.float64], rtol: typing.SupportsFloat | typing.SupportsIndex, atol: typing.SupportsFloat | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1, out32: typing.Any = None) -> tuple[bool, float]:
    """
    The float64 check (also: no finite entry above float32's largest), writing D rounded to float32 into out32 (a C-contiguous float32 array of D's shape, or None; complete when clean).
    """
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
def diffusion_graph(idx: numpy.typing.NDArray[numpy.int64], d2: numpy.typing.NDArray[numpy.float64], epsilon: typing.SupportsFloat | typing.SupportsIndex, alpha: typing.SupportsFloat | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> dict:
    """
    Symmetric normalised kernel T = Q^-1/2 W Q^-1/2 (CSR) on the union of the k-NN lists.
    """
def diffusion_workspace_bytes(n: typing.SupportsInt | typing.SupportsIndex, k: typing.SupportsInt | typing.SupportsIndex, kc: typing.SupportsInt | typing.SupportsIndex, nev: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Bytes of a diffusion map's k-NN lists, candidates, kernel graph and eigensolver vectors.
    """
def eigsh_largest(indptr: numpy.typing.NDArray[numpy.int64], indices: numpy.typing.NDArray[numpy.int32], data: numpy.typing.NDArray[numpy.float64], nev: typing.SupportsInt | typing.SupportsIndex, deflate: typing.Any = None, options: EigshOptions = ...) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64], dict]:
    """
    Largest nev eigenpairs of a symmetric CSR matrix (thick-restart Lanczos, float64), in the orthogonal complement of the columns of deflate; returns (values desc, vectors (n, nev), info). options: an EigshOptions (basis size, tolerance, seed, threads, filter).
    """
def eigsh_workspace_bytes(n: typing.SupportsInt | typing.SupportsIndex, nev: typing.SupportsInt | typing.SupportsIndex, n_deflate: typing.SupportsInt | typing.SupportsIndex = 0, options: EigshOptions = ...) -> int:
    """
    Bytes of eigsh_largest's working vectors (or dense matrices).
    """
def enclosing_radius(D: numpy.typing.NDArray[numpy.float32]) -> float:
    ...
def kdtree_order(X: numpy.typing.NDArray[numpy.float64]) -> numpy.typing.NDArray[numpy.int64]:
    """
    A locality-preserving permutation of the rows of X (kd-tree leaf order).
    """
def knn_sqeuclidean(X: numpy.typing.NDArray[numpy.float64], Q: typing.Any, k: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1, method: typing.SupportsInt | typing.SupportsIndex = 0) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float64]]:
    """
    Exact k nearest neighbours (squared Euclidean) of the rows of Q (None: X, self excluded) among the rows of X; returns (idx int64 (nq, k), d2 (nq, k)) sorted by (distance, index). method: 0 auto, 1 kd-tree, 2 brute force.
    """
def lanczos_basis_size(n: typing.SupportsInt | typing.SupportsIndex, nev: typing.SupportsInt | typing.SupportsIndex, n_deflate: typing.SupportsInt | typing.SupportsIndex = 0, options: EigshOptions = ...) -> int:
    """
    Lanczos vectors eigsh_largest keeps (besides the deflated ones).
    """
def mahalanobis_rerank(Y: numpy.typing.NDArray[numpy.float64], G: numpy.typing.NDArray[numpy.float64], Yq: typing.Any, Gq: typing.Any, cand: numpy.typing.NDArray[numpy.int64], k: typing.SupportsInt | typing.SupportsIndex, n_threads: typing.SupportsInt | typing.SupportsIndex = 1, order: typing.Any = None) -> tuple[numpy.typing.NDArray[numpy.int64], numpy.typing.NDArray[numpy.float64]]:
    """
    Keep the k candidates with the smallest (y_q - y_j)^T (G_q^T G_q + G_j^T G_j) (y_q - y_j).
    """
def median_kth_distance(d2: numpy.typing.NDArray[numpy.float64], k_eps: typing.SupportsInt | typing.SupportsIndex) -> float:
    ...
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
def r_cross_barcode_h1(w: numpy.typing.NDArray[numpy.float32], m: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex = 1, engine: str = 'auto', return_pairs: bool = False) -> typing.Any:
    """
    R-Cross-Barcode_1 from w (first representation's distances) and m = min(w, w~); engine 'auto' (cohomology under a budget, then homology), 'cohomology' or 'homology'. With return_pairs, (bars, pairs): the (k, 4) int64 birth and death edges of each bar in the doubled 2n x 2n numbering.
    """
def r_cross_barcode_h1_batch(problems: collections.abc.Sequence[tuple[typing.Annotated[numpy.typing.ArrayLike, numpy.float32], typing.Annotated[numpy.typing.ArrayLike, numpy.float32]]], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> list:
    """
    R-Cross-Barcode_1 of several independent (w, m) problems, run on n_threads threads.
    """
def r_cross_inputs(r1: numpy.typing.NDArray[numpy.float64], r2: numpy.typing.NDArray[numpy.float64], eps: typing.SupportsFloat | typing.SupportsIndex, w: numpy.typing.NDArray[numpy.float32], m: numpy.typing.NDArray[numpy.float32], n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> int:
    """
    Fills the float32 w = r1 and m = min(r2, w), entries below eps snapped to 0 (see r_cross_inputs.hpp); returns 1 (2) when r1 (r2) holds a finite value beyond float32.
    """
def r_cross_workspace_bytes(n: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Bytes of the larger of r_cross_barcode_h1's two engines for n points (without the data-dependent homology classes).
    """
def rips_barcodes(D: numpy.typing.NDArray[numpy.float32], maxdim: typing.SupportsInt | typing.SupportsIndex = 1, threshold: typing.Any = None, return_pairs: bool = False, engine: str = 'auto', n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> typing.Any:
    """
    Vietoris-Rips barcodes (list of (k, 2) float64 arrays, degrees 0..maxdim) of a float32 distance matrix; threshold None = its enclosing radius. With return_pairs, (bars, pairs): per degree the int64 edges of each bar, (k, 3) rows (vertex, d1, d2) in degree 0, (k, 4) rows (b1, b2, d1, d2) above; -1 for an essential class's death edge. engine 'auto' (homology for maxdim 1..3), 'cohomology' or 'homology'.
    """
def rips_homology_applies(n: typing.SupportsInt | typing.SupportsIndex, maxdim: typing.SupportsInt | typing.SupportsIndex) -> bool:
    """
    Whether rips_barcodes' automatic choice takes the homology engine (maxdim 1..3, n < 65536).
    """
def rips_homology_bytes(D: numpy.typing.NDArray[numpy.float32], maxdim: typing.SupportsInt | typing.SupportsIndex, threshold: typing.Any = None, n_threads: typing.SupportsInt | typing.SupportsIndex = 1) -> float:
    """
    Bytes a homology-engine run of rips_barcodes holds at its peak for D (the float32 matrix, the engine's copy and bit sets, 40 bytes per simplex of degrees 1..maxdim, 56 above degree 1 with n_threads >= 2; threshold None = the enclosing radius of D).
    """
def rips_simplex_bytes(D: numpy.typing.NDArray[numpy.float32], maxdim: typing.SupportsInt | typing.SupportsIndex, threshold: typing.Any = None) -> float:
    """
    Upper bound on the bytes of the simplex lists of degrees 2..maxdim (threshold None = the enclosing radius of D).
    """
def rips_workspace_bytes(n: typing.SupportsInt | typing.SupportsIndex, maxdim: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Bytes rips_barcodes holds for an n x n matrix in degrees up to min(maxdim, 1).
    """
def set_simd_isa(name: str) -> None:
    """
    Select the instruction set of the CPU kernels (for tests and benchmarks).
    """
def simd_isa() -> str:
    ...
def symmetric_quantile(D: numpy.typing.NDArray[numpy.float64], q: typing.SupportsFloat | typing.SupportsIndex) -> float:
    """
    np.quantile(D, q) (linear, bit for bit) of a float64 symmetric matrix with a zero diagonal and no negative entry, from its strict upper triangle.
    """
