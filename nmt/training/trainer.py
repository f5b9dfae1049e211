"""The training loop: the update step, the loop with its limits, and validation.

What gets saved and how a run resumes is `nmt.training.checkpointing`; what gets logged,
`nmt.training.train_log`.

`train_step` is the whole optimization step and stays small: mixed precision, gradient
accumulation and data parallelism live there and in `Trainer.__init__`, nowhere else.
Everything that says where training stands is in `Progress`, saved in every checkpoint, so a
run killed at any moment and resumed from `last.pt` ends bitwise equal to an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from nmt.checkpoint import Checkpoint, load_checkpoint
from nmt.data.batching import Batch, ParallelData
from nmt.data.tokenizer import Tokenizer
from nmt.decoding.attention_maps import attention_examples
from nmt.decoding.search import Search
from nmt.metrics.bleu import METRIC_MODES, is_better
from nmt.modules.seq2seq import Seq2Seq
from nmt.training.board import Board
from nmt.training.checkpointing import Progress, RunCheckpoints, TrainingState
from nmt.training.distributed import Distributed, shard
from nmt.training.loss import GuidedAlignment, token_loss_sum
from nmt.training.run_layout import RunLayout
from nmt.training.schedulers import steps_on_budget, steps_on_validation
from nmt.training.train_log import Window, report
from nmt.training.validation import ValidationData, ValidationResult, validate
from nmt.utils.errors import UserError
from nmt.utils.heap import trim_heap
from nmt.utils.precision import PrecisionChoice, autocast, check_precision, choose_precision
from nmt.utils.rng import set_rng_state

log = logging.getLogger(__name__)

HEAP_TRIM_EVERY = 50
"""Updates between returns of freed memory to the system (`nmt.utils.heap`). A trim costs more than
its own call (the next updates fault the returned pages back in), and trimming more often
barely lowers the peak, which the transient tensors of long batches set."""


def clip_gradients(parameters: list[torch.nn.Parameter], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_` (the same norm, the same clipped gradients), less its
    pass over every gradient when nothing is clipped.

    `clip_grad_norm_` multiplies every gradient by min(1, max_norm / (norm + 1e-6)) even when that
    is 1, so as not to wait for the norm on a GPU; on the CPU that multiply by 1 reads and writes
    every gradient, so there the norm is read first. On a GPU the
    multiply is one cheap kernel and reading the norm would stall the queue: torch's way.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if norm.device.type != "cpu" or bool(max_norm / (norm + 1e-6) < 1):
        torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, norm)
    return norm


@dataclass(frozen=True)
class TrainerConfig:
    """When to stop, validate, save and log, and the step's options.

    Args:
        max_steps: stop after this many updates. Training stops at the first of the three
            limits reached (None: no such limit; at least one must be set).
        max_epochs: stop after this many epochs.
        max_minutes: stop after this much wall time, validation included, summed over
            resumed sessions.
        valid_every: validate and save checkpoints every this many updates, and at the end.
        save_every: also save `last.pt` (and a step checkpoint) every this many updates between
            validations, so a preempted job loses little (None: only when validating).
        keep_last: step checkpoints (`step-<N>.pt`, for averaging) kept; older ones are deleted.
        average_last: at the end, average the last this many step checkpoints and validate the
            average; it becomes `best.pt` if it validates better than the best single checkpoint
            (None: no averaging). At most `keep_last`; `save_every` sets how far apart they are.
        log_every: write training scalars every this many updates.
        accumulate: batches per update; the loss is normalized by all their target tokens.
        clip_norm: gradient-norm clipping threshold.
        label_smoothing: cross-entropy label smoothing (0: none).
        coverage_loss_weight: weight of the coverage penalty (See et al. 2017; 0: none).
        guided_alignment: the weight of guided alignment and its alignment file (`GuidedAlignment`).
        metric: validation metric that picks `best.pt` (ties go to the lower validation loss)
            and drives early stopping: bleu, chrf, ppl or loss.
        patience: stop after this many validations without a new best (None: never).
        max_bad_steps: stop with an error after this many updates in a row whose loss or
            gradient norm was not finite (each is skipped and counted).
        valid_max_tokens: token budget of a validation batch.
        precision: `auto` (`nmt.utils.precision.choose_precision`: bf16 where the hardware runs it
            natively, else fp16 on a GPU, else fp32), `fp32`, `bf16` (autocast) or `fp16`
            (autocast with a gradient scaler). Weights and optimizer state stay fp32; validation
            runs in fp32. A resumed run keeps the precision it started with.
        compile: run the encoder's recurrence (on the CPU), the decoder step of the teacher-forced
            forward and the training loss through `torch.compile` (`Seq2Seq.compile_training`,
            `SmoothedCrossEntropy`).
        resume: `auto` (continue from the run directory's `last.pt` when it exists), a
            checkpoint path, or None (start afresh).
        attention_samples: validation sentences whose attention maps and translations are
            shown in TensorBoard at each validation (0: none).
        progress_bar: show a tqdm bar (only ever on a terminal).
    """

    max_steps: int | None = None
    max_epochs: int | None = None
    max_minutes: float | None = None
    valid_every: int = 1000
    save_every: int | None = None
    keep_last: int = 5
    average_last: int | None = None
    log_every: int = 50
    accumulate: int = 1
    clip_norm: float = 5.0
    label_smoothing: float = 0.0
    coverage_loss_weight: float = 0.0
    guided_alignment: GuidedAlignment = GuidedAlignment()
    metric: str = "bleu"
    patience: int | None = None
    max_bad_steps: int = 10
    valid_max_tokens: int = 6000
    precision: str = "auto"
    compile: bool = False
    resume: str | None = None
    attention_samples: int = 4
    progress_bar: bool = True

    def __post_init__(self) -> None:
        check_precision(self.precision, "trainer.precision")
        if self.max_steps is None and self.max_epochs is None and self.max_minutes is None:
            raise ValueError("trainer: set at least one of max_steps, max_epochs, max_minutes")
        if self.metric not in METRIC_MODES:
            raise ValueError(f"trainer.metric={self.metric!r}: use one of {', '.join(METRIC_MODES)}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"trainer.max_minutes={self.max_minutes}: must be above 0")
        for name in (
            "max_steps",
            "max_epochs",
            "valid_every",
            "log_every",
            "accumulate",
            "max_bad_steps",
            "save_every",
            "patience",
        ):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"trainer.{name}={getattr(self, name)}: must be at least 1")
        if self.keep_last < 0 or self.attention_samples < 0:
            raise ValueError("trainer.keep_last and trainer.attention_samples must be at least 0")
        if self.average_last is not None and not 2 <= self.average_last <= self.keep_last:
            raise ValueError(
                f"trainer.average_last={self.average_last}: use 2 to trainer.keep_last "
                f"({self.keep_last}) checkpoints, or null"
            )


class Trainer:
    """Trains a model, validates it, and keeps checkpoints and TensorBoard events in a run.

    Args:
        model: the model, already on `device`.
        optimizer: its optimizer.
        scheduler: a learning-rate schedule over the optimizer, or None.
        train_data: training examples and their batching.
        valid_data: validation examples.
        tokenizers: source and target tokenizers (stored in checkpoints; decode hypotheses).
        search: the validation search.
        config: loop settings.
        layout: the run directory.
        run_config: the resolved run config, stored in every checkpoint.
        device: where batches go.
        distributed: this process's rank (default: a single process).
    """

    def __init__(
        self,
        *,
        model: Seq2Seq,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None,
        train_data: ParallelData,
        valid_data: ValidationData,
        tokenizers: tuple[Tokenizer, Tokenizer],
        search: Search,
        config: TrainerConfig,
        layout: RunLayout,
        run_config: dict[str, Any],
        device: torch.device,
        distributed: Distributed = Distributed(),
    ) -> None:
        self.model, self.optimizer, self.scheduler, self.config = model, optimizer, scheduler, config
        self.train_data, self.valid_data = train_data, valid_data
        self.src_tokenizer, self.tgt_tokenizer = tokenizers
        self.search, self.layout, self.run_config = search, layout, run_config
        self.device, self.distributed = device, distributed
        self.checkpoints = RunCheckpoints(layout, distributed, run_config, tokenizers, config.keep_last)
        resume_from = self.checkpoints.resume_path(config.resume)
        resumed = load_checkpoint(resume_from, map_location=device) if resume_from else None
        self.precision = self._choose_precision(resumed)
        log.info("training precision: %s", self.precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision.precision == "fp16")
        self.progress, saved_rng = Progress(), None
        if resume_from:
            self.progress, saved_rng = self.checkpoints.restore(
                resume_from, resumed, model, optimizer, self.scaler, scheduler
            )
        self.first_update_seconds: float | None = None  # see `_note_first_update`
        self.ddp = (
            DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
            if distributed.enabled
            else None
        )
        self.network = self.ddp or model
        if config.compile:
            model.compile_training()
        self.board = Board(
            layout.tensorboard if distributed.is_main else None, purge_step=self.progress.step if resume_from else None
        )
        self._clock = time.monotonic() - self.progress.seconds
        if saved_rng is not None:  # last: nothing after this may draw random numbers before training
            set_rng_state(saved_rng)

    # --- the update ---------------------------------------------------------------------------

    def train_step(self, batches: list[Batch], weights: list[float], total_tokens: int) -> tuple[float, float]:
        """One update from this rank's batches of an accumulation group.

        Args:
            batches: this rank's share of each batch of the group.
            weights: each share's loss weight (0 for a placeholder, see `distributed.shard`).
            total_tokens: target tokens of the whole group over all ranks: the normalizer.

        Returns:
            The group's mean token loss (over all ranks) and the gradient norm; either is
            non-finite when the update was skipped.
        """
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks; scaling by the world size turns that into the sum
        # over every rank's tokens, divided by the group's total: one process's loss exactly.
        scale = self.distributed.world_size / total_tokens
        loss_sum = torch.zeros((), device=self.device)
        for index, (batch, weight) in enumerate(zip(batches, weights)):
            last = index == len(batches) - 1
            with self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext():
                with autocast(self.device, self.precision.precision):
                    loss = weight * token_loss_sum(
                        self.network,
                        batch,
                        self.config.label_smoothing,
                        self.config.coverage_loss_weight,
                        self.config.compile,
                        self.config.guided_alignment.weight,
                    )
                self.scaler.scale(loss * scale).backward()
            loss_sum += loss.detach().float()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        grad_norm = clip_gradients(list(self.model.parameters()), self.config.clip_norm)
        loss = self.distributed.sum(loss_sum) / total_tokens
        if bool(torch.isfinite(loss) & torch.isfinite(grad_norm)):  # equal on every rank
            self.scaler.step(self.optimizer)
            self._step_schedule_after_update()
        self.scaler.update()  # fp16: a skipped step also lowers the scale
        return loss.item(), grad_norm.item()

    def _step_schedule_after_update(self) -> None:
        scheduler = self.scheduler
        if scheduler is None or steps_on_validation(scheduler):
            return
        if steps_on_budget(scheduler):
            scheduler.step(self.budget_used(self.progress.step + 1))
        else:
            scheduler.step()

    def _update(self, group: list[list[int]], window: Window) -> bool:
        """Makes one update from a group of global batches; returns False if it was skipped."""
        shares = [shard(indices, self.distributed.rank, self.distributed.world_size) for indices in group]
        batches = [self.train_data.collate(indices).to(self.device) for indices, _ in shares]
        total_tokens = sum(self.train_data.target_tokens(indices) for indices in group)
        start = time.monotonic()
        loss, grad_norm = self.train_step(batches, [weight for _, weight in shares], total_tokens)
        if self.first_update_seconds is None:
            self._note_first_update(time.monotonic() - start)
        progress = self.progress
        sentences = sum(len(indices) for indices in group)
        progress.target_tokens += total_tokens
        progress.sentences += sentences
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            self._skip(loss, grad_norm)
            return False
        progress.step += 1
        progress.bad_steps_in_a_row = 0
        if progress.step % HEAP_TRIM_EVERY == 0 and self.device.type == "cpu":  # GPU tensors are not on the heap
            trim_heap()
        window.add(loss, total_tokens, sentences)
        if progress.step % self.config.log_every == 0:
            self._log_train(grad_norm, window)
        return True

    def _note_first_update(self, seconds: float) -> None:
        """Says what the first update of the process took: with `compile`, torch.compile builds
        its kernels then (on a machine whose inductor cache is empty, tens of seconds), and that
        time counts in `max_minutes` like any other, so a budgeted run shows what it cost."""
        self.first_update_seconds = seconds
        log.info(
            "first update of this process: %.1f s%s, counted in the training time",
            seconds,
            " (torch.compile building its kernels)" if self.config.compile else "",
        )

    def _skip(self, loss: float, grad_norm: float) -> None:
        progress = self.progress
        progress.skipped_steps += 1
        self.board.scalars("train", {"skipped_steps": progress.skipped_steps}, progress.step)
        if self.scaler.is_enabled() and math.isfinite(loss):
            # fp16 gradients overflowed: the scaler's calibration (it lowers the scale), not divergence
            log.info(
                "after step %d: fp16 gradients overflowed; update skipped, gradient scale lowered to %g",
                progress.step,
                self.scaler.get_scale(),
            )
            return
        progress.bad_steps_in_a_row += 1
        log.warning(
            "after step %d: loss %s, gradient norm %s: update skipped (%d in a row, %d in all)",
            progress.step,
            loss,
            grad_norm,
            progress.bad_steps_in_a_row,
            progress.skipped_steps,
        )
        if progress.bad_steps_in_a_row >= self.config.max_bad_steps:
            last = self.layout.last_checkpoint
            saved = f"{last} is the last good checkpoint" if last.is_file() else "no checkpoint was saved"
            raise UserError(
                f"training stopped after step {progress.step}: {progress.bad_steps_in_a_row} updates in "
                f"a row had a non-finite loss or gradient norm (trainer.max_bad_steps); {saved}. "
                "Try a lower optim.lr or trainer.precision=fp32"
            )

    # --- the loop -----------------------------------------------------------------------------

    def fit(self) -> Path:
        """Trains until a limit is reached, validates the last step; returns the best checkpoint's path."""
        self.train_until(self.config.max_steps)
        progress = self.progress
        if progress.validated_at != progress.step:
            self._validate_and_save()
        if self.config.average_last and self.distributed.is_main:
            self._validate_average()
        self.board.flush()
        progress.seconds = time.monotonic() - self._clock
        training_seconds = progress.seconds - progress.validation_seconds
        log.info(
            "trained %d steps (epoch %d) in %.1f min plus %.1f min validating; %.0f target tokens/s; "
            "%d updates skipped",
            progress.step,
            progress.epoch,
            training_seconds / 60,
            progress.validation_seconds / 60,
            progress.target_tokens / max(training_seconds, 1e-9),
            progress.skipped_steps,
        )
        return self.layout.best_checkpoint

    def train_until(self, step: int | None) -> None:
        """The training loop (updates, logging, periodic validation and saving) until update
        `step` or a limit of the config; the benchmark times it between two steps."""
        config, progress = self.config, self.progress
        bar = tqdm(
            total=config.max_steps,
            initial=progress.step,
            unit="step",
            dynamic_ncols=True,
            disable=None if config.progress_bar and self.distributed.is_main else True,
        )
        window = Window()
        while not self._limit_reached(step):
            order = self.train_data.batch_order(progress.epoch)
            while progress.batch_in_epoch < len(order) and not self._limit_reached(step):
                group = order[progress.batch_in_epoch : progress.batch_in_epoch + config.accumulate]
                progress.batch_in_epoch += len(group)
                if not self._update(group, window):
                    continue
                bar.update()
                if progress.step % config.log_every == 0:
                    bar.set_postfix(loss=f"{window.loss:.3f}")
                if progress.step % config.valid_every == 0:
                    self._validate_and_save()
                elif config.save_every and progress.step % config.save_every == 0:
                    self._save({}, best=False)
                if progress.step % config.log_every == 0 or progress.validated_at == progress.step:
                    window = Window()
            if progress.batch_in_epoch >= len(order):
                progress.epoch, progress.batch_in_epoch = progress.epoch + 1, 0
        bar.close()

    def _limit_reached(self, step: int | None) -> bool:
        progress = self.progress
        if progress.stopped_early or (step is not None and progress.step >= step):
            return True
        return self.budget_used() >= 1

    def budget_used(self, steps: int | None = None) -> float:
        """The fraction of the training budget spent after `steps` updates (default: the updates
        done): the largest of steps / max_steps, epochs / max_epochs (the current epoch counted by
        its batches) and minutes / max_minutes. Training stops at 1; `BudgetDecay` follows it."""
        config, progress = self.config, self.progress
        used = [0.0]
        if config.max_steps is not None:
            used.append((progress.step if steps is None else steps) / config.max_steps)
        if config.max_epochs is not None:
            used.append((progress.epoch + progress.batch_in_epoch / self._batches_per_epoch) / config.max_epochs)
        if config.max_minutes is not None:
            # Clocks differ between ranks: rank 0's decides, so every rank stops at the same step.
            used.append(self.distributed.broadcast((time.monotonic() - self._clock) / (60 * config.max_minutes)))
        return max(used)

    @functools.cached_property
    def _batches_per_epoch(self) -> int:
        """The same in every epoch: reshuffling changes the batches' order and members, not their shapes."""
        return len(self.train_data.batch_order(0))

    # --- logging ------------------------------------------------------------------------------

    def _log_train(self, grad_norm: float, window: Window) -> None:
        start = time.monotonic()
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else None
        report(
            self.board,
            window,
            self.progress.step,
            lr=self.optimizer.param_groups[0]["lr"],
            grad_norm=grad_norm,
            skipped_steps=self.progress.skipped_steps,
            grad_scale=scale,
            device=self.device,
        )
        self.progress.logging_seconds += time.monotonic() - start

    # --- validation and checkpoints -----------------------------------------------------------

    def _validate_and_save(self) -> None:
        start = time.monotonic()
        progress, config = self.progress, self.config
        metrics = self.distributed.broadcast(self._validate() if self.distributed.is_main else None)
        self.board.scalars("valid", metrics, progress.step)
        log.info(
            "step %d: valid loss %.3f ppl %.2f BLEU %.2f chrF %.2f",
            progress.step,
            metrics["loss"],
            metrics["ppl"],
            metrics["bleu"],
            metrics["chrf"],
        )
        if self.scheduler is not None and steps_on_validation(self.scheduler):
            self.scheduler.step(metrics[self.scheduler.metric])
        improved = self._improves(metrics)
        if improved:
            progress.best, progress.best_step, progress.validations_without_improvement = metrics, progress.step, 0
        else:
            progress.validations_without_improvement += 1
            if config.patience is not None and progress.validations_without_improvement >= config.patience:
                progress.stopped_early = True
                log.info(
                    "early stopping: no better validation %s for %d validations (best %.4g at step %d)",
                    config.metric,
                    config.patience,
                    progress.best[config.metric],
                    progress.best_step,
                )
        progress.validated_at = progress.step
        progress.validation_seconds += time.monotonic() - start
        self._save(metrics, best=improved)

    def _validate_average(self) -> None:
        """Averages the last `average_last` step checkpoints and validates the average, which
        replaces `best.pt` if it beats the best so far: the choice is made on validation, as for
        any checkpoint. Rank 0 alone, after training: the other ranks have nothing left to do."""
        progress, start = self.progress, time.monotonic()
        found = self.checkpoints.average_of_last(self.config.average_last)
        if found is None:
            return
        averaged, steps = found
        trained = {name: tensor.clone() for name, tensor in self.model.state_dict().items()}
        self.model.load_state_dict(averaged["model"])
        metrics = self._decode_validation().metrics
        self.model.load_state_dict(trained)
        self.board.scalars("valid_averaged", metrics, progress.step)
        improved = self._improves(metrics)
        log.info(
            "average of steps %s: valid loss %.3f ppl %.2f BLEU %.2f chrF %.2f (%s)",
            ", ".join(map(str, steps)),
            metrics["loss"],
            metrics["ppl"],
            metrics["bleu"],
            metrics["chrf"],
            "the new best.pt" if improved else f"best.pt stays step {progress.best_step}",
        )
        if improved:
            averaged["valid"] = metrics
            progress.best, progress.best_step, progress.best_averaged = metrics, steps[-1], steps
            self.checkpoints.promote_average(averaged, progress)
        progress.validation_seconds += time.monotonic() - start

    def _decode_validation(self) -> ValidationResult:
        """The model as it stands on the validation set: loss, decoded hypotheses, metrics."""
        return validate(
            self.model, self.valid_data, self.search, self.tgt_tokenizer, self.config.valid_max_tokens, self.device
        )

    def _validate(self) -> dict[str, float]:
        result = self._decode_validation()
        shown = min(self.config.attention_samples, len(self.valid_data.src_ids))
        if shown:
            step = self.progress.step
            self.board.samples(
                self.valid_data.sources[:shown], result.hypotheses[:shown], self.valid_data.references[:shown], step
            )
            shown_sources = [self.valid_data.src_ids[i].tolist() for i in range(shown)]
            examples = attention_examples(
                self.model,
                shown_sources,
                result.output_ids[:shown],
                self.src_tokenizer,
                self.tgt_tokenizer,
                self.device,
            )
            self.board.attention_maps(examples, step)
        return result.metrics

    def _improves(self, metrics: dict[str, float]) -> bool:
        """A new best by the chosen metric; a tie goes to the lower validation loss."""
        best, metric = self.progress.best, self.config.metric
        if not best:
            return True
        if metrics[metric] == best[metric]:
            return metrics["loss"] < best["loss"]
        return is_better(metric, metrics[metric], best[metric])

    def model_checkpoint(self, metrics: dict[str, float]) -> Checkpoint:
        """The self-contained checkpoint of the model as it stands, without the training state."""
        return self.checkpoints.model_checkpoint(self.model, self.progress.step, metrics, self.precision.precision)

    def _save(self, metrics: dict[str, float], best: bool) -> None:
        """Writes `last.pt` (with the training state), a step checkpoint and, if `best`, `best.pt`."""
        self.progress.seconds = time.monotonic() - self._clock
        rng_states = self.checkpoints.gather_rng_states()  # every rank's, so each resumes its own
        if not self.distributed.is_main:
            return
        training = TrainingState(
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler is not None else None,
            rng=rng_states,
            progress=asdict(self.progress),
        )
        self.checkpoints.save(self.model_checkpoint(metrics), training, best)

    # --- resume -------------------------------------------------------------------------------

    def _choose_precision(self, resumed: Checkpoint | None) -> PrecisionChoice:
        """The configured precision on this device (`auto` resolved); a resumed run's, as it
        started, whatever `auto` would choose on this machine."""
        started = resumed.get("precision") if resumed is not None else None
        if started is not None and self.config.precision == "auto":
            return PrecisionChoice(started, "auto, as the resumed run started")
        return choose_precision(self.config.precision, self.device)
