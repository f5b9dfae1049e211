import itertools
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nmt.data.alignments import alignment_targets
from nmt.data.batching import collate
from nmt.data.tokenizer import PAD_ID
from nmt.training.loss import ATTENTION_FLOOR, SmoothedCrossEntropy, guided_alignment_loss, token_loss_sum
from tests.conftest import random_sentences
from tests.modules.test_decoders import build


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
    reference = F.cross_entropy(
        reference_logits, target, ignore_index=PAD_ID, reduction="sum", label_smoothing=smoothing
    )
    (2.5 * reference).backward()

    loss = SmoothedCrossEntropy.apply(logits, target, smoothing, compiled)
    (2.5 * loss).backward()

    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    assert logits.grad.dtype == dtype
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2  # bf16 rounds the gradient to 8 bits
    torch.testing.assert_close(logits.grad.double(), reference_logits.grad, rtol=tolerance, atol=tolerance)
    assert torch.all(logits.grad[target == PAD_ID] == 0)


def test_the_loss_over_real_positions_is_the_loss_over_all_positions_with_padding_ignored():
    """`token_loss_sum` computes logits at the batch's real target positions only; the oracle is
    the whole (B, T, V) teacher-forced forward with padding ignored by `F.cross_entropy`, float64
    (the loss itself is computed in fp32): the same loss and the same gradient of every parameter."""
    torch.manual_seed(0)
    model = build("bahdanau").eval()
    batch = collate(random_sentences(6), random_sentences(6), list(range(6)))
    assert batch.num_target_tokens < batch.tgt_out.numel()  # the batch has padding to leave out
    loss = token_loss_sum(model, batch, label_smoothing=0.1)
    gradients = torch.autograd.grad(loss, list(model.parameters()))
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V), every position
    reference = F.cross_entropy(
        logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID, reduction="sum", label_smoothing=0.1
    )
    real_positions, _ = model(batch.src, batch.src_lengths, batch.tgt_in, batch.target_positions)
    torch.testing.assert_close(real_positions, logits.flatten(0, 1)[batch.tgt_out.flatten() != PAD_ID])
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    for gradient, expected in zip(gradients, torch.autograd.grad(reference, list(model.parameters()))):
        torch.testing.assert_close(gradient, expected, rtol=1e-5, atol=1e-6)


def test_real_positions_in_training_draw_the_same_dropout_as_all_positions():
    """With every dropout on, the real-positions loss is the whole forward's with padding ignored,
    as above, from the same seed: the output dropout's mask is drawn for all (B, T) positions and
    taken at the real ones, so the masks, the loss, the gradients and the generator's state after
    are those of the whole forward (a training run does not depend on the saving)."""
    model = build(
        "bahdanau",
        embedding_dropout=0.3,
        hidden_dropout=0.3,
        output_dropout=0.3,
        encoder_embedding_dropout=0.3,
        encoder_hidden_dropout=0.3,
    ).train()
    torch.manual_seed(0)
    batch = collate(random_sentences(6), random_sentences(6), list(range(6)))
    assert batch.num_target_tokens < batch.tgt_out.numel()
    seed = torch.get_rng_state()
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    reference = F.cross_entropy(
        logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID, reduction="sum", label_smoothing=0.1
    )
    expected_gradients = torch.autograd.grad(reference, list(model.parameters()))
    generator_after = torch.get_rng_state()
    torch.set_rng_state(seed)
    loss = token_loss_sum(model, batch, label_smoothing=0.1)
    assert torch.equal(torch.get_rng_state(), generator_after)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    for gradient, expected in zip(torch.autograd.grad(loss, list(model.parameters())), expected_gradients):
        torch.testing.assert_close(gradient, expected, rtol=1e-5, atol=1e-6)


def test_the_guided_alignment_loss_equals_a_float64_loop():
    torch.manual_seed(0)
    attention = torch.softmax(torch.randn(2, 3, 4), -1)
    attention[1, :, 3] = 0.0  # a masked source position, as sparse normalizers also give
    alignment = alignment_targets([np.array([0, 1, 2, 0, 2, 3]), np.array([1, 1])], [3, 2], [2, 1], (2, 3, 4))
    expected = 0.0
    for b, t, s in itertools.product(range(2), range(3), range(4)):
        a = float(alignment[b, t, s])
        if a:  # positions without a link add nothing
            expected -= a * math.log(float(attention[b, t, s]) + ATTENTION_FLOOR)
    assert guided_alignment_loss(attention, alignment).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("style", ["bahdanau", "luong_input_feeding"])
def test_a_large_guided_alignment_weight_drives_the_attention_to_any_given_alignment(style):
    """An arbitrary alignment (each target position linked to a random source position, nothing
    like what the task would teach): after 200 updates with weight 10 the attention puts most of
    its mass there; without guidance (the same updates, weight 0) it does not."""
    torch.manual_seed(0)
    sources, targets = random_sentences(8, 4, 8), random_sentences(8, 4, 8)
    links = [
        np.array([[t, random.randrange(len(src))] for t in range(len(tgt))]).ravel()
        for src, tgt in zip(sources, targets)
    ]
    batch = collate(sources, targets, list(range(8)), links)
    real = batch.alignment.sum(-1) > 0  # (B, T) target positions with a link

    def mass_on_links(weight: float) -> float:
        torch.manual_seed(1)
        model = build(style, dtype=torch.float32)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(200):
            optimizer.zero_grad()
            (token_loss_sum(model, batch, guided_alignment_weight=weight) / batch.num_target_tokens).backward()
            optimizer.step()
        with torch.no_grad():
            _, attention = model.eval()(batch.src, batch.src_lengths, batch.tgt_in)
        return float((attention * batch.alignment).sum(-1)[real].mean())

    guided, unguided = mass_on_links(10.0), mass_on_links(0.0)
    assert guided > 0.9 and unguided < 0.5, (guided, unguided)
