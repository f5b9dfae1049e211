"""Floating-point operations of a model on real batches, counted by torch's `FlopCounterMode`.

The counter turns every matrix product (mm, addmm, bmm, `nmt.modules.onednn`'s) into
2 x rows x inner x columns from its shapes; elementwise work (tanh, sigmoid, softmax, the loss)
is not counted, as usual for FLOP figures. Padded positions of the recurrences count: the
decoder steps every row of a batch to the longest target (and the encoder's compiled
recurrence, `RNNEncoder.compile_recurrence`, every row to the longest source), and that work is
done, so FLOPs per target token include the padding's share. The output layers run at real
target positions only (`Batch.target_positions`).

Counting runs on a CPU copy of the model in fp32, whatever device and precision it trains on:
FLOPs are a property of the model and the batch shapes. On the CPU `nn.GRU` (packed sequences
included) runs as addmm calls the counter sees; on CUDA it is one fused cuDNN call
(`aten._cudnn_rnn`) the counter has no formula for and would count as zero. The count is
checked against one written by hand in `tests/benchmark/test_benchmark.py`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from nmt.data.batching import Batch
from nmt.modules.seq2seq import Seq2Seq
from nmt.training.loss import token_loss_sum

aten = torch.ops.aten


@dataclass(frozen=True)
class Product:
    """The forward matrix products with one weight shape, (rows, inner) @ (inner, columns).

    Attributes:
        rows: mean rows per call (e.g. B x T for the output layer, B for a decoder step).
        inner, columns: the second factor's shape.
        calls: how many products of this shape ran.
        flops: their FLOPs together.
    """

    rows: int
    inner: int
    columns: int
    calls: int
    flops: int


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of some training batches.

    Attributes:
        training: forward and backward of the training loss (what one update computes, less
            the optimizer's elementwise work).
        forward: the teacher-forced forward alone, without gradients.
        target_tokens: real target tokens of the batches (EOS included): the loss's normalizer.
        batches: how many batches were counted.
        products: the forward's 2-D matrix products by weight shape, most FLOPs first (the
            shapes a matmul ceiling should be measured at).
    """

    training: int
    forward: int
    target_tokens: int
    batches: int
    products: list[Product]

    @property
    def training_per_token(self) -> float:
        return self.training / self.target_tokens

    @property
    def forward_per_token(self) -> float:
        return self.forward / self.target_tokens


def count_flops(model: Seq2Seq, batches: list[Batch]) -> FlopCount:
    """Counts the FLOPs of training on `batches` and of their teacher-forced forward.

    `model` is left untouched (a CPU copy runs; see the module docstring).
    """
    counted = copy.deepcopy(model).to("cpu", torch.float32)
    batches = [batch.to(torch.device("cpu")) for batch in batches]
    counted.train()  # dropout changes no shapes; train mode is what an update runs
    with FlopCounterMode(display=False) as counter:
        for batch in batches:
            token_loss_sum(counted, batch).backward()
    training = counter.get_total_flops()
    shapes: dict[tuple[int, int], list[int]] = {}
    counted.eval()
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_recording(shapes)) as counter:
        for batch in batches:
            counted(batch.src, batch.src_lengths, batch.tgt_in, batch.target_positions)
    products = [
        Product(round(rows / calls), inner, columns, calls, flops)
        for (inner, columns), (rows, calls, flops) in shapes.items()
    ]
    return FlopCount(
        training=training,
        forward=counter.get_total_flops(),
        target_tokens=sum(batch.num_target_tokens for batch in batches),
        batches=len(batches),
        products=sorted(products, key=lambda p: -p.flops),
    )


def _recording(shapes_seen: dict[tuple[int, int], list[int]]) -> dict[object, Callable[..., int]]:
    """Formulas for mm and addmm that return torch's own count and also add each call's rows,
    one call and its FLOPs to `shapes_seen[(inner, columns)]`."""

    def recorded(packet: object, first: int) -> Callable[..., int]:
        formula = flop_registry[packet]  # torch's own count: it takes the shapes as well as the tensors

        def count(*shapes: tuple[int, ...], out_shape: tuple[int, ...] | None = None, **kwargs: object) -> int:
            flops = formula(*shapes, **kwargs)
            (rows, inner), (_, columns) = shapes[first], shapes[first + 1]
            entry = shapes_seen.setdefault((inner, columns), [0, 0, 0])
            entry[0], entry[1], entry[2] = entry[0] + rows, entry[1] + 1, entry[2] + flops
            return flops

        return count

    return {aten.mm: recorded(aten.mm, 0), aten.addmm: recorded(aten.addmm, 1)}  # addmm(bias, a, b)
