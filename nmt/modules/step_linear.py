"""Weights a recurrence applies at every step, with their gradients computed in one product over
all the steps of a forward rather than one product per step.

Why: a teacher-forced forward applies the decoder step's linear layers (the GRU's state and
context projections, the attention query's) T times with the same weights, and the encoder's
recurrence its state weights S times. Autograd gives every step its own weight gradient, a
(out, B) x (B, in) product with an inner size of one batch, and adds them into one buffer, a
pass over the weight each. On a CPU the products of inner size 64 run well below the speed of
large ones, and the passes add up to a visible share of an update. Here each weight's gradient
is one (out, T B) x (T B, in) product, as cuDNN computes its GRU's (its measured effect: the
docs' speed page).

How (`DeferredWeightGradient`): the steps read the weight detached, so their backward computes
no weight gradient, and add as their bias one of T stand-in tensors (B, out) whose values are the
bias (or zero). The gradient of a stand-in is the gradient of that step's output; the stand-ins'
backward, which autograd runs after the backward of every step that used one, turns those and the
steps' inputs, kept in the forward, into the weight and bias gradients. The values computed are
unchanged; the gradients are the same sums, added in another order.

`StepLinear` and `StepWeightGradients` apply this to the `nn.Linear` layers of the decoder step,
which runs inside `torch.compile` and cannot say what it passed to each layer; the encoder's
recurrence, which passes its weights explicitly, uses `DeferredWeightGradient` directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import nn

from nmt.modules import onednn


class DeferredWeightGradient:
    """A weight (and bias) a recurrence applies at each of `steps` steps, its gradient computed
    once: step t computes its output from `weight` (detached) and `next_bias()`, and hands its
    input to `keep_input` (see the module docstring).

    Args:
        weight: (..., out, in): the weight as the steps would read it (a parameter, or its cast
            for autocast: its gradient goes where the weight's would).
        bias: broadcastable to `output_shape`, or None.
        output_shape: (..., B, out), a step's output: its rows are the batch, its leading sizes
            those of a batched weight.
        steps: the steps the recurrence will run.
        compiled: the steps run through `torch.compile`: the stand-ins' sizes other than the
            rows, and the detached weight's, are marked static, or sizes that happen to equal
            others (3H and a storage offset) would make the compiled step recompile.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        output_shape: tuple[int, ...],
        steps: int,
        compiled: bool = False,
    ) -> None:
        self.weight = weight.detach()
        self.inputs: list[torch.Tensor] = []
        stand_ins = _StandIns.apply(weight, bias, output_shape, steps, self.inputs)
        if compiled:
            import torch._dynamo  # imported by compiling; not before, in a process that never compiles

            torch._dynamo.mark_static(self.weight)
            torch._dynamo.mark_static(stand_ins[0]._base)  # the values (bias or zeros) the stand-ins expand
            for stand_in in stand_ins:
                torch._dynamo.mark_static(stand_in, [dim for dim in range(stand_in.dim()) if dim != stand_in.dim() - 2])
        self._stand_ins = iter(stand_ins)

    def next_bias(self) -> torch.Tensor:
        """The next step's bias, shaped like its output."""
        return next(self._stand_ins)

    def keep_input(self, step_input: torch.Tensor) -> None:
        """A step's input to the weight, in step order, with its output's rows (and leading sizes)."""
        self.inputs.append(step_input.detach())  # detached: no reference from the graph back to itself


class _StandIns(torch.autograd.Function):
    """T stand-ins with the bias's values, whose backward is the weight's (and bias's) gradient
    from their gradients and the inputs of every step.

    T tensors rather than the rows of one: a view's base is part of what `torch.compile` guards
    on, and views of one (T, ...) tensor would make T a size every compiled step depends on.
    """

    @staticmethod
    def forward(
        ctx,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        output_shape: tuple[int, ...],
        steps: int,
        inputs: list[torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        # `inputs` fills as the steps run (detached tensors: nothing here may hold the graph)
        ctx.inputs, ctx.weight, ctx.bias_shape = inputs, weight.detach(), None if bias is None else bias.shape
        values = weight.new_zeros(output_shape[-1]) if bias is None else bias.detach()
        return tuple(values.expand(output_shape) for _ in range(steps))

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        weight = ctx.weight
        used = [(grad, step_input) for grad, step_input in zip(grads, ctx.inputs) if grad is not None]
        outputs = torch.cat([grad for grad, _ in used], -2)  # (..., T B, out)
        inputs = torch.cat(
            [step_input.reshape(*grad.shape[:-1], -1) for grad, step_input in used], -2
        )  # (..., T B, in)
        grad_weight = outputs.to(weight.dtype).transpose(-1, -2) @ inputs.to(weight.dtype)  # (..., out, in)
        grad_bias = outputs.sum(-2, keepdim=True).reshape(ctx.bias_shape) if ctx.needs_input_grad[1] else None
        return grad_weight, grad_bias, None, None, None


class StepLinear(nn.Linear):
    """`nn.Linear`, for a layer a recurrent step applies exactly once per step; inside a
    `StepWeightGradients` block its weight gradient is computed once over all steps, and its
    fp32 product on the CPU runs on oneDNN (`nmt.modules.onednn`)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias)
        self.deferred: DeferredWeightGradient | None = None
        self.step_bias: torch.Tensor | None = None  # (B, out): this step's stand-in
        self.step_input: torch.Tensor | None = None  # what the layer read in this step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deferred is None:
            return super().forward(x)
        self.step_input = x
        # the same shape at every step: worth oneDNN's kernel for it in fp32 (`nmt.modules.onednn`)
        return onednn.linear(x, self.deferred.weight, self.step_bias.view(*x.shape[:-1], -1))


class StepWeightGradients:
    """The block of a teacher-forced forward in which the `StepLinear` layers of `parts` compute
    their weight gradients once over all steps; a no-op without gradients.

    Usage: `with StepWeightGradients(parts, T, B) as deferral:` and, around each step,
    `with deferral.step():`. Enter it inside any block that swaps the weights (autocast's casts):
    it reads the weights as they are when it is entered.

    Args:
        parts: modules whose `StepLinear` layers the step applies, once per step each.
        steps: T, the steps the block will run.
        rows: B, the batch rows of every step.
        compiled: the step runs through `torch.compile` (see `DeferredWeightGradient`).
    """

    def __init__(self, parts: Iterable[nn.Module], steps: int, rows: int, compiled: bool = False) -> None:
        self.layers = [
            module
            for part in parts
            for module in part.modules()
            if isinstance(module, StepLinear) and torch.is_grad_enabled() and module.weight.requires_grad
        ]
        self.steps, self.rows, self.compiled = steps, rows, compiled

    def __enter__(self) -> StepWeightGradients:
        for layer in self.layers:
            layer.deferred = DeferredWeightGradient(
                layer.weight, layer.bias, (self.rows, layer.out_features), self.steps, self.compiled
            )
        return self

    def __exit__(self, *exc: object) -> None:
        for layer in self.layers:
            layer.deferred = layer.step_bias = layer.step_input = None

    @contextlib.contextmanager
    def step(self) -> Iterator[None]:
        """The block of one step: hands each layer its stand-in, then keeps what it read."""
        for layer in self.layers:
            layer.step_bias = layer.deferred.next_bias()
        yield
        for layer in self.layers:
            if layer.step_input is None:
                raise RuntimeError(f"{layer} was not applied in a step of a StepWeightGradients block")
            layer.deferred.keep_input(layer.step_input)
            layer.step_input = None
