"""Searches against independent oracles: exhaustive enumeration, teacher forcing, hand formulas."""

import copy
import itertools
import math
from functools import partial
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch.testing import assert_close

from nmt.data.batching import collate
from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from nmt.decoding.search import BeamSearch, GreedySearch, Sampling, build_search
from nmt.modules.attention import AdditiveScorer, CoverageScorer, DotScorer, GeneralScorer
from nmt.modules.decoder import BahdanauDecoder, LuongDecoder
from nmt.modules.encoder import RNNEncoder
from nmt.modules.seq2seq import Seq2Seq
from nmt.utils.precision import autocast
from tests.conftest import DEVICES, VOCAB, random_sentences

DECODE_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "decode"
STYLES = {
    "bahdanau_additive": partial(BahdanauDecoder, readout_size=8, scorer=partial(AdditiveScorer, hidden_size=12)),
    "bahdanau_coverage_scorer": partial(
        BahdanauDecoder, readout_size=8, scorer=partial(CoverageScorer, hidden_size=12)
    ),
    "luong_dot": partial(LuongDecoder, attentional_size=16, scorer=DotScorer),
    "luong_general_2_layers": partial(LuongDecoder, attentional_size=16, num_layers=2, scorer=GeneralScorer),
    "bahdanau_entmax15": partial(
        BahdanauDecoder, readout_size=8, scorer=partial(AdditiveScorer, hidden_size=12), normalizer="entmax15"
    ),
    "luong_sparsemax": partial(LuongDecoder, attentional_size=16, scorer=DotScorer, normalizer="sparsemax"),
    "luong_lstm_coverage": partial(
        LuongDecoder, attentional_size=16, scorer=partial(CoverageScorer, hidden_size=12), cell="lstm"
    ),
    "no_attention": partial(BahdanauDecoder, readout_size=8, scorer=None),
}
ATTENDING = [style for style in STYLES if style != "no_attention"]


def build(
    style: str = "bahdanau_additive", tgt_vocab_size: int = VOCAB, sharpness: float = 4.0, eos_bias: float = 0.0
) -> Seq2Seq:
    """A float64 model; `sharpness` scales the output layer so outputs have varied lengths."""
    model = (
        Seq2Seq(
            encoder=partial(RNNEncoder, embedding_size=8, hidden_size=8, cell="lstm" if "lstm" in style else "gru"),
            decoder=partial(STYLES[style], embedding_size=8, hidden_size=16),
            src_vocab_size=VOCAB,
            tgt_vocab_size=tgt_vocab_size,
        )
        .double()
        .eval()
    )
    with torch.no_grad():
        model.decoder.generator.weight.mul_(sharpness)
        model.decoder.generator.bias[EOS_ID] += eos_bias
    return model


def encode(sentences, device: str = "cpu"):
    batch = collate(sentences, None, list(range(len(sentences)))).to(device)
    return batch.src, batch.src_lengths


@torch.no_grad()
def teacher_forced(model, source, targets) -> tuple[list[float], list[torch.Tensor]]:
    """log P(target + EOS | source) and the (|target| + 1, S) attention of each target."""
    batch = collate([source] * len(targets), targets, list(range(len(targets)))).to(next(model.parameters()).device)
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)
    token_log_probs = torch.log_softmax(logits, -1).gather(2, batch.tgt_out.unsqueeze(2)).squeeze(2)
    log_probs = token_log_probs.masked_fill(batch.tgt_out == PAD_ID, 0.0).sum(1)
    return log_probs.tolist(), [attention[i, : len(t) + 1, : len(source) + 1] for i, t in enumerate(targets)]


def gnmt(alpha):
    return lambda length: ((5 + length) / 6) ** alpha


def coverage(attention, beta) -> float:
    """GNMT's coverage penalty by hand: beta * sum_j log(min(sum_i a_ij, 1)), a source position
    no output attended to (sparse attention) counting as log of the smallest float64, not -inf."""
    tiny = torch.finfo(torch.float64).tiny
    return beta * sum(math.log(max(min(float(column), 1.0), tiny)) for column in attention.sum(0))


def repeats_an_ngram(tokens, n) -> bool:
    ngrams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(ngrams)) < len(ngrams)


# --- beam search is exhaustive search when the beam holds every prefix ----------------------------

# Target vocabulary 9: UNK and 5 words can be generated besides EOS, so 6 ** 3 = 216 prefixes of
# 3 tokens; the length limit 4 (EOS counted) makes 1 + 6 + 36 + 216 = 259 possible outputs. EOS is
# made unlikely, so long outputs compete with short ones (and the classic rule can go wrong).
TINY_VOCAB, MAX_LENGTH, EOS_BIAS = 9, 4, -3.0
WORDS = [UNK_ID, *range(EOS_ID + 1, TINY_VOCAB)]
EXHAUSTIVE = {"beam_size": len(WORDS) ** (MAX_LENGTH - 1), "max_length_ratio": 0.0, "max_length_offset": MAX_LENGTH}
CASES = {  # search options, and the oracle's (length penalty of |Y|, coverage beta, which outputs exist)
    "no_penalty": ({"length_penalty": "none"}, (lambda length: 1.0, 0.0, lambda tokens: True)),
    "gnmt_alpha_1": ({"length_penalty": "gnmt", "alpha": 1.0}, (gnmt(1.0), 0.0, lambda tokens: True)),
    "average": ({"length_penalty": "average"}, (lambda length: length, 0.0, lambda tokens: True)),
    "gnmt_and_coverage": ({"alpha": 0.6, "coverage_penalty": 0.4}, (gnmt(0.6), 0.4, lambda tokens: True)),
    "min_length_3": ({"alpha": 1.0, "min_length_offset": 3}, (gnmt(1.0), 0.0, lambda tokens: len(tokens) >= 2)),
    "no_repeated_words": (
        {"alpha": 1.0, "no_repeat_ngram_size": 1},
        (gnmt(1.0), 0.0, lambda tokens: not repeats_an_ngram(tokens, 1)),
    ),
}


def exhaustive_nbest(model, source, oracle, n) -> list[tuple[list[int], float]]:
    """Every possible output scored by teacher forcing: the n best (tokens, score)."""
    penalty, beta, exists = oracle
    outputs = [
        list(tokens)
        for length in range(MAX_LENGTH)
        for tokens in itertools.product(WORDS, repeat=length)
        if exists(list(tokens))
    ]
    log_probs, attention = teacher_forced(model, source, outputs)
    scores = [
        log_prob / penalty(len(tokens) + 1) + (coverage(weights, beta) if beta else 0.0)
        for tokens, log_prob, weights in zip(outputs, log_probs, attention)
    ]
    return sorted(zip(outputs, scores), key=lambda pair: -pair[1])[:n]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("style", STYLES)
def test_beam_search_equals_exhaustive_search(style, case, device):
    options, oracle = CASES[case]
    if oracle[1] and style == "no_attention":
        pytest.skip("the coverage penalty needs attention")
    model = build(style, TINY_VOCAB, sharpness=2.0, eos_bias=EOS_BIAS).to(device)
    sentences = random_sentences(3)
    search = BeamSearch(nbest=5, **EXHAUSTIVE, **options)
    for sentence, nbest in zip(sentences, search(model, *encode(sentences, device))):
        expected = exhaustive_nbest(model, sentence, oracle, 5)
        assert [h.tokens for h in nbest] == [tokens for tokens, _ in expected]
        assert_close([h.score for h in nbest], [score for _, score in expected])


def test_the_stop_early_rule_can_miss_what_exhaustive_search_finds():
    """The exhaustive test can fail: with the classic rule it does, on some models."""
    missed = 0
    for seed in range(3):
        torch.manual_seed(seed)
        model = build("bahdanau_additive", TINY_VOCAB, sharpness=2.0, eos_bias=EOS_BIAS)
        sentences = random_sentences(3)
        nbests = BeamSearch(nbest=5, stop_early=True, alpha=1.0, **EXHAUSTIVE)(model, *encode(sentences))
        for sentence, nbest in zip(sentences, nbests):
            expected = exhaustive_nbest(model, sentence, CASES["gnmt_alpha_1"][1], 5)
            missed += [h.tokens for h in nbest] != [tokens for tokens, _ in expected]
    assert missed > 0


class Scripted:
    """A fake model whose next-token distribution depends only on how many tokens came before:
    its memory is None and its state a count, which the search must carry without looking."""

    def __init__(self, rows: list[dict[int, float]], source_length: int = 4) -> None:
        self.table = torch.full((len(rows), 5), 1e-12, dtype=torch.float64)  # vocabulary: specials + one word
        for i, row in enumerate(rows):
            for token, p in row.items():
                self.table[i, token] = p
        self.table = self.table.log()
        self.source_length = source_length

    def eval(self):
        return self

    def start(self, src, src_lengths):
        return None, torch.zeros(src.size(0), dtype=torch.long)

    def next_token_scores(self, prev_tokens, state, memory):
        """Log-probabilities shifted by a normalizer that differs by row and step, as a model's
        logits are: the search must rank the scores and subtract the normalizer."""
        normalizers = 3.0 + 0.5 * state.double()
        scores = self.table[state.clamp(max=len(self.table) - 1)] + normalizers.unsqueeze(1)
        return scores, normalizers, state + 1, torch.zeros(state.size(0), self.source_length, dtype=torch.float64)

    def reorder(self, memory, state, index):
        return memory, None if state is None else state.index_select(0, index)


def test_the_exact_rule_waits_for_an_output_that_pays_off_only_at_the_length_limit():
    """The empty output (P = 0.74) leads at first, but nine near-certain words then EOS score
    log(0.26 * 0.999 ** 9) / 10 = -0.136 > log 0.74 = -0.301 under the average penalty. Only the
    bound at the length limit (10) sees that at step 0; the bound at the next length does not."""
    word = EOS_ID + 1
    model = Scripted([{EOS_ID: 0.74, word: 0.26}] + [{word: 0.999, EOS_ID: 0.001}] * 8 + [{EOS_ID: 0.999, word: 0.001}])
    src, lengths = torch.zeros(1, 4, dtype=torch.long), torch.tensor([4])
    limits = {"length_penalty": "average", "max_length_ratio": 0.0, "max_length_offset": 10}
    best = BeamSearch(beam_size=2, **limits)(model, src, lengths)[0][0]
    assert best.tokens == [word] * 9
    assert best.score == pytest.approx(math.log(0.26 * 0.999**9) / 10)
    assert BeamSearch(beam_size=2, stop_early=True, **limits)(model, src, lengths)[0][0].tokens == []


@pytest.mark.parametrize("options", [{"alpha": 1.0}, {"length_penalty": "average"}, {"alpha": 0.6, "nbest": 3}])
def test_the_exact_rule_never_scores_below_stop_early(options):
    model = build()
    sentences = random_sentences(16)
    exact = BeamSearch(beam_size=3, **options)(model, *encode(sentences))
    early = BeamSearch(beam_size=3, stop_early=True, **options)(model, *encode(sentences))
    for found, approximate in zip(exact, early):
        assert found[0].score >= approximate[0].score - 1e-12
    assert any(found[0].score > approximate[0].score for found, approximate in zip(exact, early))


# --- agreement between searches and batch sizes --------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("style", STYLES)
def test_beam_of_one_stopping_early_equals_greedy(style, device):
    model = build(style).to(device)
    sentences = random_sentences(8)
    greedy = GreedySearch()(model, *encode(sentences, device))
    beam = BeamSearch(beam_size=1, stop_early=True, length_penalty="none")(model, *encode(sentences, device))
    assert [h[0].tokens for h in beam] == [h[0].tokens for h in greedy]
    assert_close([h[0].log_prob for h in beam], [h[0].log_prob for h in greedy])


def test_exact_beam_of_one_is_at_least_as_good_as_greedy():
    """With the exact rule, beam 1 also weighs every EOS it passes on the greedy path."""
    model = build()
    sentences = random_sentences(16)
    greedy = GreedySearch()(model, *encode(sentences))
    beam = BeamSearch(beam_size=1, length_penalty="none")(model, *encode(sentences))
    assert all(b[0].score >= g[0].score - 1e-12 for b, g in zip(beam, greedy))


SHORT = {"max_length_ratio": 1.0, "max_length_offset": 4}  # fewer steps: a faster test
SEARCHES = {
    "greedy": GreedySearch(return_attention=True, **SHORT),
    "greedy_blocking": GreedySearch(no_repeat_ngram_size=2, min_length_offset=4, **SHORT),
    "beam": BeamSearch(beam_size=4, nbest=3, alpha=0.6, return_attention=True, **SHORT),
    "beam_coverage_blocking": BeamSearch(
        beam_size=3, nbest=2, coverage_penalty=0.3, no_repeat_ngram_size=2, min_length_ratio=0.5, **SHORT
    ),
    "beam_stop_early": BeamSearch(beam_size=4, nbest=2, stop_early=True, **SHORT),
}


@pytest.mark.parametrize("style", ["bahdanau_coverage_scorer", "luong_general_2_layers"])
@pytest.mark.parametrize("name", SEARCHES)
@pytest.mark.parametrize("device", DEVICES)
def test_a_sentence_alone_equals_it_inside_a_batch(name, style, device):
    search, model = SEARCHES[name], build(style).to(device)
    sentences = random_sentences(32, min_length=1, max_length=15)
    batched = search(model, *encode(sentences, device))
    for sentence, in_batch in zip(sentences, batched):
        alone = search(model, *encode([sentence], device))[0]
        assert [h.tokens for h in alone] == [h.tokens for h in in_batch]
        assert_close([h.score for h in alone], [h.score for h in in_batch])
        for a, b in zip(alone, in_batch):
            assert (a.attention is None and b.attention is None) or torch.allclose(a.attention, b.attention)


@pytest.mark.parametrize("search", [GreedySearch(), Sampling(seed=0)], ids=["greedy", "sampling"])
def test_a_sentence_leaves_the_batch_when_it_ends(search):
    """The model steps only the sentences still open: at step t, those whose output (EOS
    counted) is longer than t, not every row until the longest ends."""
    model, stepped = counting_rows(build())
    lengths = [len(nbest[0].tokens) + 1 for nbest in search(model, *encode(random_sentences(16)))]
    assert len(set(lengths)) > 3  # the premise: outputs of varied lengths
    assert stepped == [sum(length > t for length in lengths) for t in range(max(lengths))]


def test_beam_search_steps_one_row_per_sentence_first():
    """The beams of a sentence start identical, so the first step runs once per sentence, and
    every later one on beam_size rows per open sentence."""
    model, stepped = counting_rows(build())
    BeamSearch(beam_size=3)(model, *encode(random_sentences(16)))
    assert stepped[0] == 16 and stepped[1] == 3 * 16
    assert len(stepped) > 2 and all(rows % 3 == 0 for rows in stepped[1:])


def counting_rows(model):
    """The model, and a list that gets the number of rows of every step it takes."""
    stepped, next_token_scores = [], model.next_token_scores
    model.next_token_scores = lambda prev_tokens, state, memory: (
        stepped.append(len(prev_tokens)) or next_token_scores(prev_tokens, state, memory)
    )
    return model, stepped


@pytest.mark.parametrize("style", STYLES)
def test_nbest_lists_are_sorted_distinct_and_full(style):
    model = build(style)
    for nbest in BeamSearch(beam_size=5, nbest=4, alpha=0.6)(model, *encode(random_sentences(8))):
        scores = [h.score for h in nbest]
        assert len(nbest) == 4 and scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in nbest}) == 4


# --- what each hypothesis reports -----------------------------------------------------------------

ALL_SEARCHES = {
    **SEARCHES,
    "sampling": Sampling(seed=3, return_attention=True, **SHORT),
    "beam_average": BeamSearch(beam_size=3, nbest=3, length_penalty="average", **SHORT),
}


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", ALL_SEARCHES)
def test_log_prob_is_the_teacher_forced_log_probability(name, style):
    model = build(style)
    sentences = random_sentences(6)
    for sentence, nbest in zip(sentences, ALL_SEARCHES[name](model, *encode(sentences))):
        log_probs, attention = teacher_forced(model, sentence, [h.tokens for h in nbest])
        assert_close([h.log_prob for h in nbest], log_probs)
        for hypothesis, weights in zip(nbest, attention):
            if hypothesis.attention is not None:  # (|Y| + 1, S): every step, EOS included
                assert_close(hypothesis.attention, weights)


@pytest.mark.parametrize("style", ATTENDING)
@pytest.mark.parametrize("length_penalty, alpha", [("gnmt", 0.6), ("average", 0.0), ("none", 0.0)])
def test_score_is_length_normalized_log_prob_plus_coverage_penalty(style, length_penalty, alpha):
    model = build(style)
    penalty = {"gnmt": gnmt(alpha), "average": lambda length: length, "none": lambda length: 1.0}[length_penalty]
    search = BeamSearch(
        beam_size=4, nbest=3, length_penalty=length_penalty, alpha=alpha, coverage_penalty=0.7, return_attention=True
    )
    for nbest in search(model, *encode(random_sentences(6))):
        for h in nbest:
            assert h.attention.shape[0] == len(h.tokens) + 1
            expected = h.log_prob / penalty(len(h.tokens) + 1) + coverage(h.attention, 0.7)
            assert h.score == pytest.approx(expected, abs=1e-9)


# --- masks: lengths and repeated n-grams ----------------------------------------------------------

MASKED_SEARCHES = {
    "greedy": GreedySearch,
    "sampling": partial(Sampling, seed=0),
    "beam": partial(BeamSearch, beam_size=3, nbest=2),
}


@pytest.mark.parametrize("name", MASKED_SEARCHES)
def test_output_length_limits_are_respected(name):
    src, lengths = encode(random_sentences(5))
    minimum = (lengths * 0.5).ceil().long() + 1  # lengths count EOS
    maximum = (lengths * 1.5).ceil().long() + 1
    limits = {"min_length_ratio": 0.5, "min_length_offset": 1, "max_length_ratio": 1.5, "max_length_offset": 1}
    search = MASKED_SEARCHES[name](**limits)
    for eos_bias, expected in [(50.0, minimum), (-50.0, maximum)]:  # EOS wanted at once / never
        for nbest, length in zip(search(build(eos_bias=eos_bias), src, lengths), expected.tolist()):
            assert all(len(h.tokens) + 1 == length for h in nbest)
    for nbest, low, high in zip(search(build(), src, lengths), minimum.tolist(), maximum.tolist()):
        assert all(low <= len(h.tokens) + 1 <= high for h in nbest)


@pytest.mark.parametrize("name", MASKED_SEARCHES)
def test_a_hypothesis_ends_when_every_other_token_is_banned(name):
    """Six distinct tokens exist; with no word repeated, the 7th step may only end, min length or not."""
    model = build(tgt_vocab_size=TINY_VOCAB, eos_bias=-50.0)
    search = MASKED_SEARCHES[name](no_repeat_ngram_size=1, min_length_offset=20, max_length_offset=20)
    for nbest in search(model, *encode(random_sentences(4))):
        assert nbest and all(sorted(h.tokens) == WORDS for h in nbest)


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("name", MASKED_SEARCHES)
def test_no_blocked_ngram_is_ever_repeated(name, n):
    model = build(eos_bias=-50.0)  # long outputs, full of repeats when nothing blocks them
    src, lengths = encode(random_sentences(12))
    unblocked = MASKED_SEARCHES[name](max_length_offset=15)(model, src, lengths)
    assert any(repeats_an_ngram(h.tokens, n) for nbest in unblocked for h in nbest)
    for nbest in MASKED_SEARCHES[name](max_length_offset=15, no_repeat_ngram_size=n)(model, src, lengths):
        assert all(not repeats_an_ngram(h.tokens, n) for h in nbest)


# --- sampling ---------------------------------------------------------------------------------------


def test_sampling_with_a_seed_repeats_and_seeds_differ():
    model = build(sharpness=1.0)
    src, lengths = encode(random_sentences(8))
    first, again = (Sampling(seed=5)(model, src, lengths) for _ in range(2))
    other = Sampling(seed=6)(model, src, lengths)
    assert [h[0].tokens for h in first] == [h[0].tokens for h in again]
    assert [h[0].tokens for h in first] != [h[0].tokens for h in other]


@pytest.mark.parametrize("options", [{"top_k": 1}, {"top_p": 1e-9}, {"top_k": 3, "temperature": 1e-4}])
def test_sampling_restricted_to_the_best_token_is_greedy(options):
    model = build(sharpness=1.0)
    src, lengths = encode(random_sentences(8))
    sampled = Sampling(seed=0, **options)(model, src, lengths)
    assert [h[0].tokens for h in sampled] == [h[0].tokens for h in GreedySearch()(model, src, lengths)]


# --- configs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, cls", [("beam", BeamSearch), ("greedy", GreedySearch), ("sample", Sampling)])
def test_each_decode_config_is_its_class_with_its_defaults(name, cls):
    config = OmegaConf.load(DECODE_CONFIGS / f"{name}.yaml")
    assert build_search(config) == cls()  # one set of defaults: the YAML lists the class's own
    assert set(config) - {"_target_"} == {f for f in cls.__dataclass_fields__}


def test_build_search_applies_overrides_and_names_mistakes():
    config = OmegaConf.load(DECODE_CONFIGS / "beam.yaml")
    assert build_search(config, beam_size=2, nbest=2) == BeamSearch(beam_size=2, nbest=2)
    with pytest.raises(ValueError, match="beem_size"):
        build_search(config, beem_size=2)
    with pytest.raises(ValueError, match=r"decode.beam_size=0: must be at least 1"):
        build_search(config, beam_size=0)
    with pytest.raises(ValueError, match=r"decode.nbest=6"):
        build_search(config, nbest=6)


@pytest.mark.parametrize(
    "cls, key, value",
    [
        (BeamSearch, "length_penalty", "wu"),
        (BeamSearch, "alpha", -0.5),
        (BeamSearch, "coverage_penalty", -1.0),
        (GreedySearch, "no_repeat_ngram_size", -1),
        (Sampling, "temperature", 0.0),
        (Sampling, "top_p", 0.0),
        (Sampling, "top_k", -1),
        (GreedySearch, "max_length_ratio", -1.0),
    ],
)
def test_invalid_options_are_named(cls, key, value):
    with pytest.raises(ValueError, match=f"decode.{key}="):
        cls(**{key: value})


def eager_and_compiled(style: str = "bahdanau_additive") -> tuple[Seq2Seq, Seq2Seq]:
    """A float32 model, and a copy that computes its log normalizers with `torch.compile`."""
    eager = build(style).float()
    compiled = copy.deepcopy(eager)
    compiled.compile_decoding()
    return eager, compiled


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@torch.no_grad()
def test_compiled_scores_minus_normalizers_are_the_log_probabilities(precision):
    """Against a float64 log-softmax of the model's own logits; under bf16 autocast the scores
    stay the bf16 logits (no fp32 copy is made)."""
    _, compiled = eager_and_compiled()
    src, lengths = encode(random_sentences(6))
    prev = torch.full((6,), BOS_ID)
    with autocast("cpu", precision):
        memory, state = compiled.start(src, lengths)
        logits = compiled.decoder.decode_step(prev, state, memory)[0]
        scores, normalizers, _, _ = compiled.next_token_scores(prev, state, memory)
    assert scores.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
    assert normalizers.dtype == torch.float32
    assert_close(
        scores.double() - normalizers.double().unsqueeze(1), torch.log_softmax(logits.double(), -1), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize(
    "search",
    [GreedySearch(), BeamSearch(beam_size=4, nbest=3, alpha=0.6), BeamSearch(beam_size=3, stop_early=True)],
    ids=["greedy", "beam", "beam_early"],
)
def test_compiled_decoding_finds_what_eager_decoding_finds(search):
    """In fp32: the same outputs, log P equal up to rounding. (In bf16 the compiled step's fused
    kernels round less often than eager bf16 does, so near-ties may go the other way: there the
    steps are compared, in `tests/modules/test_decoders.py`.)"""
    eager, compiled = eager_and_compiled()
    src, lengths = encode(random_sentences(12))
    expected, found = search(eager, src, lengths), search(compiled, src, lengths)
    assert [[h.tokens for h in nbest] for nbest in found] == [[h.tokens for h in nbest] for nbest in expected]
    assert_close(
        [h.log_prob for nbest in found for h in nbest],
        [h.log_prob for nbest in expected for h in nbest],
        rtol=0,
        atol=1e-4,
    )
