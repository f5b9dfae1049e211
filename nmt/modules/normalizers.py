"""Attention normalizers: energies -> weights on the simplex, softmax or sparse.

softmax gives every position some weight. sparsemax (Martins & Astudillo 2016) is the Euclidean
projection of the energies onto the simplex, p = max(z - tau, 0): positions below a threshold get
exactly zero. 1.5-entmax (Peters, Niculae & Martins 2019) lies between the two, p = max(z/2 -
tau, 0)^2: sparse, yet smoother than sparsemax. Both thresholds come from sorting a row (exact,
not iterative), and both Jacobians have closed forms, written in each `backward`.

A masked position enters as -inf and leaves with weight exactly 0, as with softmax.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.autograd.function import FunctionCtx


def _sorted_support(z: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """z sorted descending along `dim`, and the ranks 1..n shaped to broadcast along it."""
    ranks = torch.arange(1, z.size(dim) + 1, device=z.device, dtype=z.dtype)
    shape = [1] * z.dim()
    shape[dim] = -1
    return z.sort(dim=dim, descending=True).values, ranks.view(shape)


def _sparsemax(z: torch.Tensor, dim: int) -> torch.Tensor:
    z = z - z.amax(dim=dim, keepdim=True)  # shift-invariant; keeps the cumulative sums small
    ordered, ranks = _sorted_support(z, dim)
    cumulative = ordered.cumsum(dim) - 1
    in_support = ranks * ordered > cumulative  # 1 + k z(k) > sum of the k largest
    size = in_support.sum(dim=dim, keepdim=True)
    tau = cumulative.gather(dim, size - 1) / size.to(z.dtype)
    return torch.clamp(z - tau, min=0)


def _entmax15(z: torch.Tensor, dim: int) -> torch.Tensor:
    z = (z - z.amax(dim=dim, keepdim=True)) / 2
    ordered, ranks = _sorted_support(z, dim)
    mean = ordered.cumsum(dim) / ranks
    mean_square = (ordered * ordered).cumsum(dim) / ranks
    delta = (1 - ranks * (mean_square - mean * mean)) / ranks
    tau = mean - torch.sqrt(torch.clamp(delta, min=0))
    size = (tau <= ordered).sum(dim=dim, keepdim=True)
    return torch.clamp(z - tau.gather(dim, size - 1), min=0) ** 2


def _saved(ctx: FunctionCtx, p: torch.Tensor, dim: int) -> torch.Tensor:
    """Keeps the output (both backwards need only it) and the dimension; returns the output."""
    ctx.save_for_backward(p)
    ctx.dim = dim
    return p


class _Sparsemax(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, z: torch.Tensor, dim: int) -> torch.Tensor:
        return _saved(ctx, _sparsemax(z, dim), dim)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (p,) = ctx.saved_tensors
        support = p > 0  # J = diag(s) - s s^T / |S|
        grad = grad.masked_fill(~support, 0)
        mean = grad.sum(ctx.dim, keepdim=True) / support.sum(ctx.dim, keepdim=True)
        return (grad - mean).masked_fill(~support, 0), None


class _Entmax15(torch.autograd.Function):
    @staticmethod
    def forward(ctx: FunctionCtx, z: torch.Tensor, dim: int) -> torch.Tensor:
        return _saved(ctx, _entmax15(z, dim), dim)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (p,) = ctx.saved_tensors
        root = p.sqrt()  # J = diag(sqrt p) - sqrt p sqrt p^T / sum(sqrt p)
        weighted = grad * root
        return weighted - root * weighted.sum(ctx.dim, keepdim=True) / root.sum(ctx.dim, keepdim=True), None


def sparsemax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """argmin over the simplex of ||p - z||^2, computed in at least fp32."""
    return _apply(_Sparsemax, _sparsemax, _at_least_fp32(z), dim)


def entmax15(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """1.5-entmax of z: max(z/2 - tau, 0)^2, tau such that it sums to one; computed in at least fp32."""
    return _apply(_Entmax15, _entmax15, _at_least_fp32(z), dim)


def _apply(
    function: type[torch.autograd.Function],
    forward: Callable[[torch.Tensor, int], torch.Tensor],
    z: torch.Tensor,
    dim: int,
) -> torch.Tensor:
    """The autograd Function where a gradient is wanted; its plain forward elsewhere (decoding,
    and TorchScript tracing, which cannot record a Python Function)."""
    if torch.is_grad_enabled() and z.requires_grad:
        return function.apply(z, dim)
    return forward(z, dim)


def softmax(z: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp(z) / sum exp(z)."""
    return torch.softmax(z, dim=dim)


def _at_least_fp32(z: torch.Tensor) -> torch.Tensor:
    return z.float() if z.dtype in (torch.float16, torch.bfloat16) else z


NORMALIZERS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "softmax": softmax,
    "sparsemax": sparsemax,
    "entmax15": entmax15,
}
"""The `normalizer` names a decoder accepts (`model/attention/normalizer=...`)."""
