"""The paper-size experiments (`rnnsearch50`, `luong2015`): the sizes and training settings the
papers give, and a few CPU updates at those sizes (the loss is finite and every weight moves)."""

import math

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from nmt.modules.attention import AdditiveScorer, GeneralScorer
from nmt.modules.cells import DeepOutput, LSTMStack
from nmt.modules.decoder import BahdanauDecoder, LuongDecoder
from nmt.modules.dropout import Dropout
from nmt.training.experiment import build_model, build_searches, build_trainer, load_data, parameter_count
from nmt.training.run_layout import RunLayout
from nmt.training.schedulers import ExponentialDecay
from tests.test_configs import compose_train

SRC_VOCAB, TGT_VOCAB = 30, 40
MULTI30K_PAIRS = 28_994  # Multi30k's training pairs with both sides within max_length=50 (the 8k tokenizer)


def multi30k_epoch(batch_sentences: int) -> int:
    """Updates per epoch of Multi30k: batches are cut by sentences alone (the token budget never binds)."""
    return math.ceil(MULTI30K_PAIRS / batch_sentences)


def gru_parameters(inputs: int, units: int) -> int:
    """One GRU (one direction): input and recurrent matrices of the 3 gates, and a bias for each."""
    return 3 * units * (inputs + units) + 2 * 3 * units


def rnnsearch50_parameters(src_vocab: int, tgt_vocab: int) -> int:
    """Bahdanau et al. (2015), appendix A, counted by hand: m = 620, n = n' = 1000, l_out = 500."""
    m, n, n_align, l_out = 620, 1000, 1000, 500
    encoder = src_vocab * m + 2 * gru_parameters(m, n)  # embeddings, forward and backward GRU
    init = n * n + n  # s(0) = tanh(W_s backward h(1))
    decoder_gru = gru_parameters(m + 2 * n, n)  # input [E y(i-1); c(i)]
    alignment = n * n_align + 2 * n * n_align + n_align  # W_a, U_a, v_a (no biases)
    deep_output = (n + 2 * n + m) * 2 * l_out + 2 * l_out  # t~ = U_o s + C_o c + V_o E y (2l units), maxout to l_out
    output = l_out * tgt_vocab + tgt_vocab  # W_o
    return encoder + tgt_vocab * m + init + decoder_gru + alignment + deep_output + output


def paper_experiment(name: str):
    """The experiment's config (on Multi30k, sentences of up to 50 tokens, as both papers) and its model."""
    cfg = compose_train(f"+experiment={name}")
    assert cfg.data._target_.endswith("Multi30k") and cfg.max_length == 50
    return cfg, instantiate(cfg.model, src_vocab_size=SRC_VOCAB, tgt_vocab_size=TGT_VOCAB)


def test_rnnsearch50_has_the_papers_sizes_and_training_settings():
    cfg, model = paper_experiment("rnnsearch50")
    encoder, decoder = model.encoder, model.decoder
    assert encoder.embedding.embedding_dim == 620 and decoder.embedding.embedding_dim == 620
    assert encoder.rnn.bidirectional and (encoder.rnn.hidden_size, encoder.rnn.num_layers) == (1000, 1)
    assert isinstance(decoder, BahdanauDecoder) and (decoder.hidden_size, decoder.num_layers) == (1000, 1)
    scorer = decoder.attention.scorer
    assert isinstance(scorer, AdditiveScorer) and scorer.v.in_features == 1000
    assert isinstance(decoder.deep_output, DeepOutput) and decoder.deep_output.maxout
    assert decoder.deep_output.linear.out_features == 1000 and decoder.generator.in_features == 500
    assert parameter_count(model) == rnnsearch50_parameters(SRC_VOCAB, TGT_VOCAB)
    optimizer = instantiate(cfg.optim)(model.parameters())
    assert isinstance(optimizer, torch.optim.Adadelta)
    assert (optimizer.defaults["rho"], optimizer.defaults["eps"]) == (0.95, 1e-6)
    assert cfg.batching.max_sentences == 80 and cfg.batching.max_tokens >= 80 * (cfg.max_length + 1)
    assert cfg.trainer.clip_norm == 1.0 and cfg.model.init == "bahdanau" and cfg.scheduler is None
    assert cfg.trainer.valid_every == multi30k_epoch(80)


def test_luong2015_has_the_papers_sizes_and_training_settings():
    cfg, model = paper_experiment("luong2015")
    encoder, decoder = model.encoder, model.decoder
    assert encoder.embedding.embedding_dim == 1000 and decoder.embedding.embedding_dim == 1000
    assert encoder.rnn.bidirectional and (encoder.rnn.hidden_size, encoder.rnn.num_layers) == (500, 4)
    assert encoder.output_size == 1000  # the keys: as wide as the decoder's states
    assert isinstance(decoder, LuongDecoder) and (decoder.hidden_size, decoder.num_layers) == (1000, 4)
    assert len(decoder.rnn.hidden_to_gates) == 4 and decoder.attentional_size == 1000
    assert isinstance(encoder.rnn, torch.nn.LSTM) and isinstance(decoder.rnn, LSTMStack)  # their cells
    assert decoder.input_feeding and decoder.rnn.dynamic_to_gates.in_features == 1000  # h~(t-1) fed back
    assert isinstance(decoder.attention.scorer, GeneralScorer)
    assert {m.p for m in model.modules() if isinstance(m, Dropout)} == {0.2} and encoder.rnn.dropout == 0.2
    optimizer = instantiate(cfg.optim)(model.parameters())
    assert isinstance(optimizer, torch.optim.SGD)
    assert (optimizer.defaults["lr"], optimizer.defaults["momentum"]) == (1.0, 0.0)
    assert cfg.batching.max_sentences == 128 and cfg.batching.max_tokens >= 128 * (cfg.max_length + 1)
    assert cfg.trainer.clip_norm == 5.0 and cfg.trainer.max_epochs == 12


def test_luong2015_halves_the_lr_every_epoch_after_the_eighth():
    cfg = compose_train("+experiment=luong2015")
    epoch = multi30k_epoch(cfg.batching.max_sentences)
    assert cfg.scheduler.decay_steps == cfg.trainer.valid_every == epoch
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.optim.lr)
    scheduler = instantiate(cfg.scheduler)(optimizer)
    assert isinstance(scheduler, ExponentialDecay)
    lrs = []  # the lr of every update of the 12 epochs, as the trainer steps the schedule
    for _ in range(cfg.trainer.max_epochs * epoch):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    per_epoch = [set(lrs[e * epoch : (e + 1) * epoch]) for e in range(cfg.trainer.max_epochs)]
    assert per_epoch == [{1.0}] * 8 + [{0.5}, {0.25}, {0.125}, {0.0625}]


@pytest.mark.parametrize("experiment", ["rnnsearch50", "luong2015"])
def test_paper_sized_models_train_a_few_updates_on_the_cpu(experiment, tmp_path):
    # Batches of 8 sentences keep this a smoke test of the model's size on one CPU thread; the
    # paper's batch size is checked above.
    cfg = compose_train(
        f"+experiment={experiment}",
        "data=toy",
        f"data_root={tmp_path}/data",
        "data.num_train=40",
        "data.num_valid=4",
        "data.num_test=4",
        "batching.max_sentences=8",
        "device=cpu",
        "trainer.progress_bar=false",
    )
    layout, device = RunLayout(tmp_path / "run"), torch.device("cpu")
    data = load_data(cfg, layout)
    model = build_model(cfg, *data.tokenizers, device)
    trainer = build_trainer(
        cfg, model, data.train_data, data.valid_data, data.tokenizers, build_searches(cfg)[0], layout, device
    )
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for indices in data.train_data.batch_order(0)[:3]:
        loss, grad_norm = trainer.train_step(
            [data.train_data.collate(indices)], [1.0], data.train_data.target_tokens(indices)
        )
        assert math.isfinite(loss) and math.isfinite(grad_norm) and loss > 0
    trainer.board.close()
    # The paper's initialization starts v_a at zero, and Adadelta's first updates are about the
    # size of the gradient itself: W_a and U_a, whose gradients are scaled by v_a (~1e-9 after
    # three updates), move by less than float32 resolves. They alone may stay; every other weight moves.
    scorer = model.decoder.attention.scorer
    slow = {scorer.query_proj.weight, scorer.key_proj.weight} if cfg.model.init == "bahdanau" else set()
    unchanged = {p for name, p in model.named_parameters() if torch.equal(p, before[name])}
    assert unchanged <= slow
