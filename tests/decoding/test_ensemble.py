"""An ensemble stands where a model stands: of one it is the model, of several it averages."""

import math

import pytest
import torch
from torch.testing import assert_close

from nmt.data.batching import collate
from nmt.data.tokenizer import BOS_ID, PAD_ID
from nmt.decoding.ensemble import Ensemble
from nmt.decoding.search import BeamSearch, GreedySearch, Sampling
from tests.conftest import random_sentences
from tests.decoding.test_search import build, encode

SEARCHES = [
    GreedySearch(return_attention=True),
    Sampling(seed=1),
    BeamSearch(beam_size=4, nbest=3, alpha=0.6, coverage_penalty=0.2, return_attention=True),
]


@pytest.mark.parametrize("search", SEARCHES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("style", ["bahdanau_coverage_scorer", "luong_dot"])
def test_an_ensemble_of_one_is_the_model(style, search):
    model = build(style)
    src, lengths = encode(random_sentences(8))
    alone, ensembled = search(model, src, lengths), search(Ensemble([model]), src, lengths)
    for a, e in zip(alone, ensembled):
        assert [(h.tokens, h.log_prob, h.score) for h in a] == [(h.tokens, h.log_prob, h.score) for h in e]
        for x, y in zip(a, e):
            assert (x.attention is None and y.attention is None) or torch.equal(x.attention, y.attention)


def test_an_ensemble_step_is_the_log_of_the_mean_probability():
    members = [build("bahdanau_additive"), build("luong_dot", sharpness=1.0)]
    ensemble = Ensemble(members)
    src, lengths = encode(random_sentences(3))
    prev = torch.full((3,), BOS_ID)

    def first_step(model):
        memory, state = model.start(src, lengths)
        scores, normalizers, _, attention = model.next_token_scores(prev, state, memory)
        return scores - normalizers.unsqueeze(1), attention

    log_probs, attention = first_step(ensemble)
    steps = [first_step(m) for m in members]
    assert_close(log_probs, torch.log((steps[0][0].exp() + steps[1][0].exp()) / 2))
    assert_close(attention, (steps[0][1] + steps[1][1]) / 2)
    assert_close(log_probs.exp().sum(-1), torch.ones(3, dtype=torch.float64))  # still a distribution


@torch.no_grad()
def ensemble_log_prob(members, source, tokens) -> float:
    """log P(tokens + EOS) = sum_t log mean_m P_m(y_t | y_<t), by teacher forcing each member."""
    batch = collate([source], [tokens], [0])
    per_member = [torch.log_softmax(m(batch.src, batch.src_lengths, batch.tgt_in)[0][0], -1) for m in members]
    mean = torch.logsumexp(torch.stack(per_member), 0) - math.log(len(members))  # (T, V)
    return float(
        mean.gather(1, batch.tgt_out[0].unsqueeze(1)).masked_fill(batch.tgt_out[0].unsqueeze(1) == PAD_ID, 0).sum()
    )


@pytest.mark.parametrize("search", SEARCHES, ids=lambda s: type(s).__name__)
def test_searching_an_ensemble_reports_the_ensemble_probability(search):
    members = [build("bahdanau_coverage_scorer"), build("luong_general_2_layers"), build("no_attention")]
    sentences = random_sentences(5)
    for sentence, nbest in zip(sentences, search(Ensemble(members), *encode(sentences))):
        for h in nbest:
            assert h.log_prob == pytest.approx(ensemble_log_prob(members, sentence, h.tokens), abs=1e-9)


def test_members_must_share_vocabularies():
    with pytest.raises(ValueError, match="same vocabularies"):
        Ensemble([build(), build(tgt_vocab_size=9)])
    with pytest.raises(ValueError, match="at least one"):
        Ensemble([])
