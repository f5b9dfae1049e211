"""What TensorBoard shows: scalars, attention maps, sample translations and hyperparameters.

`Board` is the one place that knows the tags; the trainer hands it plain values. Attention maps
are drawn with matplotlib's object API (`Figure` + Agg canvas, no pyplot): nothing is
registered globally, so figures cannot leak and drawing is safe off the main thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from nmt.data.batching import collate
from nmt.modules.attention import Attention
from nmt.modules.seq2seq import Seq2Seq
from nmt.tokenizer import EOS_ID, Tokenizer

HParamValue = float | int | str | bool

CELL_INCHES = 0.3  # one attention weight; figures grow with the sentence lengths
CHAR_INCHES = 0.08  # room per label character at FONT_SIZE
FONT_SIZE = 9
DPI = 100
COLORMAP = "viridis"


@dataclass(frozen=True)
class AttentionExample:
    """The attention of one translated sentence.

    Attributes:
        source_pieces: source subwords, ending with "</s>".
        output_pieces: output subwords, ending with "</s>".
        weights: (T, S) weight of each source position when each output piece was produced.
    """

    source_pieces: list[str]
    output_pieces: list[str]
    weights: np.ndarray


def attention_examples(model: Seq2Seq, src_ids: list[list[int]], output_ids: list[list[int]],
                       src_tokenizer: Tokenizer, tgt_tokenizer: Tokenizer, device: torch.device
                       ) -> list[AttentionExample]:
    """The attention each output token paid when it was produced, from one teacher-forced pass.

    Teacher forcing over the model's own outputs gives the same weights as the step-by-step
    search that produced them, in one batched call.

    Args:
        model: the unwrapped model (not its DDP wrapper); its train/eval mode is restored.
        src_ids: source ids without EOS; output_ids: the search's outputs without BOS/EOS.
        src_tokenizer, tgt_tokenizer: name the pieces.
        device: where the model is.

    Returns:
        One example per sentence, cropped to (len(output) + 1, len(source) + 1); empty for a
        model without attention (its fixed context has no weights to show).
    """
    if not isinstance(model.decoder.attention, Attention):
        return []
    batch = collate(src_ids, output_ids, list(range(len(src_ids)))).to(device)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        _, weights = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, S)
    model.train(was_training)
    weights = weights.double().cpu().numpy()  # double: exact for any model dtype (bf16 has no numpy type)
    examples = []
    for row, (src, out) in enumerate(zip(src_ids, output_ids)):
        source = [src_tokenizer.processor.id_to_piece(i) for i in [*src, EOS_ID]]
        output = [tgt_tokenizer.processor.id_to_piece(i) for i in [*out, EOS_ID]]
        examples.append(AttentionExample(source, output, weights[row, : len(output), : len(source)]))
    return examples


def _label(piece: str) -> str:
    """Sentencepiece's word-start mark "▁" as "_": every font has it, and word starts stay visible."""
    return piece.replace("\u2581", "_")


def heatmap_inches(example: AttentionExample) -> tuple[float, float]:
    """Width and height of a heatmap with its tick labels: a cell per weight plus the longest
    label on each axis, so labels stay legible and figures grow with the sentence lengths."""
    num_outputs, num_sources = example.weights.shape
    width = CELL_INCHES * num_sources + CHAR_INCHES * max(len(_label(p)) for p in example.output_pieces)
    height = CELL_INCHES * num_outputs + CHAR_INCHES * max(len(_label(p)) for p in example.source_pieces)
    return width, height


def draw_attention(axes: Axes, example: AttentionExample) -> AxesImage:
    """Draws the weights into `axes`: source pieces across, output pieces down, colours spanning
    0 to 1 in every map so that maps of different steps and systems compare."""
    num_outputs, num_sources = example.weights.shape
    image = axes.imshow(example.weights, cmap=COLORMAP, vmin=0.0, vmax=1.0)
    axes.set_xticks(range(num_sources), [_label(p) for p in example.source_pieces], rotation=90, fontsize=FONT_SIZE)
    axes.set_yticks(range(num_outputs), [_label(p) for p in example.output_pieces], fontsize=FONT_SIZE)
    return image


def attention_figure(example: AttentionExample) -> np.ndarray:
    """A heatmap of the weights (`draw_attention`) with axis titles and a colorbar.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    width, height = heatmap_inches(example)
    width, height = width + 1.5, height + 0.8  # + y axis title and colorbar; x axis title
    figure = Figure(figsize=(max(width, 3.0), max(height, 2.5)), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    image = draw_attention(axes, example)
    axes.set_xlabel("source", fontsize=FONT_SIZE)
    axes.set_ylabel("output", fontsize=FONT_SIZE)
    figure.colorbar(image, ax=axes, shrink=0.8).ax.tick_params(labelsize=FONT_SIZE)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()  # copy: the buffer belongs to the canvas


def flatten_hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, HParamValue]:
    """A nested resolved config -> dotted keys with values the HParams dashboard accepts.

    `_target_` is kept (as the class path string): it is what tells runs apart, e.g. which
    attention scorer. Hydra's other underscore keys (`_partial_`, `_recursive_`, ...) say how
    to instantiate, not what was trained, and are dropped. None becomes "null"; lists and
    anything else not a bool, number or string become their `str`.

    Args:
        config: e.g. `OmegaConf.to_container(cfg, resolve=True)`.
        prefix: dotted path of `config` itself (for the recursion).
    """
    flat: dict[str, HParamValue] = {}
    for key, value in config.items():
        if key.startswith("_") and key != "_target_":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_hparams(value, f"{name}."))
        elif value is None:
            flat[name] = "null"
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


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

    def hparams(self, hparams: dict[str, HParamValue], metrics: dict[str, float]) -> None:
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
