import functools
from unittest.mock import patch

import pytest
import torch
from torch.testing import assert_close

from nmt.data.batching import collate
from nmt.modules.bigru import stepped_bidirectional_gru
from nmt.modules.encoder import RNNEncoder


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_outputs_do_not_change_when_padded_inside_a_batch(cell):
    encoder = RNNEncoder(vocab_size=24, embedding_size=8, hidden_size=6, num_layers=2, cell=cell).double().eval()
    sentence = [5, 9, 7]
    alone = collate([sentence], None, [0])
    batch = collate([[4] * 9, sentence, [6, 8]], None, [0, 1, 2])
    out_alone = encoder(alone.src, alone.src_lengths)
    out_batch = encoder(batch.src, batch.src_lengths)
    length = int(alone.src_lengths[0])
    assert_close(out_batch.states[1, :length], out_alone.states[0])
    assert torch.equal(out_batch.states[1, length:], torch.zeros_like(out_batch.states[1, length:]))
    assert_close(out_batch.final_backward[1], out_alone.final_backward[0])
    assert out_batch.mask[1].tolist() == [True] * length + [False] * (batch.src.size(1) - length)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_final_backward_is_the_backward_state_at_the_first_word(cell):
    encoder = RNNEncoder(vocab_size=24, embedding_size=8, hidden_size=6, cell=cell).double().eval()
    batch = collate([[5, 9, 7, 4]], None, [0])
    out = encoder(batch.src, batch.src_lengths)
    assert_close(out.final_backward[0], out.states[0, 0, 6:])


def _padded_batch(lengths: list[int], vocab_size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    rows = [torch.randint(4, vocab_size, (length,), generator=generator).tolist() for length in lengths]
    batch = collate(rows, None, list(range(len(rows))))
    return batch.src, batch.src_lengths


def _outputs_and_gradients(encoder: RNNEncoder, src: torch.Tensor, lengths: torch.Tensor):
    out = encoder(src, lengths)
    weights = torch.linspace(-1, 1, out.states.numel(), dtype=out.states.dtype).view_as(out.states)
    loss = (out.states * weights).sum() + out.final_forward.sum() + 2 * out.final_backward.sum()
    gradients = torch.autograd.grad(loss, list(encoder.parameters()))
    return out, dict(zip([name for name, _ in encoder.named_parameters()], gradients))


@pytest.mark.parametrize("num_layers", [1, 2])
def test_the_stepped_recurrence_computes_what_nn_gru_over_packed_sequences_computes(num_layers):
    """The oracle: `nn.GRU` over packed sequences, the same parameters, float64; states, final
    states and every parameter's gradient (the recurrence steps on past each sentence's end
    and before its start, where packing does not)."""
    torch.manual_seed(0)
    encoder = RNNEncoder(vocab_size=24, embedding_size=8, hidden_size=6, num_layers=num_layers).double().eval()
    src, lengths = _padded_batch([7, 3, 5, 1, 7])
    packed_out, packed_grads = _outputs_and_gradients(encoder, src, lengths)
    with patch(
        "nmt.modules.encoder.stepped_bidirectional_gru",
        functools.partial(stepped_bidirectional_gru, compile_step=False),
    ):
        encoder.compile_recurrence()
        stepped_out, stepped_grads = _outputs_and_gradients(encoder, src, lengths)
    assert_close(stepped_out.states, packed_out.states, rtol=1e-12, atol=1e-12)
    assert_close(stepped_out.final_forward, packed_out.final_forward, rtol=1e-12, atol=1e-12)
    assert_close(stepped_out.final_backward, packed_out.final_backward, rtol=1e-12, atol=1e-12)
    assert stepped_grads.keys() == packed_grads.keys()
    for name, gradient in packed_grads.items():
        assert_close(stepped_grads[name], gradient, rtol=1e-10, atol=1e-12, msg=name)


def test_the_compiled_recurrence_steps_as_nn_gru():
    torch.manual_seed(1)
    encoder = RNNEncoder(vocab_size=24, embedding_size=8, hidden_size=6).eval()
    src, lengths = _padded_batch([6, 2, 4])
    packed_out, packed_grads = _outputs_and_gradients(encoder, src, lengths)
    encoder.compile_recurrence()
    compiled_out, compiled_grads = _outputs_and_gradients(encoder, src, lengths)
    assert_close(compiled_out.states, packed_out.states, rtol=1e-5, atol=1e-6)
    assert_close(compiled_out.final_backward, packed_out.final_backward, rtol=1e-5, atol=1e-6)
    for name, gradient in packed_grads.items():
        assert_close(compiled_grads[name], gradient, rtol=1e-4, atol=1e-5, msg=name)


def test_under_bf16_autocast_the_stepped_recurrence_keeps_its_state_in_fp32():
    """The matmuls run in bf16, the carried state does not (as in the decoder): the states are
    fp32 and within bf16 rounding of nn.GRU's fp32 ones."""
    torch.manual_seed(2)
    encoder = RNNEncoder(vocab_size=24, embedding_size=16, hidden_size=12).eval()
    src, lengths = _padded_batch([9, 4, 6])
    reference = encoder(src, lengths)
    with patch(
        "nmt.modules.encoder.stepped_bidirectional_gru",
        functools.partial(stepped_bidirectional_gru, compile_step=False),
    ):
        encoder.compile_recurrence()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            stepped = encoder(src, lengths)
    assert stepped.states.dtype == stepped.final_backward.dtype == torch.float32
    assert_close(stepped.states, reference.states, rtol=0, atol=3e-2)
    assert not torch.equal(stepped.states, reference.states)  # the products did run in bf16
