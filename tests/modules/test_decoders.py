"""Both decoder styles, the no-attention baseline, and the model options."""

import copy
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from nmt.data.batching import collate
from nmt.data.tokenizer import PAD_ID
from nmt.modules.attention import (
    AdditiveScorer,
    ConcatScorer,
    CoverageScorer,
    DotScorer,
    GeneralScorer,
    LocationScorer,
    ScaledDotScorer,
)
from nmt.modules.decoder import BahdanauDecoder, LuongDecoder
from nmt.modules.encoder import RNNEncoder
from nmt.modules.seq2seq import Seq2Seq
from nmt.utils.precision import autocast
from tests.conftest import DEVICES, VOCAB, random_sentences

STYLES = {
    "bahdanau": partial(BahdanauDecoder, readout_size=8, scorer=partial(AdditiveScorer, hidden_size=12)),
    "bahdanau_2_layers": partial(
        BahdanauDecoder, readout_size=8, num_layers=2, scorer=partial(AdditiveScorer, hidden_size=12)
    ),
    "bahdanau_coverage": partial(BahdanauDecoder, readout_size=8, scorer=partial(CoverageScorer, hidden_size=12)),
    "luong_input_feeding": partial(LuongDecoder, attentional_size=16, input_feeding=True, scorer=GeneralScorer),
    "luong_no_input_feeding": partial(LuongDecoder, attentional_size=16, input_feeding=False, scorer=GeneralScorer),
    "luong_2_layers": partial(LuongDecoder, attentional_size=16, num_layers=2, scorer=GeneralScorer),
    "bahdanau_sparsemax": partial(
        BahdanauDecoder, readout_size=8, scorer=partial(AdditiveScorer, hidden_size=12), normalizer="sparsemax"
    ),
    "luong_entmax15": partial(LuongDecoder, attentional_size=16, scorer=GeneralScorer, normalizer="entmax15"),
    "bahdanau_lstm_2_layers": partial(
        BahdanauDecoder, readout_size=8, num_layers=2, scorer=partial(AdditiveScorer, hidden_size=12), cell="lstm"
    ),
    "luong_lstm": partial(LuongDecoder, attentional_size=16, scorer=GeneralScorer, cell="lstm"),
    "no_attention": partial(BahdanauDecoder, readout_size=8, scorer=None),
}


def build(style: str, dtype=torch.float64, **options) -> Seq2Seq:
    decoder = partial(STYLES[style], embedding_size=8, hidden_size=16)
    encoder_options = {k: options.pop(k) for k in list(options) if k.startswith("encoder_")}
    encoder = partial(
        RNNEncoder,
        embedding_size=8,
        hidden_size=8,
        cell="lstm" if "lstm" in style else "gru",  # an LSTM decoder gets an LSTM encoder
        **{k.removeprefix("encoder_"): v for k, v in encoder_options.items()},
    )
    return Seq2Seq(encoder=encoder, decoder=partial(decoder, **options), src_vocab_size=VOCAB, tgt_vocab_size=VOCAB).to(
        dtype
    )


def toy_batch(count=4):
    return collate(random_sentences(count), random_sentences(count), list(range(count)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("style", STYLES)
def test_teacher_forcing_equals_step_by_step_decoding(style, device):
    model = build(style).to(device).eval()
    batch = toy_batch(3).to(device)
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)
    memory, state = model.start(batch.src, batch.src_lengths)
    for t in range(batch.tgt_in.size(1)):
        log_probs, state, weights = model.decode_step(batch.tgt_in[:, t], state, memory)
        assert_close(log_probs, torch.log_softmax(logits[:, t], -1))
        assert_close(weights, attention[:, t])


@pytest.mark.parametrize("style", STYLES)
def test_every_style_overfits_one_batch(style):
    model = build(style, dtype=torch.float32)
    batch = toy_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(150):
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05, style


@pytest.mark.parametrize("style", STYLES)
def test_gradients_reach_every_parameter(style):
    model = build(style, embedding_dropout=0.1, hidden_dropout=0.1, output_dropout=0.1)
    batch = toy_batch()
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("style", STYLES)
def test_teacher_forcing_gives_the_gradients_of_step_by_step_decoding(style):
    """Training's gradients: the teacher-forced forward (the embedding part of the gates
    precomputed for all steps, the output layers over all steps at once) differentiates as
    `decode_step` stepped along the target does, for a loss that weighs every log-probability.
    float64: equal to rounding."""
    model = build(style).eval()
    batch = toy_batch(3)
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    weights = torch.randn_like(logits)  # a loss that weighs every log-probability
    teacher_forced = torch.autograd.grad((torch.log_softmax(logits, -1) * weights).sum(), list(model.parameters()))
    memory, state = model.start(batch.src, batch.src_lengths)
    total = 0
    for t in range(batch.tgt_in.size(1)):
        log_probs, state, _ = model.decode_step(batch.tgt_in[:, t], state, memory)
        total = total + (log_probs * weights[:, t]).sum()
    stepped = torch.autograd.grad(total, list(model.parameters()), allow_unused=True)
    for (name, _), expected, actual in zip(model.named_parameters(), stepped, teacher_forced):
        assert_close(actual, expected if expected is not None else torch.zeros_like(actual), msg=name)


def test_attention_keys_are_projected_once_per_batch():
    model = build("bahdanau")
    calls = []
    model.decoder.attention.scorer.key_proj.register_forward_hook(lambda *_: calls.append(1))
    batch = collate(random_sentences(2), random_sentences(2, min_length=6), [0, 1])
    model(batch.src, batch.src_lengths, batch.tgt_in)
    assert len(calls) == 1


def test_coverage_is_the_running_sum_of_past_attention():
    model = build("bahdanau_coverage").eval()
    batch = toy_batch(2)
    _, attention = model(batch.src, batch.src_lengths, batch.tgt_in)
    memory, state = model.start(batch.src, batch.src_lengths)
    for t in range(batch.tgt_in.size(1)):
        assert_close(state["coverage"], attention[:, :t].sum(1))
        _, state, _ = model.decode_step(batch.tgt_in[:, t], state, memory)


def test_no_attention_gives_every_step_the_same_context():
    model = build("no_attention").eval()
    batch = toy_batch(2)
    memory, state = model.start(batch.src, batch.src_lengths)
    _, weights, _ = model.decoder.attend(state["hidden"][:, -1], state, memory)
    assert torch.equal(weights, torch.zeros_like(weights))
    other_query = torch.randn_like(state["hidden"][:, -1])
    assert_close(
        model.decoder.attend(other_query, state, memory)[0],
        model.decoder.attend(state["hidden"][:, -1], state, memory)[0],
    )


def test_tied_and_shared_embeddings_are_one_matrix():
    model = build("bahdanau", tie_embeddings=True, embedding_size=8)
    assert model.decoder.generator.weight is model.decoder.embedding.weight
    shared = Seq2Seq(
        encoder=partial(RNNEncoder, embedding_size=8, hidden_size=8),
        decoder=partial(STYLES["bahdanau"], embedding_size=8, hidden_size=16, tie_embeddings=True),
        src_vocab_size=VOCAB,
        tgt_vocab_size=VOCAB,
        share_embeddings=True,
    )
    assert shared.encoder.embedding.weight is shared.decoder.embedding.weight is shared.decoder.generator.weight
    assert (
        sum(p.numel() for p in shared.parameters())
        == sum(p.numel() for p in build("bahdanau").parameters()) - 2 * VOCAB * 8
    )


def test_tying_and_sharing_check_their_sizes():
    with pytest.raises(ValueError, match=r"readout size \(12\) to equal the embedding size \(8\)"):
        build("bahdanau", tie_embeddings=True, readout_size=12)
    with pytest.raises(ValueError, match="share_embeddings needs equal vocabularies"):
        Seq2Seq(
            encoder=partial(RNNEncoder, embedding_size=8, hidden_size=8),
            decoder=partial(STYLES["bahdanau"], embedding_size=8, hidden_size=16),
            src_vocab_size=VOCAB,
            tgt_vocab_size=VOCAB + 1,
            share_embeddings=True,
        )


def test_bahdanau_initialization():
    model = Seq2Seq(
        encoder=partial(RNNEncoder, embedding_size=8, hidden_size=8),
        decoder=partial(STYLES["bahdanau"], embedding_size=8, hidden_size=16),
        src_vocab_size=VOCAB,
        tgt_vocab_size=VOCAB,
        init="bahdanau",
    )
    parameters = {name: p.detach() for name, p in model.named_parameters()}
    for name, parameter in parameters.items():
        if name.rsplit(".", 1)[-1].startswith("bias") or name.endswith(".v.weight"):
            assert torch.equal(parameter, torch.zeros_like(parameter)), name
    for name in (
        "encoder.rnn.weight_hh_l0",
        "encoder.rnn.weight_hh_l0_reverse",
        "decoder.rnn.hidden_to_gates.0.weight",
    ):
        for block in parameters[name].chunk(3, dim=0):
            assert_close(block @ block.T, torch.eye(block.size(0)), atol=1e-5, rtol=0), name
    assert "encoder.rnn.bias_hh_l0_reverse" in parameters
    assert torch.equal(parameters["decoder.embedding.weight"][PAD_ID], torch.zeros(8, dtype=torch.float64))
    assert parameters["decoder.attention.scorer.key_proj.weight"].std() == pytest.approx(0.001, rel=0.2)
    assert parameters["decoder.generator.weight"].std() == pytest.approx(0.01, rel=0.2)


SCORER_FACTORIES = {
    "additive": partial(AdditiveScorer, hidden_size=12),
    "coverage": partial(CoverageScorer, hidden_size=12),
    "dot": DotScorer,
    "scaled_dot": ScaledDotScorer,
    "general": GeneralScorer,
    "concat": partial(ConcatScorer, hidden_size=12),
    "location": partial(LocationScorer, max_source_length=16),
}


@pytest.mark.parametrize("scorer", SCORER_FACTORIES)
@pytest.mark.parametrize(
    "decoder", [partial(BahdanauDecoder, readout_size=8), partial(LuongDecoder, attentional_size=16)]
)
def test_any_scorer_works_with_either_style(scorer, decoder):
    model = (
        Seq2Seq(
            encoder=partial(RNNEncoder, embedding_size=8, hidden_size=8),  # keys 16 = decoder state 16
            decoder=partial(decoder, embedding_size=8, hidden_size=16, scorer=SCORER_FACTORIES[scorer]),
            src_vocab_size=VOCAB,
            tgt_vocab_size=VOCAB,
        )
        .double()
        .eval()
    )
    batch = toy_batch(3)
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)
    assert torch.isfinite(logits).all()
    assert_close(attention.sum(-1), torch.ones(attention.shape[:2], dtype=torch.float64))
    memory, state = model.start(batch.src, batch.src_lengths)
    log_probs, _, _ = model.decode_step(batch.tgt_in[:, 0], state, memory)
    assert_close(log_probs, torch.log_softmax(logits[:, 0], -1))


def decode_teacher_forced(model, batch, target):
    """Steps `decode_step` along `target` (B, T); the state after every step."""
    memory, state = model.start(batch.src, batch.src_lengths)
    states = [state]
    for t in range(target.size(1)):
        _, state, _ = model.decode_step(target[:, t], state, memory)
        states.append(state)
    return states


@pytest.mark.parametrize("style", ["bahdanau", "bahdanau_coverage", "luong_input_feeding", "luong_2_layers"])
def test_state_stays_float32_under_autocast(style):
    model = build(style, dtype=torch.float32).eval()
    batch = toy_batch(2)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        states = decode_teacher_forced(model, batch, torch.randint(4, VOCAB, (2, 5)))
    for step, state in enumerate(states):
        assert {name: tensor.dtype for name, tensor in state.items()} == dict.fromkeys(state, torch.float32), step


@pytest.mark.parametrize("style", ["bahdanau", "luong_input_feeding"])
def test_state_under_bf16_autocast_stays_close_to_float64_over_a_long_target(style):
    model = build(style, dtype=torch.float32).eval()
    # Update gates z ~ 0.98, a GRU that carries its state along the sentence as trained decoders do:
    # then each step's rounding of the state accumulates (at init, z ~ 0.5 forgets it in a few steps).
    with torch.no_grad():
        for hidden_to_gates in model.decoder.rnn.hidden_to_gates:
            hidden_to_gates.bias.chunk(3)[1].add_(4.0)  # chunks: reset, update, candidate
    reference = copy.deepcopy(model).double()
    batch, target = toy_batch(3), torch.randint(4, VOCAB, (3, 40))
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            final = decode_teacher_forced(model, batch, target)[-1]
        expected = decode_teacher_forced(reference, batch, target)[-1]
    # bf16 gate matmuls alone give ~0.003 here; a state rounded to bf16 every step gives ~0.02.
    for name, tensor in final.items():
        assert (tensor.double() - expected[name]).abs().max() < 0.008, name


@pytest.mark.parametrize("share", [False, True], ids=["tied", "tied_and_shared"])
def test_a_tied_model_starts_near_the_uniform_distribution(share):
    """As output weights, N(0, 1) embedding rows would give logits of standard deviation ~sqrt(d)
    times the readout's: a first loss far above log V. Tied matrices start at N(0, 1/d)."""
    torch.manual_seed(0)
    size, vocab = 256, 1000
    model = Seq2Seq(
        encoder=partial(RNNEncoder, embedding_size=size, hidden_size=32),
        decoder=partial(
            BahdanauDecoder,
            embedding_size=size,
            hidden_size=64,
            readout_size=size,
            scorer=partial(AdditiveScorer, hidden_size=32),
            tie_embeddings=True,
        ),
        src_vocab_size=vocab,
        tgt_vocab_size=vocab,
        share_embeddings=share,
    )
    weight = model.decoder.generator.weight
    assert weight[PAD_ID].abs().sum() == 0
    assert weight[PAD_ID + 1 :].std().item() == pytest.approx(size**-0.5, rel=0.02)
    batch = collate(random_sentences(8), random_sentences(8), list(range(8)))
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID)
    assert abs(loss.item() - math.log(vocab)) < 0.1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "style",
    [
        "bahdanau",
        *(
            pytest.param(style, marks=pytest.mark.slow)
            for style in ("luong_input_feeding", "bahdanau_sparsemax", "luong_entmax15")
        ),
    ],
)
def test_a_compiled_teacher_forced_step_gives_the_eager_logits_and_gradients(style, device):
    """`compile_teacher_forcing` changes how the step runs, not what it computes; a copy of the
    compiled model steps with its own parameters. (float32: what training compiles.)"""
    torch.manual_seed(0)
    eager = build(style, dtype=torch.float32).to(device).eval()
    compiled = copy.deepcopy(eager)
    compiled.decoder.compile_teacher_forcing()
    for length in (5, 9):  # batches of other lengths
        batch = collate(
            random_sentences(6, max_length=length), random_sentences(6, max_length=length), list(range(6))
        ).to(device)
        outputs = [model(batch.src, batch.src_lengths, batch.tgt_in) for model in (eager, compiled)]
        for expected, actual in zip(*outputs):
            assert_close(actual, expected, rtol=1e-5, atol=1e-6)
        grads = [
            torch.autograd.grad(logits.square().sum(), list(model.parameters()))
            for model, (logits, _) in zip((eager, compiled), outputs)
        ]
        for expected, actual in zip(*grads):
            assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    copied = copy.deepcopy(compiled)
    with torch.no_grad():
        copied.decoder.generator.bias.add_(1.0)
    logits, _ = copied(batch.src, batch.src_lengths, batch.tgt_in)
    assert_close(logits, outputs[1][0] + 1.0, rtol=1e-5, atol=1e-5)


def test_under_bf16_autocast_the_compiled_step_computes_what_the_eager_one_does():
    """The compiled teacher-forced step gets its weights cast once per forward
    (`linear_weights_cast_once`): same logits and gradients as eager autocast, up to bf16
    rounding of fused elementwise work."""
    torch.manual_seed(0)
    eager = build("bahdanau", dtype=torch.float32).eval()
    compiled = copy.deepcopy(eager)
    compiled.decoder.compile_teacher_forcing()
    batch = collate(random_sentences(6, max_length=7), random_sentences(6, max_length=7), list(range(6)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs = [model(batch.src, batch.src_lengths, batch.tgt_in) for model in (eager, compiled)]
        grads = [
            torch.autograd.grad(logits.float().square().sum(), list(model.parameters()))
            for model, (logits, _) in zip((eager, compiled), outputs)
        ]
    for expected, actual in zip(*outputs):
        assert_close(actual.float(), expected.float(), rtol=0.02, atol=0.02)
    for expected, actual in zip(*grads):
        assert actual.dtype == torch.float32
        assert_close(actual, expected, rtol=0.05, atol=0.05 * expected.abs().max().item())


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@torch.no_grad()
def test_compiled_decoding_steps_as_the_eager_decoder_does(precision, device):
    """`compile_decoding`: the compiled step (its weights cast once per batch, in the memory)
    gives the eager step's logits, attention and state, step after step, for batches of two
    sizes; every state stays in the parameters' dtype."""
    torch.manual_seed(0)
    eager = build("bahdanau", dtype=torch.float32).to(device).eval()
    compiled = copy.deepcopy(eager)
    compiled.decoder.compile_decoding()
    tolerance = {"rtol": 0.02, "atol": 0.02} if precision == "bf16" else {"rtol": 1e-5, "atol": 1e-6}
    for size in (5, 8):
        batch = collate(random_sentences(size), random_sentences(size), list(range(size))).to(device)
        with autocast(device, precision):
            runs = [(model, *model.start(batch.src, batch.src_lengths)) for model in (eager, compiled)]
            assert bool(runs[1][1].step_weights) == (precision == "bf16")  # cast only under autocast
            for t in range(batch.tgt_in.size(1)):
                steps = [model.decoder.decode_step(batch.tgt_in[:, t], state, memory) for model, memory, state in runs]
                (expected, expected_state, expected_weights), (actual, actual_state, actual_weights) = steps
                assert_close(actual.float(), expected.float(), **tolerance)
                assert_close(actual_weights.float(), expected_weights.float(), **tolerance)
                assert actual_state["hidden"].dtype == torch.float32
                assert_close(actual_state["hidden"], expected_state["hidden"], **tolerance)
                runs = [(model, memory, state) for (model, memory, _), (_, state, _) in zip(runs, steps)]
