"""Attention maps of translated sentences: the weights from one teacher-forced pass, drawn as
heatmaps with the subword pieces as labels.

Drawn with matplotlib's object API (`Figure` + Agg canvas, no pyplot): nothing is registered
globally, so figures cannot leak and drawing is safe off the main thread. TensorBoard
(`nmt.training.board`), `nmt-translate --heatmaps` and the comparison figures all draw here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from nmt.data.batching import collate
from nmt.data.tokenizer import EOS_ID, Tokenizer
from nmt.modules.attention import Attention
from nmt.modules.seq2seq import Seq2Seq

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


def attention_examples(
    model: Seq2Seq,
    src_ids: list[list[int]],
    output_ids: list[list[int]],
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    device: torch.device,
) -> list[AttentionExample]:
    """The attention each output token paid when it was produced, from one teacher-forced pass.

    Teacher forcing over the model's own outputs gives the same weights as the step-by-step
    search that produced them, in one batched call.

    Args:
        model: the unwrapped model (not its DDP wrapper); its train/eval mode is restored.
        src_ids: source ids without EOS; output_ids: the search's outputs without BOS/EOS.
        src_tokenizer: names the source pieces.
        tgt_tokenizer: names the output pieces.
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
