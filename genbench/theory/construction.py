"""Zhang et al. (2017), Theorem 1, Lemma 1 and Corollary 1: ReLU networks that fit any targets.

Theorem 1 (Appendix C) builds c(x) = sum_j w_j max(<a, x> - b_j, 0), a two-layer ReLU network
with 2n + d weights (a in R^d, b in R^n, w in R^n), that reproduces any real targets y on any n
distinct points. The recipe: project the points onto a direction a on which they are distinct,
sort the projections x_1 < ... < x_n, place b so that b_1 < x_1 < b_2 < ... < b_n < x_n, and
solve A w = y for the lower-triangular A = [max(x_i - b_j, 0)] of Lemma 1.

Conditioning (why float64 and what tolerance to expect). Lemma 1: A is lower triangular with
diagonal x_i - b_i, so its eigenvalues are those diagonal entries and the smallest is
min_i (x_i - b_i) (= 3/4 of the smallest gap between projections, with :func:`interleave`). Small
gaps make w large, but forward substitution is componentwise backward stable (Higham, *Accuracy
and Stability of Numerical Algorithms*, Thm 8.5): the computed w solves (A + dA) w = y with
|dA| <= gamma_n |A|, gamma_k = k u / (1 - k u), u = 2^-53. Hence the residual of the solve is at
most gamma_n (|A| |w|)_i, and evaluating the network (the same A, a sum of n products) adds at
most gamma_{n+2} (|A| |w|)_i (Higham Thm 3.1; n+2 allows for the split sums of the deep
network). If the forward pass recomputes a projection <a, z_i> with a different rounding, the
output moves by at most |slope_i| * gamma_d (|a|^T |z_i|), where slope_i = sum_{b_j < x_i} w_j
is the network's slope at x_i (c is piecewise linear and the perturbation cannot cross a kink,
see the margin in :func:`choose_direction`). :func:`interpolation_tolerance` returns the sum of
these three terms per point: a bound derived from the arithmetic, not a fudge factor.

Corollary 1 trades width for depth. :class:`DepthKNetwork` uses a simpler route than the
paper's multiplexer, built as explicit ``nn.Linear`` layers: the first layer computes the shifted
projection p = max(<a, x> - shift, 0) once (d + 1 weights); c is a sum over the n ReLUs
max(p - b_j, 0), so split them into k - 2 consecutive blocks and let hidden layer l compute
block l while carrying p and the partial sums forward. With p >= 0 and b_j > 0 every carried
quantity is non-negative, so a ReLU passes it through unchanged and the deep network computes
exactly c (for every input, not only on the sample). Counted from the layers: width at most
ceil(n / (k - 2)) + 3, and at most 3n + d + 3k nonzero weights (d + 1 for the projection, 2 per
block unit, 1 per term into s+ or s-, and the unit-weight carries).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genbench.errors import ConfigError

UNIT_ROUNDOFF = torch.finfo(torch.float64).eps / 2  # u = 2^-53 for float64 round-to-nearest


def gamma(k: int) -> float:
    """Higham's gamma_k = k u / (1 - k u): the relative error bound of k float64 roundings."""
    return k * UNIT_ROUNDOFF / (1.0 - k * UNIT_ROUNDOFF)


def _as_points(X: Tensor) -> Tensor:
    """(n, ...) -> float64 (n, d); NaN/inf and empty samples are configuration errors."""
    if X.ndim < 1 or X.shape[0] == 0:
        raise ConfigError(f"X: need at least one point, got shape {tuple(X.shape)}")
    X = X.reshape(X.shape[0], -1).to(torch.float64)
    bad = (~torch.isfinite(X)).any(dim=1).nonzero().flatten().tolist()
    if bad:
        raise ConfigError(f"X: rows {bad[:10]} contain NaN or inf; the theorem needs finite points")
    return X


def _as_targets(y: Tensor, n: int, device: torch.device) -> Tensor:
    y = y.reshape(-1).to(device=device, dtype=torch.float64)
    if y.numel() != n:
        raise ConfigError(f"y: need one target per point ({n}), got {y.numel()}")
    if not torch.isfinite(y).all():
        raise ConfigError("y: targets contain NaN or inf")
    return y


def check_distinct(X: Tensor) -> None:
    """Raise a ConfigError naming the rows of X that coincide (the theorem needs distinct points)."""
    _, inverse, counts = torch.unique(X, dim=0, return_inverse=True, return_counts=True)
    if (counts > 1).any():
        groups = [
            (inverse == g).nonzero().flatten().tolist() for g in (counts > 1).nonzero().flatten()
        ]
        raise ConfigError(
            f"X: rows coincide: {groups[:10]}; Theorem 1 needs distinct points, so drop the "
            "duplicates (or give them equal targets and keep one)"
        )


def projection_error(X: Tensor, a: Tensor) -> Tensor:
    """Per-point bound gamma_d * (|a|^T |z_i|) on the rounding error of the float64 <a, z_i>."""
    return gamma(X.shape[1]) * (X.abs() @ a.abs())


def choose_direction(X: Tensor, seed: int = 0, max_tries: int = 10) -> Tensor:
    """A unit direction a on which the projections of the rows of X are safely distinct.

    a is drawn from N(0, I) with ``seed`` (then seed + 1, ...; at most ``max_tries`` draws). It is
    accepted when the smallest gap between sorted projections exceeds 1 / theta = 4 times the
    largest rounding error of a projection: the order cannot be an artefact of rounding, and a
    re-rounded projection stays between its two interleaving b's (see :func:`interleave`).
    """
    n, d = X.shape
    for attempt in range(max_tries):
        g = torch.Generator().manual_seed(seed + attempt)
        a = torch.randn(d, generator=g, dtype=torch.float64).to(X.device)
        a = a / a.norm()
        x = torch.sort(X @ a).values
        if n == 1 or (x.diff().min() > 4 * projection_error(X, a).max()):
            return a
    raise ConfigError(
        f"X: no direction among seeds {seed}..{seed + max_tries - 1} separates the {n} points by "
        "more than float64 rounding; some rows are (nearly) identical. Rescale X, drop "
        "near-duplicate rows, or raise max_tries"
    )


def interleave(x: Tensor, theta: float = 0.25) -> Tensor:
    """b with b_1 < x_1 < b_2 < x_2 < ... < b_n < x_n for sorted, distinct x.

    b_{i+1} = x_i + theta (x_{i+1} - x_i) sits a fraction theta of the way into each gap, and
    b_1 = x_1 - (1 - theta) g with g the smallest gap (1 for a single point), so Lemma 1's
    smallest eigenvalue is min_i (x_i - b_i) = (1 - theta) g. Why not the midpoint, or b_i =
    x_i - g/2? Forward substitution is the recursion s_{i+1} = dy_i / ((1 - theta) gap_i)
    - s_i theta / (1 - theta) for the slope s_i of c on [b_i, b_{i+1}]: a kink placed late in a
    wide gap amplifies the previous slope (b_i = x_i - g/2 overflows float64 at n = 300 random
    points), the midpoint (theta = 1/2) lets it grow linearly, and theta = 1/4 damps it by 1/3.
    """
    if not 0 < theta < 0.5:
        raise ConfigError(f"theta: need 0 < theta < 1/2 so that the recursion is damped, got {theta}")
    if x.ndim != 1 or x.numel() == 0:
        raise ConfigError(f"x: need a non-empty 1-D tensor, got shape {tuple(x.shape)}")
    gaps = x.diff()
    if (gaps <= 0).any():
        raise ConfigError("x: must be sorted and distinct (strictly increasing)")
    g = gaps.min() if x.numel() > 1 else torch.ones((), dtype=x.dtype, device=x.device)
    b = torch.cat([(x[0] - (1 - theta) * g).reshape(1), x[:-1] + theta * gaps])
    # gaps near the float spacing can round a b onto its neighbour: then A loses rank
    below, above = b < x, b[1:] > x[:-1]
    if not (below.all() and above.all()):
        i = int(torch.cat([~below, ~above]).nonzero()[0]) % x.numel()
        raise ConfigError(f"x: points {i} and {i + 1} are too close for {x.dtype} to place a "
                          f"kink strictly between them (gap {float(gaps.min()):.3g}); "
                          "use float64 or points further apart")
    return b


def lemma1_matrix(x: Tensor, b: Tensor) -> Tensor:
    """Lemma 1's A_ij = max(x_i - b_j, 0): lower triangular when x and b interleave."""
    return (x[:, None] - b[None, :]).clamp_(min=0)  # in place: one n x n matrix, not two


def _solve_weights(x_sorted: Tensor, y_sorted: Tensor) -> tuple[Tensor, Tensor]:
    """b by interleaving and w by forward substitution on Lemma 1's matrix (float64)."""
    b = interleave(x_sorted)
    A = lemma1_matrix(x_sorted, b)
    w = torch.linalg.solve_triangular(A, y_sorted[:, None], upper=False).flatten()
    return b, w


class Theorem1Network(nn.Module):
    """c(x) = sum_j w_j max(<a, x> - b_j, 0): depth 2, width n, exactly 2n + d weights."""

    def __init__(self, a: Tensor, b: Tensor, w: Tensor) -> None:
        super().__init__()
        self.a = nn.Parameter(a, requires_grad=False)
        self.b = nn.Parameter(b, requires_grad=False)
        self.w = nn.Parameter(w, requires_grad=False)
        self.depth = 2
        self.width = b.numel()

    @property
    def num_weights(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def project(self, X: Tensor) -> Tensor:
        """The coordinate the ReLUs see: <a, x>."""
        return X.reshape(X.shape[0], -1).to(self.a.dtype) @ self.a

    def forward(self, X: Tensor) -> Tensor:
        return (self.project(X)[:, None] - self.b).relu_() @ self.w  # one n x n matrix


def theorem1_network(X: Tensor, y: Tensor, seed: int = 0, max_tries: int = 10) -> Theorem1Network:
    """Theorem 1's network fitting targets y on the distinct rows of X (any shape (n, ...)).

    ``seed`` picks the projection direction (see :func:`choose_direction`). Raises ConfigError
    (a ValueError) for coinciding rows (named), NaN/inf inputs, or a target count mismatch.
    """
    X = _as_points(X)
    y = _as_targets(y, X.shape[0], X.device)
    check_distinct(X)
    a = choose_direction(X, seed, max_tries)
    net = Theorem1Network(a, torch.empty(0, dtype=torch.float64), torch.empty(0))
    x = net.project(X)
    order = torch.argsort(x)
    b, w = _solve_weights(x[order], y[order])
    return Theorem1Network(a, b, w)


@dataclass(frozen=True)
class LayerCounts:
    """What a stack of ``nn.Linear`` layers holds, read from the layers themselves.

    depth: number of Linear layers; width: the most units in a hidden layer; units: all hidden
    units; weights: nonzero entries of all weight matrices and bias vectors (an edge with weight
    exactly 0 is no edge)."""

    depth: int
    width: int
    units: int
    weights: int


def layer_counts(net: nn.Module) -> LayerCounts:
    """Count depth, width, units and nonzero weights of the ``nn.Linear`` layers of ``net``."""
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"{type(net).__name__}: has no nn.Linear layers to count")
    hidden = [m.out_features for m in linears[:-1]]
    weights = sum(int(torch.count_nonzero(m.weight)) +
                  (0 if m.bias is None else int(torch.count_nonzero(m.bias))) for m in linears)
    return LayerCounts(depth=len(linears), width=max(hidden, default=0), units=sum(hidden),
                       weights=weights)


def _linear(weight: Tensor, bias: Tensor) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64, device=weight.device)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(bias)
    layer.requires_grad_(False)
    return layer


class DepthKNetwork(nn.Module):
    """Corollary 1 as explicit layers: ``layers`` is an ``nn.Sequential`` of Linear + ReLU.

    Layer 1 is a single unit, p = max(<a, x> - shift, 0) (d + 1 weights: the projection is
    computed once, not once per unit). Hidden layers 2 .. k - 1 each hold one block of the n
    ReLUs max(p - b_j, 0), carry p forward (unit weight) and carry the partial sums s+ and s-
    of the earlier blocks' positive and negative terms (all non-negative, so a ReLU passes them
    unchanged). The output layer is s+ - s- + the last block's terms. The forward pass is the
    Sequential alone; ``a, shift, b, w`` are kept only for the float64 error bound
    (:func:`interpolation_tolerance`). Depth, width and weight counts are read from the layers
    by :func:`layer_counts`, never from this bookkeeping.
    """

    def __init__(self, a: Tensor, shift: Tensor, b: Tensor, w: Tensor, blocks: int) -> None:
        super().__init__()
        if blocks < 1:
            raise ConfigError(f"blocks: need at least one hidden block layer, got {blocks}")
        self.a, self.shift, self.b, self.w = a, shift, b, w
        sizes = [len(s) for s in torch.arange(b.numel()).tensor_split(blocks)]
        f64 = dict(dtype=torch.float64, device=a.device)
        layers: list[nn.Module] = [_linear(a[None, :], -shift.reshape(1)), nn.ReLU()]
        # input layout of block layer l: [previous block's h, p, s+, s-] (the parts that exist)
        start = 0
        prev: tuple[int, int] | None = None  # (start, size) of the previous block in b / w
        for l, size in enumerate(sizes):
            carry_p, has_sums = l < blocks - 1, l >= 1
            n_in = 1 if l == 0 else prev[1] + 1 + (2 if l >= 2 else 0)
            n_out = size + carry_p + 2 * has_sums
            W = torch.zeros(n_out, n_in, **f64)
            B = torch.zeros(n_out, **f64)
            p_in = 0 if l == 0 else prev[1]
            W[:size, p_in] = 1.0  # h_j = max(p - b_j, 0)
            B[:size] = -b[start:start + size]
            row = size
            if carry_p:
                W[row, p_in] = 1.0
                row += 1
            if has_sums:
                wp = w[prev[0]:prev[0] + prev[1]]
                W[row, :prev[1]] = torch.relu(wp)
                W[row + 1, :prev[1]] = torch.relu(-wp)
                if l >= 2:
                    W[row, p_in + 1] = 1.0
                    W[row + 1, p_in + 2] = 1.0
            layers += [_linear(W, B), nn.ReLU()]
            prev = (start, size)
            start += size
        last = w[prev[0]:prev[0] + prev[1]]
        # output layer input: [last block's h, s+, s-] (the last block layer carries no p)
        W_out = torch.cat([last] + ([torch.tensor([1.0, -1.0], **f64)] if blocks > 1 else []))
        layers.append(_linear(W_out[None, :], torch.zeros(1, **f64)))
        self.layers = nn.Sequential(*layers)

    def project(self, X: Tensor) -> Tensor:
        """The coordinate the ReLUs see, p = max(<a, x> - shift, 0), as the first layer computes it."""
        return self.layers[1](self.layers[0](X.reshape(X.shape[0], -1).to(torch.float64))).flatten()

    def forward(self, X: Tensor) -> Tensor:
        return self.layers(X.reshape(X.shape[0], -1).to(torch.float64)).flatten()


def depth_k_network(X: Tensor, y: Tensor, k: int, seed: int = 0, max_tries: int = 10) -> DepthKNetwork:
    """Corollary 1's network of depth k (3 <= k <= n + 2) fitting y on the distinct rows of X.

    k counts Linear layers: one projection layer, k - 2 hidden block layers, one output layer.
    k = 2 is Theorem 1 itself (:func:`theorem1_network`), whose 2n + d count relies on the n
    units sharing one projection; as explicit layers its first matrix has n * d nonzero entries.
    """
    X = _as_points(X)
    y = _as_targets(y, X.shape[0], X.device)
    n = X.shape[0]
    if not 3 <= k <= n + 2:
        raise ConfigError(f"k: depth must be in [3, n + 2] = [3, {n + 2}], got {k}; k = 2 is "
                          "Theorem 1 (use theorem1_network)")
    check_distinct(X)
    a = choose_direction(X, seed, max_tries)
    z = X @ a
    zs = torch.sort(z).values
    gap = zs.diff().min() if n > 1 else torch.tensor(1.0, dtype=torch.float64, device=X.device)
    shift = zs[0] - gap  # p_1 = gap, hence b_1 = gap / 4 > 0 and all b_j > 0
    empty = torch.zeros(n, dtype=torch.float64, device=X.device)
    p = DepthKNetwork(a, shift, empty, empty, k - 2).project(X)
    order = torch.argsort(p)
    b, w = _solve_weights(p[order], y[order])
    return DepthKNetwork(a, shift, b, w, k - 2)


def interpolation_residuals(net: nn.Module, X: Tensor, y: Tensor) -> Tensor:
    """|net(x_i) - y_i| per point, in float64."""
    with torch.no_grad():
        return (net(_as_points(X)) - y.reshape(-1).to(torch.float64)).abs()


def interpolation_tolerance(net: Theorem1Network | DepthKNetwork, X: Tensor,
                            rows_per_chunk: int = 2048) -> Tensor:
    """Per-point float64 error bound for the construction's output at the rows of X.

    gamma_n (|A||w|)_i  [forward substitution]  + gamma_{n+2} (|A||w|)_i  [evaluation]
    + |slope_i| * gamma_d (|a|^T|z_i|)  [re-rounded projection]; see the module docstring.
    For the deep network the projection term also covers the shift: + u (|<a,z>| + |shift|).
    The rows of A are built ``rows_per_chunk`` at a time, so the bound needs
    O(rows_per_chunk * n) memory instead of two n x n float64 matrices (6.4 GB at the paper's
    n = 20,000 on top of the construction's own).
    """
    X = _as_points(X).to(net.a.device)
    with torch.no_grad():
        x = net.project(X)
        n = net.b.numel()
        w_abs, size, slope = net.w.abs(), [], []
        for rows in x.split(rows_per_chunk):
            size.append(lemma1_matrix(rows, net.b) @ w_abs)
            slope.append(((rows[:, None] > net.b).to(torch.float64) @ net.w).abs())
        size, slope = torch.cat(size), torch.cat(slope)
        proj = projection_error(X, net.a)
        if isinstance(net, DepthKNetwork):
            proj = proj + UNIT_ROUNDOFF * ((X @ net.a).abs() + net.shift.abs())
        return (gamma(n) + gamma(n + 2)) * size + slope * proj


def smallest_eigenvalue_bound(x: Tensor, b: Tensor) -> float:
    """Lemma 1: the smallest eigenvalue of A is min_i (x_i - b_i)."""
    return float((x - b).min())


__all__ = [
    "DepthKNetwork",
    "LayerCounts",
    "Theorem1Network",
    "check_distinct",
    "choose_direction",
    "depth_k_network",
    "gamma",
    "interleave",
    "interpolation_residuals",
    "interpolation_tolerance",
    "layer_counts",
    "lemma1_matrix",
    "smallest_eigenvalue_bound",
    "theorem1_network",
]
