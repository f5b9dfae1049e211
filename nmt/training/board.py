"""What TensorBoard shows: scalars, attention maps, sample translations and hyperparameters.

`Board` is the one place that knows the tags; the trainer hands it plain values (the maps are
drawn by `nmt.decoding.attention_maps`).
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from nmt.decoding.attention_maps import AttentionExample, attention_figure
from nmt.utils.config import FlatValue


def _markdown_cell(text: str) -> str:
    """Text that stays inside its table cell and is shown literally (no emphasis, no HTML)."""
    for char in "\\`*_[]<>|":
        text = text.replace(char, "\\" + char)
    return text.replace("\n", " ")


class Board:
    """TensorBoard events of one run: every tag the project writes is named here.

    Tags: `{prefix}/{name}` scalars (`train/...`, `valid/...`), `valid/attention/{i}` images,
    `valid/samples` text, and the HParams summary with `hparams/{metric}` scalars, all in
    one event directory so the HParams dashboard links a run's settings to its curves.

    Args:
        log_dir: the event directory; None writes nothing (DDP ranks other than 0), and every
            method is then a no-op.
        purge_step: on resume, the step the run continues from: events a killed run wrote
            after it are dropped, so curves continue without a doubled stretch.
    """

    def __init__(self, log_dir: Path | None, purge_step: int | None = None) -> None:
        self.writer = SummaryWriter(str(log_dir), purge_step=purge_step) if log_dir is not None else None

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        """Writes each value under `{prefix}/{name}`."""
        if self.writer is None:
            return
        for name, value in values.items():
            self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def attention_maps(self, examples: list[AttentionExample], step: int) -> None:
        """One heatmap image per example, under `valid/attention/{i}`."""
        if self.writer is None:
            return
        for i, example in enumerate(examples):
            self.writer.add_image(f"valid/attention/{i}", attention_figure(example), step, dataformats="HWC")

    def samples(self, sources: list[str], hypotheses: list[str], references: list[str], step: int) -> None:
        """A markdown table source | hypothesis | reference under `valid/samples`."""
        if self.writer is None:
            return
        rows = ["| source | hypothesis | reference |", "| --- | --- | --- |"]
        for cells in zip(sources, hypotheses, references, strict=True):
            rows.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
        self.writer.add_text("valid/samples", "\n".join(rows), step)

    def hparams(self, hparams: dict[str, FlatValue], metrics: dict[str, float]) -> None:
        """The run's settings and final metrics for the HParams dashboard.

        Written into the scalars' own event directory (`SummaryWriter.add_hparams` would open a
        separate timestamped run), with each metric also a scalar `hparams/{name}`: the
        dashboard reads metric values from scalars with the tags the summary names.
        """
        if self.writer is None:
            return
        tagged = {f"hparams/{name}": value for name, value in metrics.items()}
        for summary in hparams_summaries(hparams, tagged):
            self.writer.file_writer.add_summary(summary)
        for tag, value in tagged.items():
            self.writer.add_scalar(tag, value, 0)

    def flush(self) -> None:
        """Writes pending events to disk."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        if self.writer is not None:
            self.writer.close()
