"""`nmt.utils.compilation.compiled`: one compiled function keeps more graphs than torch's default."""

import torch
from torch._dynamo.eval_frame import _debug_get_cache_entry_list

from nmt.utils.compilation import compiled


def _scaled_sum(values: torch.Tensor, scale: float) -> torch.Tensor:
    return (values * scale).sum()


def test_a_compiled_function_keeps_a_graph_for_each_of_more_than_eight_variants():
    """Each dtype and grad mode is a variant dynamo compiles apart (as the decoder step's
    training, validation and decoding are); past torch's default limit of 8 it would stop
    compiling and run them eagerly."""
    function = compiled(_scaled_sum)
    variants = [
        (dtype, grad, rank)
        for dtype in (torch.float32, torch.float64, torch.bfloat16)
        for grad in (False, True)
        for rank in (1, 2)
    ]  # 12
    for dtype, grad, rank in variants:
        values = torch.ones((3,) * rank, dtype=dtype, requires_grad=grad)
        assert float(function(values, 2.0)) == 2.0 * 3**rank
    assert len(_debug_get_cache_entry_list(_scaled_sum.__code__)) == len(variants)
