"""The training loop: step, validation, checkpoints and TensorBoard scalars.

`train_step` is the whole optimization step and stays small: mixed precision and distributed
training land there and in `Trainer.__init__` later, nowhere else.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from nmt.checkpoint import save_checkpoint
from nmt.data.batching import Batch, ParallelData, bucket_batches, collate
from nmt.evaluation import score
from nmt.modules.seq2seq import Seq2Seq
from nmt.tokenizer import PAD_ID, Tokenizer
from nmt.translation import Search, translate_ids

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class TrainerConfig:
    """When to stop, validate and log, and the step's options.

    Args:
        max_steps, max_epochs, max_minutes: training stops at the first limit reached
            (None: no such limit; at least one must be set). Minutes count wall time,
            validation included.
        valid_every: validate (and save checkpoints) every this many steps, and at the end.
        log_every: write training scalars every this many steps.
        clip_norm: gradient-norm clipping threshold.
        label_smoothing: cross-entropy label smoothing (0: none).
        coverage_loss_weight: weight of the coverage penalty (See et al. 2017; 0: none).
        valid_max_tokens: token budget of a validation batch.
        precision: `fp32`, `bf16` (autocast; no scaler needed) or `fp16` (autocast with a
            gradient scaler). Weights and optimizer state stay fp32; validation runs in fp32.
        progress_bar: show a tqdm bar (only ever on a terminal).
    """

    max_steps: int | None = None
    max_epochs: int | None = None
    max_minutes: float | None = None
    valid_every: int = 1000
    log_every: int = 50
    clip_norm: float = 5.0
    label_smoothing: float = 0.0
    coverage_loss_weight: float = 0.0
    valid_max_tokens: int = 6000
    precision: str = "fp32"
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.precision not in AUTOCAST_DTYPES:
            raise ValueError(f"trainer.precision={self.precision!r}: use one of {', '.join(AUTOCAST_DTYPES)}")
        if self.max_steps is None and self.max_epochs is None and self.max_minutes is None:
            raise ValueError("trainer: set at least one of max_steps, max_epochs, max_minutes")


@dataclass
class ValidationData:
    """The validation set: token ids for the loss and raw references for BLEU."""

    src_ids: list[list[int]]
    tgt_ids: list[list[int]]
    references: list[str]


def coverage_penalty(attention: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """See et al. (2017): sum over steps i and positions j of min(alpha(i, j), coverage(i, j)).

    Args:
        attention: (B, T, S) weights of every step.
        target_mask: (B, T) True at real target positions.
    """
    coverage = attention.cumsum(1) - attention  # (B, T, S): attention paid before step i
    return (torch.minimum(attention, coverage).sum(-1) * target_mask).sum()


def token_loss_sum(model: Seq2Seq, batch: Batch, label_smoothing: float = 0.0,
                   coverage_loss_weight: float = 0.0) -> torch.Tensor:
    """Summed cross-entropy over the non-pad target tokens of a batch (plus the weighted
    coverage penalty, when asked for)."""
    logits, attention = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V), (B, T, S)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), batch.tgt_out.flatten(), ignore_index=PAD_ID,
                           reduction="sum", label_smoothing=label_smoothing)
    if coverage_loss_weight:
        loss = loss + coverage_loss_weight * coverage_penalty(attention.float(), batch.tgt_out != PAD_ID)
    return loss


class Trainer:
    """Trains a model, validating with loss, perplexity and greedy BLEU.

    Writes `checkpoints/last.pt` and `checkpoints/best.pt` (best validation BLEU) and
    TensorBoard events under `tensorboard/` in `run_dir`.

    Args:
        model: the model, already on `device`.
        optimizer: its optimizer.
        train_data: training examples and their batching.
        valid_data: validation examples.
        tgt_tokenizer: detokenizes hypotheses for BLEU.
        search: the validation search (greedy).
        config: loop settings.
        run_dir: where checkpoints and events go.
        checkpoint_extras: stored in every checkpoint (the resolved run config).
        device: where batches go.
    """

    def __init__(self, model: Seq2Seq, optimizer: torch.optim.Optimizer, train_data: ParallelData,
                 valid_data: ValidationData, tgt_tokenizer: Tokenizer, search: Search,
                 config: TrainerConfig, run_dir: Path, checkpoint_extras: dict[str, Any],
                 device: torch.device) -> None:
        self.model, self.optimizer, self.config = model, optimizer, config
        self.train_data, self.valid_data = train_data, valid_data
        self.tgt_tokenizer, self.search = tgt_tokenizer, search
        self.checkpoint_dir = run_dir / "checkpoints"
        self.checkpoint_extras = checkpoint_extras
        self.device = device
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        self.step = 0
        self.best_bleu = -math.inf
        self.autocast_dtype = AUTOCAST_DTYPES[config.precision]
        self.scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")

    def train_step(self, batch: Batch) -> tuple[float, float]:
        """One optimization step on a batch; returns the mean token loss and the gradient norm."""
        self.model.train()
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            loss = token_loss_sum(self.model, batch, self.config.label_smoothing,
                                  self.config.coverage_loss_weight) / batch.num_target_tokens
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)  # clip the true gradients, not the scaled ones
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_norm)
        self.scaler.step(self.optimizer)  # skipped by the scaler when fp16 gradients overflowed
        self.scaler.update()
        return loss.item(), grad_norm.item()

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Validation loss, perplexity, and BLEU of greedy decoding."""
        self.model.eval()
        data = self.valid_data
        loss_sum, tokens = 0.0, 0
        for indices in bucket_batches([len(s) for s in data.src_ids], [len(t) for t in data.tgt_ids],
                                      self.config.valid_max_tokens):
            batch = collate([data.src_ids[i] for i in indices], [data.tgt_ids[i] for i in indices],
                            indices).to(self.device)
            loss_sum += float(token_loss_sum(self.model, batch))
            tokens += batch.num_target_tokens
        hypotheses = self.tgt_tokenizer.decode(
            translate_ids(self.model, data.src_ids, self.search, self.config.valid_max_tokens, self.device))
        loss = loss_sum / tokens
        return {"loss": loss, "ppl": math.exp(min(loss, 100.0)), "bleu": score(hypotheses, [data.references]).bleu}

    def fit(self) -> Path:
        """Trains until a limit is reached; returns the path of the best checkpoint."""
        config = self.config
        start = time.monotonic()
        bar = tqdm(total=config.max_steps, unit="step", dynamic_ncols=True,
                   disable=None if config.progress_bar else True)  # None: off when not a terminal
        window_tokens, window_start, validated_at = 0, time.monotonic(), -1
        total_tokens, validation_seconds = 0, 0.0
        epoch = 0
        while not self._should_stop(epoch, start):
            for batch in self.train_data.epoch(epoch):
                loss, grad_norm = self.train_step(batch.to(self.device))
                self.step += 1
                window_tokens += batch.num_target_tokens
                total_tokens += batch.num_target_tokens
                bar.update()
                if self.step % config.log_every == 0:
                    elapsed = time.monotonic() - window_start
                    self._log_train(loss, grad_norm, window_tokens / elapsed)
                    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{window_tokens / elapsed:.0f}")
                    window_tokens, window_start = 0, time.monotonic()
                if self.step % config.valid_every == 0:
                    validation_start = time.monotonic()
                    self._validate_and_save(epoch)
                    validated_at = self.step
                    validation_seconds += time.monotonic() - validation_start
                    window_tokens, window_start = 0, time.monotonic()
                if self._should_stop(epoch, start, within_epoch=True):
                    break
            epoch += 1
        bar.close()
        training_seconds = time.monotonic() - start - validation_seconds
        if validated_at != self.step:
            self._validate_and_save(epoch)
        self.writer.flush()
        log.info("trained %d steps (%d epochs begun) in %.1f min plus %.1f min validating; "
                 "%.0f target tokens/s while training", self.step, epoch, training_seconds / 60,
                 validation_seconds / 60, total_tokens / training_seconds)
        return self.checkpoint_dir / "best.pt"

    def _should_stop(self, epoch: int, start: float, within_epoch: bool = False) -> bool:
        config = self.config
        if config.max_steps is not None and self.step >= config.max_steps:
            return True
        if config.max_minutes is not None and time.monotonic() - start >= 60 * config.max_minutes:
            return True
        return not within_epoch and config.max_epochs is not None and epoch >= config.max_epochs

    def _log_train(self, loss: float, grad_norm: float, tokens_per_second: float) -> None:
        scalars = {"loss": loss, "lr": self.optimizer.param_groups[0]["lr"], "grad_norm": grad_norm,
                   "tokens_per_s": tokens_per_second}
        for name, value in scalars.items():
            self.writer.add_scalar(f"train/{name}", value, self.step)
        log.info("step %d: loss %.3f lr %.2g grad norm %.2f, %.0f target tokens/s", self.step, loss,
                 scalars["lr"], grad_norm, tokens_per_second)

    def _validate_and_save(self, epoch: int) -> None:
        metrics = self.validate()
        for name, value in metrics.items():
            self.writer.add_scalar(f"valid/{name}", value, self.step)
        log.info("step %d: valid loss %.3f ppl %.2f BLEU %.2f", self.step, metrics["loss"], metrics["ppl"],
                 metrics["bleu"])
        payload = {"model": self.model.state_dict(), "step": self.step, "epoch": epoch,
                   "valid": metrics, **self.checkpoint_extras}
        save_checkpoint(self.checkpoint_dir / "last.pt", {**payload, "optimizer": self.optimizer.state_dict()})
        if metrics["bleu"] > self.best_bleu:
            self.best_bleu = metrics["bleu"]
            save_checkpoint(self.checkpoint_dir / "best.pt", payload)
