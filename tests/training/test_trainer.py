import contextlib
import math
import random
import warnings as warnings_module
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.testing import assert_close

from nmt.checkpoint import load_checkpoint
from nmt.data.batching import ParallelData
from nmt.data.indexed import IndexedTokens
from nmt.data.tokenizer import Tokenizer, TokenizerConfig, build_tokenizers
from nmt.decoding.search import GreedySearch
from nmt.training import trainer as training_module
from nmt.training.checkpointing import check_same_settings
from nmt.training.loss import coverage_penalty
from nmt.training.run_layout import RunLayout
from nmt.training.trainer import Trainer, TrainerConfig, clip_gradients
from nmt.training.validation import ValidationData
from nmt.utils import precision as precision_module
from nmt.utils.errors import UserError
from nmt.utils.precision import PrecisionChoice
from nmt.utils.rng import seed_everything
from tests.conftest import DEVICES, random_sentences, tiny_model
from tests.data.test_sources import write_toy


@pytest.fixture(scope="module")
def target_tokenizer(tmp_path_factory) -> Tokenizer:
    root = tmp_path_factory.mktemp("tok")
    files = write_toy(root / "toy")["train"]
    return build_tokenizers(TokenizerConfig(vocab_size=60), files.src, files.tgt, root / "cache", root / "run")[1]


def make_trainer(
    tmp_path,
    tokenizer,
    dropout: float = 0.0,
    dtype=torch.float32,
    scheduler=None,
    run_config=None,
    optimizer=partial(torch.optim.Adam, lr=0.01),
    device: str = "cpu",
    **config,
) -> Trainer:
    model = tiny_model(dropout=dropout, dtype=dtype).to(device)
    src, tgt = random_sentences(16), random_sentences(16)
    optimizer = optimizer(model.parameters())
    return Trainer(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler(optimizer) if scheduler else None,
        train_data=ParallelData.from_lists(src, tgt, max_tokens=80, seed=0),
        valid_data=ValidationData(
            IndexedTokens.from_lists(src[:4]),
            IndexedTokens.from_lists(tgt[:4]),
            tokenizer.decode(tgt[:4]),
            tokenizer.decode(src[:4]),
        ),
        tokenizers=(tokenizer, tokenizer),
        search=GreedySearch(),
        config=TrainerConfig(**{"max_steps": 4, "progress_bar": False, "precision": "fp32", **config}),
        layout=RunLayout(tmp_path),
        run_config=run_config or {"seed": 0, "trainer": {"precision": "fp32", "accumulate": 1}},
        device=torch.device(device),
    )


def first_batch(trainer: Trainer) -> tuple[list, list, int]:
    indices = trainer.train_data.batch_order(0)[0]
    return [trainer.train_data.collate(indices).to(trainer.device)], [1.0], trainer.train_data.target_tokens(indices)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_train_step_lowers_the_loss_in_every_precision(tmp_path, target_tokenizer, precision, device):
    trainer = make_trainer(tmp_path, target_tokenizer, precision=precision, device=device)
    batch = first_batch(trainer)
    losses = [trainer.train_step(*batch)[0] for _ in range(30)]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.7 * losses[0]
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # master weights stay fp32


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_the_configured_fused_adam_updates_like_the_per_parameter_one(tmp_path, target_tokenizer, precision):
    """configs/optim/adam.yaml asks for torch's fused Adam (one kernel for all parameters, faster
    on this CPU); under every precision, grad scaler included, it follows the per-parameter loop."""
    optim = OmegaConf.load(Path(__file__).parents[2] / "configs" / "optim" / "adam.yaml")
    trainers = []
    for name, optimizer in [("fused", instantiate(optim)), ("loop", partial(torch.optim.Adam, lr=optim.lr))]:
        random.seed(0)
        torch.manual_seed(0)
        trainers.append(make_trainer(tmp_path / name, target_tokenizer, precision=precision, optimizer=optimizer))
    fused, loop = trainers
    assert fused.optimizer.defaults["fused"] and not loop.optimizer.defaults["fused"]
    for _ in range(5):
        losses = [trainer.train_step(*first_batch(trainer))[0] for trainer in trainers]
        assert losses[0] == pytest.approx(losses[1], rel=1e-4)
    for (name, a), b in zip(fused.model.named_parameters(), loop.model.parameters()):
        assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("max_norm", [0.5, 1e6], ids=["clipping", "not clipping"])
def test_clip_gradients_does_what_torch_clip_grad_norm_does(max_norm):
    """The same norm and bitwise the same gradients as torch's own function, whether it clips
    or not (the multiply by 1 it skips changes nothing), with a parameter that has no gradient."""
    torch.manual_seed(0)
    shapes = [(300, 20), (20,), (7, 3, 5), (4,)]
    ours = [torch.nn.Parameter(torch.randn(shape)) for shape in shapes]
    theirs = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    for mine, other in zip(ours[:-1], theirs[:-1]):
        mine.grad = torch.randn_like(mine) * 0.1
        other.grad = mine.grad.clone()
    norm = clip_gradients(ours, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm)
    assert torch.equal(norm, expected)
    for mine, other in zip(ours[:-1], theirs[:-1]):
        assert torch.equal(mine.grad, other.grad)
    assert ours[-1].grad is None
    clipped = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours[:-1]])).item()
    assert clipped == pytest.approx(min(float(expected), max_norm), rel=1e-5)


def test_fp16_scaler_unscales_before_clipping(tmp_path, target_tokenizer):
    trainer = make_trainer(tmp_path, target_tokenizer, precision="fp16", clip_norm=1e-3)
    assert trainer.scaler.is_enabled()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    _, grad_norm = trainer.train_step(*first_batch(trainer))
    assert grad_norm < 1e3  # the true norm, not one multiplied by the scale (65536)
    step = max(float((p.detach() - b).abs().max()) for p, b in zip(trainer.model.parameters(), before))
    assert 0 < step < 0.05  # Adam's step is bounded by lr (0.01) even with a tiny clip


def test_accumulated_batches_update_like_one_batch_of_all_their_sentences(tmp_path, target_tokenizer):
    """Two batches accumulated, normalized by all their tokens, equal one merged batch (float64)."""
    merged = make_trainer(tmp_path / "a", target_tokenizer, dtype=torch.float64)
    split = make_trainer(tmp_path / "b", target_tokenizer, dtype=torch.float64)
    split.model.load_state_dict(merged.model.state_dict())
    data = merged.train_data
    first, second = data.batch_order(0)[:2]
    merged.train_step([data.collate(first + second)], [1.0], data.target_tokens(first + second))
    split.train_step([data.collate(first), data.collate(second)], [1.0, 1.0], data.target_tokens(first + second))
    for (name, a), b in zip(merged.model.named_parameters(), split.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)


def test_fit_writes_checkpoints_events_and_keeps_the_last_k(tmp_path, target_tokenizer):
    trainer = make_trainer(tmp_path, target_tokenizer, max_steps=8, valid_every=2, log_every=2, keep_last=2)
    best = trainer.fit()
    layout = RunLayout(tmp_path)
    assert best == layout.best_checkpoint and best.is_file() and layout.last_checkpoint.is_file()
    assert [p.name for p in layout.step_checkpoints()] == ["step-6.pt", "step-8.pt"]
    assert trainer.progress.step == 8
    last = load_checkpoint(layout.last_checkpoint)
    assert last["training"]["progress"]["step"] == 8 and "training" not in load_checkpoint(best)
    assert list(layout.tensorboard.glob("events.out.tfevents.*"))


def test_config_needs_a_limit_a_known_precision_and_metric():
    with pytest.raises(ValueError, match="at least one"):
        TrainerConfig()
    with pytest.raises(ValueError, match="precision"):
        TrainerConfig(max_steps=1, precision="fp8")
    with pytest.raises(ValueError, match="trainer.metric='bleu4'"):
        TrainerConfig(max_steps=1, metric="bleu4")


def test_the_seed_makes_cpu_runs_repeatable(tmp_path, target_tokenizer):
    weights = []
    for name in ("a", "b"):
        seed_everything(5)
        trainer = make_trainer(tmp_path / name, target_tokenizer, dropout=0.3, max_steps=5, valid_every=5)
        trainer.fit()
        weights.append(trainer.model.state_dict())
    for key, tensor in weights[0].items():
        assert torch.equal(tensor, weights[1][key]), key


@pytest.mark.parametrize("device", DEVICES)
def test_resuming_from_last_continues_bitwise(tmp_path, target_tokenizer, device):
    """In-process resume (the SIGKILL version is tests/training/test_resume.py): 3 + 3 steps == 6 steps.

    On a GPU, bitwise takes `torch.use_deterministic_algorithms(True)` (deterministic index_add
    for the gradients of `index_select`, and cuDNN's deterministic algorithms) and a fixed cuBLAS
    workspace (`CUBLAS_WORKSPACE_CONFIG=:4096:8`, set in conftest); the dropout masks come from
    the CUDA generator, whose state the checkpoint restores."""
    with deterministic_algorithms() as warnings:
        seed_everything(3)
        whole = make_trainer(
            tmp_path / "whole", target_tokenizer, dropout=0.3, max_steps=6, valid_every=3, device=device
        )
        whole.fit()
        seed_everything(3)
        make_trainer(tmp_path / "parts", target_tokenizer, dropout=0.3, max_steps=3, valid_every=3, device=device).fit()
        seed_everything(99)  # another seed: the weights and every generator must come from the checkpoint
        random.seed(3)  # ... but the same data (random_sentences draws from Python's generator)
        resumed = make_trainer(
            tmp_path / "parts", target_tokenizer, dropout=0.3, max_steps=6, valid_every=3, resume="auto", device=device
        )
        assert resumed.progress.step == 3
        resumed.fit()
    for (name, a), b in zip(whole.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(a, b), f"{name}; non-deterministic operations: {warnings or 'none'}"


def test_a_resumed_run_keeps_the_precision_it_started_with(tmp_path, target_tokenizer, monkeypatch):
    """`auto` chose bf16 where the run started; resumed on a machine where `auto` would choose
    fp32, it goes on in bf16 (the checkpoint records the choice)."""
    monkeypatch.setattr(precision_module, "native_16_bit", lambda *_: True)
    config = {"seed": 0, "trainer": {"precision": "auto", "accumulate": 1}}
    first = make_trainer(tmp_path, target_tokenizer, precision="auto", max_steps=2, valid_every=2, run_config=config)
    assert first.precision.precision == "bf16" and first.scaler.is_enabled() is False
    first.fit()
    assert load_checkpoint(first.layout.last_checkpoint)["precision"] == "bf16"
    assert load_checkpoint(first.layout.best_checkpoint)["precision"] == "bf16"
    monkeypatch.setattr(precision_module, "native_16_bit", lambda *_: False)
    resumed = make_trainer(
        tmp_path, target_tokenizer, precision="auto", max_steps=4, valid_every=2, resume="auto", run_config=config
    )
    assert resumed.precision == PrecisionChoice("bf16", "auto, as the resumed run started")
    fresh = make_trainer(tmp_path / "fresh", target_tokenizer, precision="auto", run_config=config)
    assert fresh.precision.precision == "fp32"


@contextlib.contextmanager
def deterministic_algorithms() -> Iterator[list[str]]:
    """Inside, torch's deterministic algorithms; yields the warnings of operations that have none
    (warn_only: the comparison then names them rather than stopping at the first)."""
    enabled, cudnn = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    with warnings_module.catch_warnings(record=True) as caught:
        warnings_module.simplefilter("always")
        found: list[str] = []
        try:
            yield found
        finally:
            found += sorted({str(w.message).splitlines()[0] for w in caught if "deterministic" in str(w.message)})
            torch.use_deterministic_algorithms(enabled)
            torch.backends.cudnn.deterministic = cudnn


class PoisonedLoss:
    """Replaces the loss with NaN on the given calls (counted from 1)."""

    def __init__(self, bad_calls: set[int]) -> None:
        self.bad_calls, self.calls = bad_calls, 0
        self.original = training_module.token_loss_sum

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        self.calls += 1
        loss = self.original(*args, **kwargs)
        return loss * float("nan") if self.calls in self.bad_calls else loss


def test_a_non_finite_loss_skips_the_update_and_is_counted(tmp_path, target_tokenizer, monkeypatch):
    poisoned = PoisonedLoss({3})
    monkeypatch.setattr(training_module, "token_loss_sum", poisoned)
    trainer = make_trainer(tmp_path, target_tokenizer, max_steps=5, valid_every=5)
    weights_before_each_step = []
    original_step = trainer.train_step

    def remember_weights(*args):
        weights_before_each_step.append({n: p.detach().clone() for n, p in trainer.model.named_parameters()})
        return original_step(*args)

    trainer.train_step = remember_weights
    trainer.fit()
    assert trainer.progress.skipped_steps == 1 and trainer.progress.step == 5 and poisoned.calls == 6
    before, after = weights_before_each_step[2], weights_before_each_step[3]  # around the poisoned 3rd call
    for name, tensor in before.items():
        assert torch.equal(tensor, after[name]), name  # the skipped update left every weight untouched
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_non_finite_updates_in_a_row_stop_the_run_and_keep_the_checkpoint(tmp_path, target_tokenizer, monkeypatch):
    monkeypatch.setattr(training_module, "token_loss_sum", PoisonedLoss(set(range(5, 100))))
    trainer = make_trainer(tmp_path, target_tokenizer, max_steps=50, valid_every=2, max_bad_steps=3)
    saved_before = None
    with pytest.raises(UserError, match=r"3 updates in a row had a non-finite loss.*last\.pt is the last good"):
        original_save = trainer._save

        def save(metrics, best):
            nonlocal saved_before
            original_save(metrics, best)
            saved_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}

        trainer._save = save
        trainer.fit()
    last = load_checkpoint(RunLayout(tmp_path).last_checkpoint)
    assert last["step"] == 4 and trainer.progress.skipped_steps == 3
    for name, tensor in last["model"].items():
        if name in saved_before:
            assert torch.equal(tensor, saved_before[name]) and torch.isfinite(tensor).all(), name


def test_best_checkpoint_ties_go_to_the_lower_validation_loss(tmp_path, target_tokenizer):
    trainer = make_trainer(tmp_path, target_tokenizer)
    assert trainer._improves({"bleu": 0.0, "loss": 3.0})
    trainer.progress.best = {"bleu": 0.0, "loss": 3.0}
    assert trainer._improves({"bleu": 0.0, "loss": 2.0})
    assert not trainer._improves({"bleu": 0.0, "loss": 3.5})
    assert trainer._improves({"bleu": 0.1, "loss": 9.0})


def test_patience_stops_training_early(tmp_path, target_tokenizer, monkeypatch):
    metrics = iter(
        [{"loss": 1.0, "ppl": 2.7, "bleu": 5.0, "chrf": 1.0}]
        + [{"loss": 1.0, "ppl": 2.7, "bleu": 4.0, "chrf": 1.0}] * 10
    )
    trainer = make_trainer(tmp_path, target_tokenizer, max_steps=100, valid_every=2, patience=2)
    monkeypatch.setattr(trainer, "_validate", lambda: next(metrics))
    trainer.fit()
    assert trainer.progress.stopped_early and trainer.progress.step == 6 and trainer.progress.best_step == 2


def test_a_plateau_schedule_steps_on_the_validation_metric(tmp_path, target_tokenizer, monkeypatch):
    from nmt.training.schedulers import ReduceOnPlateau

    metrics = iter([{"loss": 1.0, "ppl": 2.7, "bleu": 5.0, "chrf": 1.0}] * 10)
    trainer = make_trainer(
        tmp_path,
        target_tokenizer,
        max_steps=8,
        valid_every=2,
        scheduler=lambda opt: ReduceOnPlateau(opt, metric="bleu", factor=0.5, patience=1),
    )
    monkeypatch.setattr(trainer, "_validate", lambda: next(metrics))
    trainer.fit()
    # validations at steps 2, 4, 6, 8 never improve on the first; torch's patience 1 halves the
    # lr at the second bad one (step 6) and then starts counting again
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.005, rel=1e-12)


def record_update_lrs(trainer: Trainer) -> list[float]:
    """The lr of every update the trainer makes from now on (filled as it trains)."""
    lrs, step = [], trainer.scaler.step  # the trainer steps the optimizer through its scaler

    def recording_step(optimizer, *args, **kwargs):
        lrs.append(optimizer.param_groups[0]["lr"])
        return step(optimizer, *args, **kwargs)

    trainer.scaler.step = recording_step
    return lrs


def test_a_budget_schedule_decays_to_zero_at_the_step_limit(tmp_path, target_tokenizer):
    from nmt.training.schedulers import BudgetDecay

    trainer = make_trainer(tmp_path, target_tokenizer, max_steps=8, valid_every=8, scheduler=BudgetDecay)
    lrs = record_update_lrs(trainer)
    trainer.fit()
    assert lrs == pytest.approx([0.01 * (1 - n / 8) for n in range(8)])  # update n + 1: n of 8 spent


def test_a_budget_schedule_follows_the_clock_under_a_minute_limit(tmp_path, target_tokenizer, monkeypatch):
    """Each update takes 9 s of a fake clock: a 1-minute budget ends after 7 updates (63 s), and
    the lr of each is the optimizer's times the share of the minute still left before it."""
    from nmt.training.schedulers import BudgetDecay

    clock = [1000.0]
    monkeypatch.setattr(training_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    trainer = make_trainer(
        tmp_path, target_tokenizer, max_steps=None, max_minutes=1, valid_every=100, scheduler=BudgetDecay
    )
    lrs = record_update_lrs(trainer)
    step = trainer.train_step

    def nine_seconds_step(*args):
        clock[0] += 9.0
        return step(*args)

    trainer.train_step = nine_seconds_step
    trainer.fit()
    assert trainer.progress.step == 7
    assert lrs == pytest.approx([0.01 * (1 - 9 * n / 60) for n in range(7)])


@pytest.mark.parametrize("averaged_bleu", [6.0, 4.0], ids=["average_better", "average_worse"])
def test_the_average_of_the_last_checkpoints_becomes_best_only_if_it_validates_better(
    tmp_path, target_tokenizer, monkeypatch, averaged_bleu
):
    validations = iter([5.0, averaged_bleu])  # the last step's, then the average's
    monkeypatch.setattr(
        training_module,
        "validate",
        lambda *args: SimpleNamespace(metrics={"loss": 1.0, "ppl": 2.7, "bleu": next(validations), "chrf": 1.0}),
    )
    trainer = make_trainer(
        tmp_path,
        target_tokenizer,
        max_steps=6,
        save_every=2,
        valid_every=6,
        keep_last=3,
        average_last=3,
        attention_samples=0,
    )
    trainer.fit()
    layout = trainer.layout
    steps = [load_checkpoint(layout.step_checkpoint(step))["model"] for step in (2, 4, 6)]
    best = load_checkpoint(layout.best_checkpoint)
    last_progress = load_checkpoint(layout.last_checkpoint)["training"]["progress"]
    if averaged_bleu > 5.0:
        for name, tensor in best["model"].items():
            mean = sum(step[name].double() for step in steps) / 3
            assert torch.allclose(tensor.double(), mean, rtol=0, atol=1e-7), name
        assert trainer.progress.best_averaged == last_progress["best_averaged"] == [2, 4, 6]
        assert best["valid"]["bleu"] == 6.0
    else:
        for name, tensor in best["model"].items():
            assert torch.equal(tensor, steps[-1][name]), name
        assert trainer.progress.best_averaged == last_progress["best_averaged"] == []
    assert not torch.equal(steps[0]["decoder.generator.weight"], steps[-1]["decoder.generator.weight"])
    # the model itself keeps its last trained weights
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, steps[-1][name]), name


def test_averaging_needs_two_to_keep_last_checkpoints():
    with pytest.raises(ValueError, match="trainer.average_last=6: use 2 to trainer.keep_last \\(5\\)"):
        TrainerConfig(max_steps=1, average_last=6)
    with pytest.raises(ValueError, match="trainer.average_last=1"):
        TrainerConfig(max_steps=1, average_last=1)


def test_coverage_penalty_is_the_overlap_of_attention_with_its_past():
    attention = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]])  # (1, T=3, S=2)
    # coverage before each step: [0, 0], [1, 0], [1.5, 0.5]; min with attention: 0, 0.5, 0.5
    assert float(coverage_penalty(attention, torch.tensor([[True, True, True]]))) == pytest.approx(1.0)
    assert float(coverage_penalty(attention, torch.tensor([[True, True, False]]))) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "device", [pytest.param("cpu", marks=pytest.mark.slow), pytest.param("cuda", marks=pytest.mark.cuda)]
)
def test_a_compiled_forward_trains_like_the_eager_one(tmp_path, target_tokenizer, device):
    """`trainer.compile`: the decoder step, the loss and (on the CPU) the encoder's recurrence
    through `torch.compile`, the same updates as eager."""
    eager = make_trainer(tmp_path / "eager", target_tokenizer, device=device)
    compiled = make_trainer(tmp_path / "compiled", target_tokenizer, compile=True, device=device)
    compiled.model.load_state_dict(eager.model.state_dict())
    assert compiled.model.encoder.compiled_recurrence and not eager.model.encoder.compiled_recurrence
    batch = first_batch(eager)
    for _ in range(3):
        assert compiled.train_step(*batch)[0] == pytest.approx(eager.train_step(*batch)[0], rel=1e-4)
    for (name, a), b in zip(eager.model.named_parameters(), compiled.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5, msg=name)


@pytest.mark.parametrize("device", DEVICES)
def test_an_fp16_overflow_is_skipped_by_the_scaler_and_lowers_the_scale(tmp_path, target_tokenizer, device):
    """A scale so large that the fp16 gradients overflow: the update leaves every weight as it
    was and the scale is halved; with the scale lowered, training goes on."""
    trainer = make_trainer(tmp_path, target_tokenizer, precision="fp16", device=device)
    trainer.scaler = torch.amp.GradScaler(device, init_scale=2.0**40)
    before = [p.detach().clone() for p in trainer.model.parameters()]
    batch = first_batch(trainer)
    loss, grad_norm = trainer.train_step(*batch)
    assert math.isfinite(loss) and not math.isfinite(grad_norm)
    assert all(torch.equal(p, b) for p, b in zip(trainer.model.parameters(), before))
    assert trainer.scaler.get_scale() == 2.0**39
    trainer.scaler = torch.amp.GradScaler(device)  # a normal scale: the updates happen again
    losses = [trainer.train_step(*batch)[0] for _ in range(10)]
    assert losses[-1] < losses[0]


def test_fp16_overflows_are_skipped_without_counting_toward_the_stop(tmp_path, target_tokenizer):
    trainer = make_trainer(tmp_path, target_tokenizer, precision="fp16", max_bad_steps=1)
    scale = trainer.scaler.get_scale()
    trainer._skip(loss=2.5, grad_norm=float("inf"))  # finite loss, overflowing fp16 gradients
    assert trainer.progress.skipped_steps == 1 and trainer.progress.bad_steps_in_a_row == 0
    assert trainer.scaler.get_scale() == scale  # train_step's scaler.update() lowers it, not _skip
    with pytest.raises(UserError, match="1 updates in a row"):
        trainer._skip(loss=float("nan"), grad_norm=float("nan"))


def test_resuming_into_a_new_run_directory_brings_the_best_checkpoint(tmp_path, target_tokenizer, monkeypatch):
    metrics = iter(
        [{"loss": 1.0, "ppl": 2.7, "bleu": 5.0, "chrf": 1.0}]
        + [{"loss": 2.0, "ppl": 7.4, "bleu": 1.0, "chrf": 1.0}] * 10
    )
    first = make_trainer(tmp_path / "first", target_tokenizer, max_steps=4, valid_every=2)
    monkeypatch.setattr(first, "_validate", lambda: next(metrics))
    first.fit()
    continued = make_trainer(
        tmp_path / "second",
        target_tokenizer,
        max_steps=8,
        valid_every=2,
        resume=str(RunLayout(tmp_path / "first").last_checkpoint),
    )
    monkeypatch.setattr(continued, "_validate", lambda: next(metrics))
    best = continued.fit()  # no validation here beats the first run's step 2
    assert best.is_file() and load_checkpoint(best)["step"] == 2 and continued.progress.best_step == 2


@pytest.mark.parametrize("changed", [{"precision": "bf16"}, {"accumulate": 2}])
def test_resuming_with_other_settings_is_refused(tmp_path, target_tokenizer, changed):
    make_trainer(tmp_path, target_tokenizer, max_steps=2, valid_every=2).fit()
    trainer_setting, value = next(iter(changed.items()))
    with pytest.raises(
        UserError,
        match=rf"saved with trainer.{trainer_setting}=\S+, this run has "
        rf"trainer.{trainer_setting}={value}",
    ):
        make_trainer(
            tmp_path,
            target_tokenizer,
            max_steps=4,
            resume="auto",
            run_config={"seed": 0, "trainer": {"precision": "fp32", "accumulate": 1, **changed}},
            **changed,
        )


def test_a_run_saved_before_a_setting_existed_resumes_as_its_old_behaviour(tmp_path):
    """A checkpoint saved before `model.cell` and `model.decoder.normalizer` existed compares as
    if it had their old values, gru and softmax; any other value is refused."""
    saved = {"seed": 1, "model": {"decoder": {"hidden_size": 16}}}

    def current(cell: str, normalizer: str) -> dict:
        return {"seed": 1, "model": {"cell": cell, "decoder": {"hidden_size": 16, "normalizer": normalizer}}}

    check_same_settings(saved, current("gru", "softmax"), tmp_path)
    with pytest.raises(UserError, match=r"saved with model.cell=gru, this run has model.cell=lstm"):
        check_same_settings(saved, current("lstm", "softmax"), tmp_path)
    with pytest.raises(UserError, match=r"normalizer=softmax, this run has model.decoder.normalizer=sparsemax"):
        check_same_settings(saved, current("gru", "sparsemax"), tmp_path)
