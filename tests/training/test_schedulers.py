"""Learning-rate schedules follow their formulas, resume exactly, and every optimizer and
scheduler config composes and instantiates (also under the SLURM launcher)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.optim.lr_scheduler import LRScheduler

from nmt.training.schedulers import (
    BudgetDecay,
    ExponentialDecay,
    InverseSqrt,
    ReduceOnPlateau,
    steps_on_budget,
    steps_on_validation,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OPTIMS = sorted(p.stem for p in (CONFIGS / "optim").glob("*.yaml"))
SCHEDULERS = sorted(p.stem for p in (CONFIGS / "scheduler").glob("*.yaml"))
STEPS_ON_VALIDATION = {"none": None, "plateau": True, "inverse_sqrt": False, "exponential": False, "budget": False}
"""Every scheduler config, and whether it steps on validation (None: no scheduler)."""


def sgd(lr: float) -> torch.optim.SGD:
    return torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=lr)


def update_lrs(scheduler: LRScheduler, updates: int) -> list[float]:
    """The lr used by each of `updates` updates of a per-update schedule."""
    lrs = []
    for _ in range(updates):
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


def validation_lrs(scheduler: ReduceOnPlateau, values: list[float]) -> list[float]:
    """The lr after each validation that scored `values`."""
    lrs = []
    for value in values:
        scheduler.optimizer.step()
        scheduler.step(value)
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
    return lrs


def test_inverse_sqrt_warms_up_linearly_to_the_lr_then_decays_with_the_inverse_square_root():
    lrs = update_lrs(InverseSqrt(sgd(lr=2.0), warmup_steps=4), updates=16)
    assert lrs[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])  # updates 1-4: 2 * n / 4, peak at update 4
    assert max(lrs) == lrs[3]
    assert lrs[8] == pytest.approx(4 / 3)  # update 9: 2 * sqrt(4 / 9)
    assert lrs[15] == pytest.approx(1.0)  # update 16: 2 * sqrt(4 / 16)


def test_exponential_decay_waits_for_start_step_then_decays_down_to_min_lr():
    scheduler = ExponentialDecay(sgd(lr=1.0), decay_rate=0.5, decay_steps=2, start_step=3, min_lr=0.1)
    lrs = update_lrs(scheduler, updates=12)  # lrs[s]: after s updates
    assert lrs == pytest.approx(
        [1.0, 1.0, 1.0, 1.0, 2**-0.5, 0.5, 2**-1.5, 0.25, 2**-2.5, 0.125, 0.1, 0.1]
    )  # 2 ** -3.5 < 0.1 = min_lr


def test_exponential_decay_with_staircase_halves_once_every_decay_steps():
    scheduler = ExponentialDecay(sgd(lr=1.0), decay_rate=0.5, decay_steps=2, start_step=1, staircase=True)
    assert update_lrs(scheduler, updates=8) == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125])


def budget_lrs(scheduler: BudgetDecay, used: list[float]) -> list[float]:
    """The lr of each update, the budget fraction after update n being `used[n]`."""
    lrs = []
    for fraction in used:
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step(fraction)
    return lrs


def test_budget_decay_falls_linearly_to_the_final_factor_as_the_budget_is_used():
    used = [n / 5 for n in range(1, 6)]  # a 5-update budget
    assert budget_lrs(BudgetDecay(sgd(lr=1.0)), used) == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    assert budget_lrs(BudgetDecay(sgd(lr=2.0), final_factor=0.5), used) == pytest.approx([2.0, 1.8, 1.6, 1.4, 1.2])
    # the budget in minutes: the fractions come from the clock, unevenly
    assert budget_lrs(BudgetDecay(sgd(lr=1.0)), [0.5, 0.6, 0.95, 1.2]) == pytest.approx([1.0, 0.5, 0.4, 0.05])


def test_budget_decay_with_warmup_and_the_cosine_shape():
    used = [n / 8 for n in range(1, 9)]
    warm = budget_lrs(BudgetDecay(sgd(lr=1.0), warmup_steps=4), used)
    assert warm == pytest.approx([0.25, 2 / 4 * 7 / 8, 3 / 4 * 6 / 8, 5 / 8, 4 / 8, 3 / 8, 2 / 8, 1 / 8])
    cosine = budget_lrs(BudgetDecay(sgd(lr=1.0), shape="cosine", final_factor=0.1), used)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * n / 8)) / 2 for n in range(8)]
    assert cosine == pytest.approx(expected)
    assert cosine[4] == pytest.approx(0.55)  # halfway: halfway between the peak and the floor


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"warmup_steps": -1}, "warmup_steps=-1"),
        ({"shape": "step"}, "shape='step'"),
        ({"final_factor": 1.5}, "final_factor=1.5"),
    ],
)
def test_budget_decay_names_a_bad_setting(settings, message):
    with pytest.raises(ValueError, match=f"scheduler.{message}"):
        BudgetDecay(sgd(lr=1.0), **settings)


def test_plateau_on_bleu_halves_the_lr_when_patience_is_exceeded():
    scheduler = ReduceOnPlateau(sgd(lr=1.0), metric="bleu", factor=0.5, patience=2)
    # 10 and 12 improve; 11, 12 (a tie) and 11.5 do not: the third of them exceeds patience 2
    assert validation_lrs(scheduler, [10.0, 12.0, 11.0, 12.0, 11.5]) == [1.0, 1.0, 1.0, 1.0, 0.5]


def test_plateau_on_loss_takes_a_decrease_as_improvement():
    falling = [5.0, 4.0, 3.0, 2.0, 1.0]
    on_loss = ReduceOnPlateau(sgd(lr=1.0), metric="loss", factor=0.5, patience=2)
    on_bleu = ReduceOnPlateau(sgd(lr=1.0), metric="bleu", factor=0.5, patience=2)
    assert validation_lrs(on_loss, falling) == [1.0] * 5
    assert validation_lrs(on_bleu, falling)[-1] == 0.5
    assert validation_lrs(on_loss, [1.5, 1.2, 1.1]) == [1.0, 1.0, 0.5]  # rises above the best, 1.0


def test_plateau_names_an_unknown_metric():
    with pytest.raises(ValueError, match="scheduler.metric='blue'"):
        ReduceOnPlateau(sgd(lr=1.0), metric="blue")


SCHEDULES: dict[str, Callable[[torch.optim.Optimizer], LRScheduler]] = {
    "inverse_sqrt": lambda optimizer: InverseSqrt(optimizer, warmup_steps=5),
    "exponential": lambda optimizer: ExponentialDecay(
        optimizer, decay_rate=0.7, decay_steps=3, start_step=2, min_lr=1e-3
    ),
    "plateau": lambda optimizer: ReduceOnPlateau(optimizer, metric="bleu", factor=0.5, patience=1),
    "budget": lambda optimizer: BudgetDecay(optimizer, warmup_steps=3, shape="cosine", final_factor=0.1),
}
BLEU = [3.0, 5.0, 4.0, 4.5, 6.0, 5.0, 5.5, 5.9, 2.0, 7.0, 1.0, 1.0]


def run_steps(scheduler: LRScheduler, steps: range) -> list[float]:
    """Steps the way the trainer does; returns the optimizer's lr after each step."""
    lrs = []
    for step in steps:
        scheduler.optimizer.step()
        if steps_on_validation(scheduler):
            scheduler.step(BLEU[step])
        elif steps_on_budget(scheduler):
            scheduler.step((step + 1) / len(BLEU))
        else:
            scheduler.step()
        lrs.append(scheduler.optimizer.param_groups[0]["lr"])
    return lrs


@pytest.mark.parametrize("name", SCHEDULES)
def test_a_resumed_schedule_equals_an_uninterrupted_one(name, tmp_path):
    build = SCHEDULES[name]
    uninterrupted = run_steps(build(sgd(lr=0.9)), range(len(BLEU)))

    first = build(sgd(lr=0.9))
    before = run_steps(first, range(7))
    torch.save({"optimizer": first.optimizer.state_dict(), "scheduler": first.state_dict()}, tmp_path / "last.pt")
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)  # as nmt.checkpoint loads: plain data only
    optimizer = sgd(lr=0.9)
    resumed = build(optimizer)  # before loading the optimizer: construction writes an lr into it
    optimizer.load_state_dict(checkpoint["optimizer"])
    resumed.load_state_dict(checkpoint["scheduler"])
    assert before + run_steps(resumed, range(7, len(BLEU))) == uninterrupted
    assert len(set(uninterrupted)) > 2  # the lr moved, so the comparison means something


def compose_train(*overrides: str, return_hydra_config: bool = False):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=return_hydra_config)


@pytest.mark.parametrize("optim", OPTIMS)
def test_every_optimizer_config_instantiates(optim):
    cfg = compose_train(f"optim={optim}")
    optimizer = instantiate(cfg.optim)(torch.nn.Linear(3, 2).parameters())
    assert optimizer.param_groups[0]["lr"] == cfg.optim.lr


def test_every_scheduler_config_is_listed_here():
    assert sorted(STEPS_ON_VALIDATION) == SCHEDULERS


@pytest.mark.parametrize("name", SCHEDULERS)
@pytest.mark.parametrize("optim", ["adam", "adadelta"])
def test_every_scheduler_config_instantiates_and_says_when_it_steps(name, optim):
    cfg = compose_train(f"scheduler={name}", f"optim={optim}")
    if STEPS_ON_VALIDATION[name] is None:
        assert cfg.scheduler is None
        return
    optimizer = instantiate(cfg.optim)(torch.nn.Linear(3, 2).parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer)
    assert steps_on_validation(scheduler) is STEPS_ON_VALIDATION[name]


def test_the_slurm_launcher_composes_and_takes_overrides():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    default = compose_train("hydra/launcher=submitit_slurm", return_hydra_config=True)
    cfg = compose_train(
        "hydra/launcher=submitit_slurm", "hydra.launcher.timeout_min=719", "scheduler=plateau", return_hydra_config=True
    )
    assert cfg.hydra.launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert default.hydra.launcher.timeout_min != 719 and cfg.hydra.launcher.timeout_min == 719
    assert cfg.scheduler.metric == "bleu"
