import pytest
import torch
from torch.testing import assert_close

from nmt.data.batching import collate
from nmt.search import beam_search, greedy_search, length_penalty, max_output_lengths
from nmt.tokenizer import EOS_ID
from tests.conftest import random_sentences, tiny_model


def encode(sentences):
    batch = collate(sentences, None, list(range(len(sentences))))
    return batch.src, batch.src_lengths


@torch.no_grad()
def sequence_log_prob(model, source, target) -> float:
    """log P(target + EOS | source) by teacher forcing."""
    batch = collate([source], [target], [0])
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    log_probs = torch.log_softmax(logits[0], -1)
    return float(log_probs.gather(1, batch.tgt_out[0].unsqueeze(1)).sum())


@pytest.fixture
def model():
    # A sharper random model: larger output weights make peaked distributions, so the
    # searches produce varied lengths instead of stopping at once.
    model = tiny_model().eval()
    with torch.no_grad():
        model.decoder.generator.weight.mul_(4.0)
    return model


def test_beam_of_one_equals_greedy(model):
    sentences = random_sentences(8)
    greedy = greedy_search(model, *encode(sentences))
    beam = beam_search(model, *encode(sentences), beam_size=1)
    assert [h.tokens for h in beam] == [h.tokens for h in greedy]
    assert_close([h.log_prob for h in beam], [h.log_prob for h in greedy])


@pytest.mark.parametrize("search", [greedy_search, lambda m, s, l: beam_search(m, s, l, beam_size=4, alpha=0.6)])
def test_a_sentence_alone_equals_it_inside_a_batch(model, search):
    sentences = random_sentences(7, max_length=12)
    batched = search(model, *encode(sentences))
    for sentence, in_batch in zip(sentences, batched):
        assert search(model, *encode([sentence]))[0].tokens == in_batch.tokens


def test_hypothesis_log_prob_is_the_model_probability(model):
    sentences = random_sentences(4)
    for sentence, hypothesis in zip(sentences, beam_search(model, *encode(sentences), beam_size=3)):
        assert hypothesis.log_prob == pytest.approx(sequence_log_prob(model, sentence, hypothesis.tokens), abs=1e-9)


def test_beam_score_is_length_normalized(model):
    sentences = random_sentences(4)
    for hypothesis in beam_search(model, *encode(sentences), beam_size=3, alpha=1.0):
        assert hypothesis.score == pytest.approx(hypothesis.log_prob / length_penalty(len(hypothesis.tokens) + 1, 1.0))


def test_output_length_limit_is_respected(model):
    with torch.no_grad():  # make EOS impossible until forced
        model.decoder.generator.bias[EOS_ID] = -1e9
    sentences = random_sentences(3)
    src, lengths = encode(sentences)
    limits = max_output_lengths(lengths, 0.5, 1).tolist()
    for search in (greedy_search, lambda *a, **k: beam_search(*a, beam_size=3, **k)):
        for hypothesis, limit in zip(search(model, src, lengths, max_length_ratio=0.5, max_length_offset=1), limits):
            assert len(hypothesis.tokens) + 1 == limit  # tokens + the forced EOS


def test_length_penalty_is_gnmt():
    assert length_penalty(7, 0.0) == 1.0
    assert length_penalty(7, 1.0) == pytest.approx(2.0)
    assert length_penalty(1, 2.0) == pytest.approx(1.0)
