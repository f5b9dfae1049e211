import torch
import torch.nn.functional as F
from torch.testing import assert_close

from nmt.data.batching import collate
from nmt.tokenizer import PAD_ID
from tests.conftest import random_sentences, tiny_model


def test_teacher_forcing_equals_step_by_step_decoding():
    model = tiny_model().eval()
    batch = collate(random_sentences(3), random_sentences(3), [0, 1, 2])
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)
    memory, state = model.start(batch.src, batch.src_lengths)
    for t in range(batch.tgt_in.size(1)):
        log_probs, state, weights = model.decode_step(batch.tgt_in[:, t], state, memory)
        assert_close(log_probs, torch.log_softmax(logits[:, t], -1))
        assert_close(weights, attention[:, t])


def test_attention_keys_are_projected_once_per_batch():
    model = tiny_model()
    calls = []
    model.decoder.attention.scorer.key_proj.register_forward_hook(lambda *_: calls.append(1))
    batch = collate(random_sentences(2), random_sentences(2, min_length=6), [0, 1])
    model(batch.src, batch.src_lengths, batch.tgt_in)
    assert len(calls) == 1


def test_gradients_reach_every_parameter():
    model = tiny_model()
    batch = collate(random_sentences(3), random_sentences(3), [0, 1, 2])
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_tiny_model_overfits_one_batch():
    model = tiny_model(dtype=torch.float32)
    batch = collate(random_sentences(4), random_sentences(4), [0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(150):
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.02
