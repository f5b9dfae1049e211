"""The alignment matrices of a few fixed test sentences, side by side for several systems.

    nmt-attention --system additive=runs/a/checkpoints/best.pt --system dot=runs/b/checkpoints/best.pt \\
        --src data/multi30k/test_2016_flickr.de --ref data/multi30k/test_2016_flickr.en \\
        --lines 3 17 42 --output docs/results/study_attention

One row per sentence, one column per system, one colour scale (0 to 1) for every panel. By default
each system reads the reference translation (teacher forcing), so the panels of a row have the same
axes and the systems' alignments compare cell by cell, the usual way alignment quality is compared.
`--target translation` shows each system's own translation (its checkpoint's test search) instead.
Every checkpoint encodes the sentences with its own tokenizers. A system without attention (the
RNNencdec baseline) gets a panel saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from nmt.data.corpus import read_lines, read_parallel
from nmt.decoding.attention_maps import (
    COLORMAP,
    DPI,
    FONT_SIZE,
    AttentionExample,
    attention_examples,
    draw_attention,
    heatmap_inches,
)
from nmt.decoding.translator import Translation, Translator
from nmt.utils.errors import UserError

TARGETS = ("reference", "translation")
NO_ATTENTION_INCHES = (2.0, 1.5)  # a panel without a matrix, where no other panel sizes its column or row
PANEL_GAP_INCHES = 0.3  # between neighbouring panels
MARGIN_INCHES = (1.8, 1.2)  # across: row labels, colorbar; down: column titles, figure labels


@dataclass(frozen=True)
class System:
    """One column of the figure: a name and the checkpoint it comes from."""

    name: str
    checkpoint: Path


@dataclass(frozen=True)
class Sentences:
    """The rows of the figure.

    Attributes:
        numbers: the sentences' 1-based line numbers in the test files.
        sources: the raw source sentences.
        references: their raw reference translations, which every system reads (teacher forcing);
            None: each system shows its own translation.
    """

    numbers: list[int]
    sources: list[str]
    references: list[str] | None


def parse_system(text: str) -> System:
    """`NAME=CHECKPOINT` -> System.

    Raises:
        UserError: without `=`, or with an empty name or path.
    """
    name, equals, path = text.partition("=")
    if not equals or not name or not path:
        raise UserError(f"--system {text!r}: use NAME=CHECKPOINT, e.g. additive=runs/a/checkpoints/best.pt")
    return System(name, Path(path))


def pick_sentences(src: str | Path, ref: str | Path | None, numbers: Sequence[int]) -> Sentences:
    """Lines `numbers` (1-based, in that order) of the test files; `ref` None: no references.

    Raises:
        UserError: naming the file, if the two differ in length, or for a number outside them or
            an empty source line (nothing to attend over).
    """
    sources, references = read_parallel(src, ref) if ref is not None else (read_lines(src), None)
    for number in numbers:
        if not 1 <= number <= len(sources):
            raise UserError(f"{src}: no line {number} (it has {len(sources)} lines, numbered from 1)")
        if not sources[number - 1].strip():
            raise UserError(f"{src}: line {number} is empty")
    return Sentences(
        list(numbers),
        [sources[n - 1] for n in numbers],
        [references[n - 1] for n in numbers] if references is not None else None,
    )


def _translation_example(translation: Translation) -> AttentionExample:
    return AttentionExample(
        [*translation.source_pieces, "</s>"], [*translation.target_pieces, "</s>"], translation.attention
    )


def system_attention(system: System, sentences: Sentences, device: str = "auto") -> list[AttentionExample] | None:
    """One system's attention over each sentence, with its own tokenizers; None if it has none.

    Reading the references, the weights come from one teacher-forced pass (`attention_examples`);
    otherwise from its checkpoint's test search, which returns the weights of its own translation.

    Raises:
        UserError: for an unreadable checkpoint, or a source longer than its location attention reads.
    """
    translator = Translator.from_checkpoint(system.checkpoint, device=device)
    if not translator.has_attention:
        return None
    src_ids = translator.src_tokenizer.encode(sentences.sources)
    limit = translator.max_source_length
    for number, ids in zip(sentences.numbers, src_ids):
        if limit is not None and len(ids) > limit:  # the translator would truncate it: not this sentence's picture
            raise UserError(
                f"{system.checkpoint}: line {number} has {len(ids)} source pieces, more than its "
                f"location attention reads ({limit}); choose shorter lines"
            )
    if sentences.references is None:
        return [
            _translation_example(nbest[0]) for nbest in translator.translate_nbest(sentences.sources, attention=True)
        ]
    return attention_examples(
        translator.model,
        src_ids,
        translator.tgt_tokenizer.encode(sentences.references),
        translator.src_tokenizer,
        translator.tgt_tokenizer,
        translator.device,
    )


def _no_attention(axes: Axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    axes.text(0.5, 0.5, "no attention", ha="center", va="center", fontsize=FONT_SIZE, transform=axes.transAxes)


def comparison_figure(
    names: Sequence[str], sentences: Sentences, columns: Sequence[list[AttentionExample] | None]
) -> Figure:
    """The grid: row r is sentence r, column c system `names[c]` with `columns[c][r]` (None: no attention).

    Each column is as wide as its widest matrix and each row as tall as its tallest, so cells stay
    square and labels legible; one colorbar serves every panel (all span 0 to 1).
    """
    sizes = [[heatmap_inches(example) for example in column] if column is not None else None for column in columns]
    widths = [max(width for width, _ in column) if column else NO_ATTENTION_INCHES[0] for column in sizes]
    heights = [
        max((column[row][1] for column in sizes if column), default=NO_ATTENTION_INCHES[1])
        for row in range(len(sentences.numbers))
    ]
    figure = Figure(
        figsize=(
            sum(widths) + PANEL_GAP_INCHES * len(widths) + MARGIN_INCHES[0],
            sum(heights) + PANEL_GAP_INCHES * len(heights) + MARGIN_INCHES[1],
        ),
        dpi=DPI,
        layout="constrained",
    )
    grid = figure.subplots(
        len(heights), len(widths), squeeze=False, gridspec_kw={"width_ratios": widths, "height_ratios": heights}
    )
    for col, (name, column) in enumerate(zip(names, columns)):
        grid[0, col].set_title(name, fontsize=FONT_SIZE + 2)
        for row, axes in enumerate(grid[:, col]):
            if column is None:
                _no_attention(axes)
            else:
                draw_attention(axes, column[row])
    for row, number in enumerate(sentences.numbers):
        grid[row, 0].set_ylabel(f"line {number}", fontsize=FONT_SIZE + 1)
    colorbar = figure.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap=COLORMAP), ax=grid, shrink=0.6)
    colorbar.set_label("attention weight", fontsize=FONT_SIZE)
    colorbar.ax.tick_params(labelsize=FONT_SIZE)
    figure.supxlabel("source pieces", fontsize=FONT_SIZE + 1)
    figure.supylabel(
        "reference pieces (teacher-forced)" if sentences.references is not None else "each system's translation",
        fontsize=FONT_SIZE + 1,
    )
    return figure


def attention_comparison(systems: Sequence[System], sentences: Sentences, device: str = "auto") -> Figure:
    """Loads each system in turn (one model in memory at a time) and draws `comparison_figure`.

    Raises:
        UserError: if two systems share a name, or a checkpoint does not load.
    """
    names = [system.name for system in systems]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"--system {repeated[0]} is given twice; name every system differently")
    return comparison_figure(names, sentences, [system_attention(system, sentences, device) for system in systems])
