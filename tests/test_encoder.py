import torch
from torch.testing import assert_close

from nmt.data.batching import collate
from nmt.modules.encoder import RNNEncoder


def test_outputs_do_not_change_when_padded_inside_a_batch():
    encoder = RNNEncoder(vocab_size=24, embedding_size=8, hidden_size=6, num_layers=2).double().eval()
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


def test_final_backward_is_the_backward_state_at_the_first_word():
    encoder = RNNEncoder(vocab_size=24, embedding_size=8, hidden_size=6).double().eval()
    batch = collate([[5, 9, 7, 4]], None, [0])
    out = encoder(batch.src, batch.src_lengths)
    assert_close(out.final_backward[0], out.states[0, 0, 6:])
