import math

import pytest
import torch

from nmt.data.batching import ParallelData
from nmt.experiment import seed_everything
from nmt.search import greedy_search
from nmt.tokenizer import Tokenizer, TokenizerConfig, build_tokenizers
from nmt.training import Trainer, TrainerConfig, ValidationData, coverage_penalty
from tests.conftest import random_sentences, tiny_model
from tests.test_sources import write_toy


@pytest.fixture(scope="module")
def target_tokenizer(tmp_path_factory) -> Tokenizer:
    root = tmp_path_factory.mktemp("tok")
    files = write_toy(root / "toy")["train"]
    return build_tokenizers(TokenizerConfig(vocab_size=60), files.src, files.tgt, root / "cache", root / "run")[1]


def make_trainer(tmp_path, tokenizer, dropout: float = 0.0, **config) -> Trainer:
    model = tiny_model(dropout=dropout, dtype=torch.float32)
    src, tgt = random_sentences(16), random_sentences(16)
    return Trainer(
        model=model, optimizer=torch.optim.Adam(model.parameters(), lr=0.01),
        train_data=ParallelData(src, tgt, max_tokens=80, seed=0),
        valid_data=ValidationData(src[:4], tgt[:4], tokenizer.decode(tgt[:4])),
        tgt_tokenizer=tokenizer, search=greedy_search, config=TrainerConfig(**{"max_steps": 4, **config}),
        run_dir=tmp_path, checkpoint_extras={"config": {"seed": 0}}, device=torch.device("cpu"))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_train_step_lowers_the_loss_in_every_precision(tmp_path, target_tokenizer, precision):
    trainer = make_trainer(tmp_path, target_tokenizer, precision=precision)
    batch = next(iter(trainer.train_data.epoch(0)))
    losses = [trainer.train_step(batch)[0] for _ in range(30)]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.7 * losses[0]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32


def test_fp16_scaler_unscales_before_clipping(tmp_path, target_tokenizer):
    trainer = make_trainer(tmp_path, target_tokenizer, precision="fp16", clip_norm=1e-3)
    assert trainer.scaler.is_enabled()
    batch = next(iter(trainer.train_data.epoch(0)))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    _, grad_norm = trainer.train_step(batch)
    assert grad_norm < 1e3  # the true norm, not one multiplied by the scale (65536)
    step = max(float((p.detach() - b).abs().max()) for p, b in zip(trainer.model.parameters(), before))
    assert 0 < step < 0.05  # Adam's step is bounded by lr (0.01) even with a tiny clip


def test_fit_writes_checkpoints_and_events(tmp_path, target_tokenizer):
    trainer = make_trainer(tmp_path, target_tokenizer, max_steps=6, valid_every=3, log_every=2)
    best = trainer.fit()
    assert best.is_file() and (tmp_path / "checkpoints" / "last.pt").is_file()
    assert trainer.step == 6
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_config_needs_a_limit_and_a_known_precision():
    with pytest.raises(ValueError, match="at least one"):
        TrainerConfig()
    with pytest.raises(ValueError, match="precision"):
        TrainerConfig(max_steps=1, precision="fp8")


def test_the_seed_makes_cpu_runs_repeatable(tmp_path, target_tokenizer):
    weights = []
    for name in ("a", "b"):
        seed_everything(5)
        trainer = make_trainer(tmp_path / name, target_tokenizer, dropout=0.3, max_steps=5, valid_every=5)
        trainer.fit()
        weights.append(trainer.model.state_dict())
    for key, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][key]), key


def test_coverage_penalty_is_the_overlap_of_attention_with_its_past():
    attention = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]])  # (1, T=3, S=2)
    # coverage before each step: [0, 0], [1, 0], [1.5, 0.5]; min with attention: 0, 0.5, 0.5
    assert float(coverage_penalty(attention, torch.tensor([[True, True, True]]))) == pytest.approx(1.0)
    assert float(coverage_penalty(attention, torch.tensor([[True, True, False]]))) == pytest.approx(0.5)
