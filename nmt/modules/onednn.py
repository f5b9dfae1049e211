"""fp32 matrix products of a recurrent step through oneDNN rather than MKL, on the CPU.

Why: torch's CPU `mm`/`addmm` in fp32 call MKL. With AVX-512, oneDNN's fp32 kernels (torch's
own, which its bf16 products use already) match or beat MKL's at a decoder step's shapes; with
AVX2 alone they are slower there (`scripts/capability_study.sh products`), so they are used only
where torch's CPU capability is AVX-512 (`fp32_pays`). But oneDNN builds a kernel for each new
shape, which costs more than the product itself at a shape it has not seen. The products over all
positions of a batch (B x T rows, new nearly every batch) therefore stay on MKL; a teacher-forced
step's products have B rows at every one of the T steps, forward and backward, and gain. Both
libraries compute in fp32; only the order of the additions differs.

How: `linear` is a custom op, so that `torch.compile`, which runs the decoder step, calls it as
it is (inductor's own lowering of oneDNN's linear expects frozen weights). Its backward
computes the input's gradient with oneDNN and the weight's with MKL (oneDNN would copy the
transposed gradient first); the step's weights take theirs once over all steps anyway
(`nmt.modules.step_linear`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import register_flop_formula


def fp32_pays(capability: str) -> bool:
    """Whether oneDNN's fp32 step products beat MKL's on a CPU of torch's `capability`."""
    return capability == "AVX512"


# asked once: `torch.compile` breaks its graph at these calls
_USE_FOR_FP32 = torch.backends.mkldnn.is_available() and fp32_pays(torch.backends.cpu.get_cpu_capability())


@torch.library.custom_op("nmt::onednn_linear", mutates_args=())
def _onednn_linear(input: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """input (M, K) @ weight (N, K)^T -> (M, N), by oneDNN."""
    return torch.ops.mkldnn._linear_pointwise(input, weight, None, "none", [], "")


@_onednn_linear.register_fake
def _(input: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return input.new_empty(input.shape[0], weight.shape[0])


def _keep_for_backward(ctx, inputs: tuple[torch.Tensor, torch.Tensor], output: torch.Tensor) -> None:
    ctx.save_for_backward(*inputs)


def _backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    input, weight = ctx.saved_tensors
    grad_input = _onednn_linear(grad, weight.t()) if ctx.needs_input_grad[0] else None  # (M, K)
    grad_weight = grad.t() @ input if ctx.needs_input_grad[1] else None  # (N, K)
    return grad_input, grad_weight


_onednn_linear.register_autograd(_backward, setup_context=_keep_for_backward)


@register_flop_formula(torch.ops.nmt.onednn_linear)
def _flops(input_shape: tuple[int, ...], weight_shape: tuple[int, ...], **kwargs: object) -> int:
    """2 x rows x inner x columns, as torch counts mm and addmm."""
    return 2 * input_shape[0] * input_shape[1] * weight_shape[0]


def uses_onednn(input: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether `linear(input, weight)` runs on oneDNN: fp32 on a CPU with oneDNN where it pays
    (`fp32_pays`), not switched off (`torch.backends.mkldnn.flags(enabled=False)`), no autocast
    (under autocast torch's bf16/fp16 products run on oneDNN already)."""
    return (
        _USE_FOR_FP32
        and torch.backends.mkldnn.enabled
        and input.device.type == "cpu"
        and input.dtype == weight.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    )


def linear(input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.linear(input, weight, bias)` for a product repeated at one shape (see the module
    docstring): input (..., in), weight (out, in), bias broadcastable to (..., out)."""
    if not uses_onednn(input, weight):
        return nn.functional.linear(input, weight, bias)
    output = _onednn_linear(input.reshape(-1, input.shape[-1]), weight).view(*input.shape[:-1], weight.shape[0])
    return output if bias is None else output + bias
