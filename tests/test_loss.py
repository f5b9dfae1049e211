import pytest
import torch
import torch.nn.functional as F

from nmt.loss import SmoothedCrossEntropy
from nmt.tokenizer import PAD_ID


@pytest.mark.parametrize("compiled", [False, True], ids=["blockwise", "compiled"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_cross_entropy_equals_the_float64_reference(smoothing, dtype, compiled):
    torch.manual_seed(0)
    rows, vocab = 150, 37  # 150 rows: blocks of 64, 64 and a short one
    logits = (3 * torch.randn(rows, vocab)).to(dtype).requires_grad_()
    target = torch.randint(1, vocab, (rows,))
    target[::7] = PAD_ID  # padding rows count nothing and get no gradient
    reference_logits = logits.detach().double().requires_grad_()
    reference = F.cross_entropy(reference_logits, target, ignore_index=PAD_ID, reduction="sum",
                                label_smoothing=smoothing)
    (2.5 * reference).backward()

    loss = SmoothedCrossEntropy.apply(logits, target, smoothing, compiled)
    (2.5 * loss).backward()

    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    assert logits.grad.dtype == dtype
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2  # bf16 rounds the gradient to 8 bits
    torch.testing.assert_close(logits.grad.double(), reference_logits.grad, rtol=tolerance, atol=tolerance)
    assert torch.all(logits.grad[target == PAD_ID] == 0)
