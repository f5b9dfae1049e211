"""Learning-rate schedules: on validation (reduce on plateau), per update (warmup, decay) or
over the training budget (decay to the end of the updates, epochs or minutes allowed).

Each schedule takes the optimizer first and plain keyword arguments, so a `_partial_: true`
config becomes a scheduler with `instantiate(cfg.scheduler)(optimizer)`. The per-update schedules
compute the lr in closed form from the update count and the optimizer's initial lr, so their
`state_dict` is a handful of numbers and a resumed run follows the uninterrupted one exactly.

Resuming: build the optimizer, then the scheduler (construction writes the first lr into the
optimizer), then load the optimizer's state (restoring the lr of the interrupted run), then
the scheduler's.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from nmt.metrics.bleu import METRIC_MODES


class ReduceOnPlateau(ReduceLROnPlateau):
    """Torch's reduce-on-plateau, told which validation metric to watch instead of a mode.

    The direction (`max` for BLEU, `min` for loss) follows from the metric, so a config
    cannot pair BLEU with `min`. Step it after each validation with
    `scheduler.step(metrics[scheduler.metric])`. The lr is multiplied by `factor` when
    `patience` + 1 validations in a row bring no improvement (torch's counting).

    Args:
        optimizer: the optimizer whose lr is reduced.
        metric: a key of `nmt.metrics.bleu.METRIC_MODES` (bleu, chrf, ppl, loss).
        **kwargs: the other keyword arguments of `torch.optim.lr_scheduler.ReduceLROnPlateau`
            (factor, patience, threshold, threshold_mode, cooldown, min_lr, eps), not `mode`.

    Raises:
        ValueError: if `metric` is not a known validation metric.
    """

    def __init__(self, optimizer: Optimizer, *, metric: str, **kwargs: Any) -> None:
        if metric not in METRIC_MODES:
            raise ValueError(f"scheduler.metric={metric!r}: use one of {', '.join(METRIC_MODES)}")
        self.metric = metric
        super().__init__(optimizer, mode=METRIC_MODES[metric], **kwargs)


class InverseSqrt(LRScheduler):
    """Linear warmup to the optimizer's lr, then decay with the inverse square root of the
    update number (Vaswani et al. 2017, normalized so that the peak is the configured lr).

    The lr of update n (1-based) is `lr * min(n / warmup_steps, sqrt(warmup_steps / n))`:
    lr / warmup_steps for the first update, lr at update `warmup_steps`. Step once per update.

    Args:
        optimizer: the optimizer; its lr is the peak.
        warmup_steps: updates to reach the peak (at least 1).

    Raises:
        ValueError: if `warmup_steps` is below 1.
    """

    def __init__(self, optimizer: Optimizer, *, warmup_steps: int) -> None:
        if warmup_steps < 1:
            raise ValueError(f"scheduler.warmup_steps={warmup_steps}: use 1 or more")
        self.warmup_steps = warmup_steps
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        update = self.last_epoch + 1  # the update the lr is about to be used for
        scale = min(update / self.warmup_steps, math.sqrt(self.warmup_steps / update))
        return [base_lr * scale for base_lr in self.base_lrs]


class ExponentialDecay(LRScheduler):
    """Exponential decay after a number of updates, floored at `min_lr`.

    After s updates the lr is `lr * decay_rate ** ((s - start_step) / decay_steps)` for
    s > start_step, and `lr` before. With `staircase` the exponent is rounded down, so the lr
    drops once every `decay_steps` updates: Luong et al. (2015) halve it every epoch after
    the fifth (decay_rate 0.5, decay_steps one epoch of updates, start_step five epochs).
    Step once per update.

    Args:
        optimizer: the optimizer; its lr is the starting lr.
        decay_rate: factor per `decay_steps` updates (0 < decay_rate <= 1).
        decay_steps: updates over which the lr is multiplied by `decay_rate`.
        start_step: updates at the full lr before the decay begins.
        min_lr: the lr never goes below this.
        staircase: decay in whole steps of `decay_rate` instead of smoothly.

    Raises:
        ValueError: if `decay_rate` is outside (0, 1] or `decay_steps` is below 1.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        decay_rate: float,
        decay_steps: int,
        start_step: int = 0,
        min_lr: float = 0.0,
        staircase: bool = False,
    ) -> None:
        if not 0 < decay_rate <= 1:
            raise ValueError(f"scheduler.decay_rate={decay_rate}: use a value in (0, 1]")
        if decay_steps < 1:
            raise ValueError(f"scheduler.decay_steps={decay_steps}: use 1 or more")
        self.decay_rate, self.decay_steps, self.start_step = decay_rate, decay_steps, start_step
        self.min_lr, self.staircase = min_lr, staircase
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        exponent = max(self.last_epoch - self.start_step, 0) / self.decay_steps  # last_epoch: updates done
        if self.staircase:
            exponent = math.floor(exponent)
        return [max(base_lr * self.decay_rate**exponent, self.min_lr) for base_lr in self.base_lrs]


class BudgetDecay(LRScheduler):
    """Warmup, then a decay to `final_factor` times the lr at the end of the training budget,
    whichever limit ends it: updates, epochs or minutes.

    Budgeted training (Li, Yumer and Ramanan 2020): for a fixed budget, a schedule that reaches
    a small lr exactly when the budget runs out beats a constant or step-tuned one, and linear
    decay to zero is the strongest simple choice. A run limited by wall clock
    (`trainer.max_minutes`) does not know its number of updates in advance, so the trainer steps
    this schedule after each update with the fraction of the budget used (`scheduler.step(used)`,
    see `Trainer.budget_used`): the lr follows the clock. With a step or epoch limit the fraction,
    and so the lr, is exactly reproducible, also across a resume.

    The lr of an update made with a fraction `u` of the budget used and `n` updates done is
    `lr * min(1, (n + 1) / warmup_steps) * decay(u)`, with `decay(u) = 1 - (1 - final_factor) * u`
    (linear) or `final_factor + (1 - final_factor) * (1 + cos(pi u)) / 2` (cosine).

    Args:
        optimizer: the optimizer; its lr is the peak.
        warmup_steps: updates of linear warmup from lr / warmup_steps (0: none).
        shape: `linear` or `cosine`.
        final_factor: the lr at the end of the budget, as a fraction of the peak (0 <= f <= 1).

    Raises:
        ValueError: for a negative `warmup_steps`, an unknown `shape` or `final_factor` outside [0, 1].
    """

    SHAPES = ("linear", "cosine")

    def __init__(
        self, optimizer: Optimizer, *, warmup_steps: int = 0, shape: str = "linear", final_factor: float = 0.0
    ) -> None:
        if warmup_steps < 0:
            raise ValueError(f"scheduler.warmup_steps={warmup_steps}: use 0 or more")
        if shape not in self.SHAPES:
            raise ValueError(f"scheduler.shape={shape!r}: use one of {', '.join(self.SHAPES)}")
        if not 0 <= final_factor <= 1:
            raise ValueError(f"scheduler.final_factor={final_factor}: use a value in [0, 1]")
        self.warmup_steps, self.shape, self.final_factor = warmup_steps, shape, final_factor
        self.used = 0.0
        super().__init__(optimizer)

    def step(self, used: float | None = None) -> None:  # type: ignore[override]
        """Sets the lr of the next update from `used`, the fraction of the budget spent
        (None, as torch's construction calls it: unchanged)."""
        if used is not None:
            self.used = min(max(used, 0.0), 1.0)
        super().step()

    def get_lr(self) -> list[float]:
        update = self.last_epoch + 1  # the update the lr is about to be used for
        warmup = min(1.0, update / self.warmup_steps) if self.warmup_steps else 1.0
        if self.shape == "linear":
            decay = 1.0 - (1.0 - self.final_factor) * self.used
        else:
            decay = self.final_factor + (1.0 - self.final_factor) * (1.0 + math.cos(math.pi * self.used)) / 2
        return [base_lr * warmup * decay for base_lr in self.base_lrs]


def steps_on_budget(scheduler: LRScheduler) -> bool:
    """True when `scheduler` is stepped after each update with the fraction of the training
    budget used (`scheduler.step(trainer.budget_used())`)."""
    return isinstance(scheduler, BudgetDecay)


def steps_on_validation(scheduler: LRScheduler) -> bool:
    """True when `scheduler` is stepped after each validation with the watched metric
    (`scheduler.step(metrics[scheduler.metric])`); False when it is stepped after each update."""
    return isinstance(scheduler, ReduceOnPlateau)
