"""Forced decoding (`nmt.decoding.forced`) and `Translator.score` / `Translator.align` against a
teacher-forced float64 oracle."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from nmt import Translator
from nmt.checkpoint import save_checkpoint
from nmt.data.alignments import Alignment
from nmt.data.corpus import read_lines
from nmt.decoding.ensemble import Ensemble
from nmt.decoding.forced import force_decode_all
from nmt.decoding.translator import _word_links
from nmt.metrics.alignment import alignment_error_rate
from nmt.utils.errors import UserError
from tests.conftest import random_sentences
from tests.decoding.test_search import STYLES, build, teacher_forced
from tests.test_checkpoint import tiny_checkpoint, toy_tokenizers


def oracle(model, sources, targets) -> tuple[list[float], list[torch.Tensor]]:
    """Each pair's log P(target + EOS | source) and attention from one teacher-forced float64 pass."""
    found = [teacher_forced(model, source, [target]) for source, target in zip(sources, targets)]
    return [log_probs[0] for log_probs, _ in found], [attention[0] for _, attention in found]


@pytest.mark.parametrize("style", STYLES)
def test_forced_scores_are_the_sums_of_the_teacher_forced_step_log_probabilities(style):
    model = build(style, sharpness=1.0)
    sources, targets = random_sentences(7), random_sentences(7, min_length=1)
    expected, attention = oracle(model, sources, targets)
    found = force_decode_all(model, sources, targets, max_tokens=20, attention=True)
    assert_close(torch.tensor([f.log_prob for f in found]), torch.tensor(expected), rtol=0, atol=1e-10)
    for forced, target, weights in zip(found, targets, attention):
        assert forced.token_log_probs.shape == (len(target) + 1,)
        assert_close(torch.from_numpy(forced.attention), weights, rtol=0, atol=1e-10)
        assert forced.perplexity == pytest.approx(np.exp(-forced.log_prob / (len(target) + 1)))


def test_fp32_forced_scores_follow_the_float64_oracle():
    model = build("luong_general_2_layers", sharpness=1.0)
    sources, targets = random_sentences(6), random_sentences(6, min_length=1)
    expected, _ = oracle(model, sources, targets)
    found = force_decode_all(model.float(), sources, targets)
    assert_close(torch.tensor([f.log_prob for f in found]), torch.tensor(expected), rtol=1e-5, atol=1e-5)


def test_a_pair_scored_alone_equals_it_scored_inside_a_batch():
    model = build("bahdanau_additive", sharpness=1.0).float()
    sources, targets = random_sentences(9), random_sentences(9, min_length=1)
    together = force_decode_all(model, sources, targets, max_tokens=10_000, attention=True)
    for source, target, batched in zip(sources, targets, together):
        (alone,) = force_decode_all(model, [source], [target], attention=True)
        np.testing.assert_allclose(alone.token_log_probs, batched.token_log_probs, rtol=0, atol=1e-6)
        np.testing.assert_allclose(alone.attention, batched.attention, rtol=0, atol=1e-6)


def test_an_ensemble_of_a_model_twice_scores_like_the_model():
    model = build("luong_dot", sharpness=1.0)
    sources, targets = random_sentences(4), random_sentences(4, min_length=1)
    alone = force_decode_all(model, sources, targets)
    twice = force_decode_all(Ensemble([model, model]), sources, targets)
    for a, b in zip(alone, twice):
        np.testing.assert_allclose(a.token_log_probs, b.token_log_probs, rtol=0, atol=1e-10)


@pytest.fixture(scope="module")
def translator(tmp_path_factory):
    folder = tmp_path_factory.mktemp("forced")
    _, payload = tiny_checkpoint(toy_tokenizers(folder), seed=3)
    save_checkpoint(folder / "model.pt", payload)
    return Translator.from_checkpoint(folder / "model.pt", device="cpu", precision="fp32")


def test_score_keeps_one_result_per_pair_and_none_for_an_empty_side(translator):
    sources, targets = ["ka lo mi", "", "lo ka", "mi"], ["one two three", "two", "", "three four"]
    scored = translator.score(sources, targets, attention=True)
    assert scored[1] is None and scored[2] is None
    for result in (scored[0], scored[3]):
        assert len(result.token_log_probs) == len(result.target_pieces) + 1
        assert result.log_prob == pytest.approx(sum(result.token_log_probs))
        assert result.attention.shape == (len(result.target_pieces) + 1, len(result.source_pieces) + 1)
        np.testing.assert_allclose(result.attention.sum(-1), 1.0, atol=1e-6)
    assert translator.score(sources[:1], targets[:1])[0].log_prob == pytest.approx(scored[0].log_prob)


def test_score_needs_one_target_per_source(translator):
    with pytest.raises(UserError, match="3 sources but 2 targets"):
        translator.score(["a", "b", "c"], ["a", "b"])


def test_links_run_from_source_word_to_target_word():
    """Two source words, three target words (one of two pieces): each target piece links to the
    source piece it attends to most; a word gets its pieces' links; EOS rows and columns drop out."""
    attention = np.array(
        [
            [0.1, 0.8, 0.1],  # ▁x -> ▁b
            [0.7, 0.2, 0.1],  # ▁y -> ▁a
            [0.2, 0.7, 0.1],  # z (y's second piece) -> ▁b
            [0.1, 0.1, 0.8],  # ▁w -> </s>: unaligned
            [0.0, 0.0, 1.0],  # the </s> row
        ]
    )
    links = _word_links(attention, ["▁a", "▁b"], ["▁x", "▁y", "z", "▁w"])
    assert links == {(1, 0), (0, 1), (1, 1)}


def test_align_links_words_within_both_sentences_and_leaves_empty_pairs_unlinked(translator):
    sources, targets = ["ka lo mi ne", "", "su"], ["one two three", "", "four five"]
    found = translator.align(sources, targets)
    assert found[1] == []
    for links, source, target in zip(found, sources, targets):
        assert all(0 <= i < len(source.split()) and 0 <= j < len(target.split()) for i, j in links)
    assert len({j for _, j in found[0]}) <= 3 and found[0] == sorted(found[0])


def test_align_with_a_reverse_model_keeps_the_links_both_directions_agree_on(translator):
    sources, targets = ["ka lo mi ne su", "lo lo ka"], ["one two three four", "two one"]
    forward = translator.align(sources, targets)
    symmetrized = translator.align(sources, targets, reverse=translator)
    backward = [[(i, j) for j, i in links] for links in translator.align(targets, sources)]
    for f, b, s in zip(forward, backward, symmetrized):
        assert set(f) & set(b) <= set(s) <= set(f) | set(b)


@pytest.mark.integration
def test_align_recovers_the_reversal_of_the_toy_task(tmp_path):
    """The toy task's target translates the source word by word and reverses it, so its gold
    alignment is known: source word i to target word n - 1 - i. A Luong model trained for 300
    updates aligns every test sentence whose words are distinct with AER 0. (A repeated source
    word makes the reversal ambiguous to the model, both copies translating alike, so those
    sentences are left out.)"""
    root = Path(__file__).resolve().parents[2]
    overrides = ["model/decoder=luong", "seed=1", "trainer.max_steps=300", "trainer.valid_every=300"]
    precision = ["trainer.precision=fp32", "decode_precision=fp32", "trainer.progress_bar=false", "hydra.run.dir=run"]
    train = subprocess.run(
        [sys.executable, str(root / "train.py"), *overrides, *precision], cwd=tmp_path, capture_output=True, text=True
    )
    assert train.returncode == 0, train.stderr[-2000:]
    sources, targets = read_lines(tmp_path / "data/toy/test.src"), read_lines(tmp_path / "data/toy/test.tgt")
    distinct = [(s, t) for s, t in zip(sources, targets) if len(set(s.split())) == len(s.split())]
    assert len(distinct) >= 50
    translator = Translator.from_checkpoint(tmp_path / "run/checkpoints/best.pt", device="cpu", precision="fp32")
    found = translator.align([s for s, _ in distinct], [t for _, t in distinct])
    reversal = [frozenset((i, len(s.split()) - 1 - i) for i in range(len(s.split()))) for s, _ in distinct]
    scores = alignment_error_rate(found, [Alignment(gold, gold) for gold in reversal])
    wrong = [(source, links) for (source, _), links, gold in zip(distinct, found, reversal) if set(links) != gold]
    assert scores.aer == 0.0, wrong
