"""Attention against a statistical aligner: AER of every model's alignments, with silver references.

Gold word alignments for Multi30k do not exist, so a strong statistical aligner, eflomal (Östling
& Tiedemann 2016; `pip install eflomal`), aligns the training corpus and the test set together
in both directions; its two directions, symmetrized by grow-diag-final, are the silver reference.
How far the aligner's own directions are from that reference (and from each other) says how
much the silver can be trusted, so a model's AER reads against it. Words are whitespace tokens,
as in `nmt.data.alignments` (whose word links come from the pieces' "▁" marks).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nmt.data.alignments import Alignment, Link, read_pharaoh
from nmt.metrics.alignment import AlignmentScores, alignment_error_rate, grow_diag_final
from nmt.utils.errors import UserError


@dataclass(frozen=True)
class SilverAlignments:
    """The aligner's links for the test sentences, (source word, target word) each.

    Attributes:
        forward: source -> target direction.
        backward: target -> source direction, as (source, target) links.
        symmetrized: grow-diag-final of the two: the silver reference.
    """

    forward: list[set[Link]]
    backward: list[set[Link]]
    symmetrized: list[set[Link]]


def eflomal_alignments(
    train: tuple[Sequence[str], Sequence[str]], test: tuple[Sequence[str], Sequence[str]]
) -> SilverAlignments:
    """Aligns the training and test pairs together with eflomal (more text: better statistics)
    and returns the test sentences' links.

    Raises:
        UserError: when eflomal is not installed.
    """
    forward, backward = eflomal_directions([*train[0], *test[0]], [*train[1], *test[1]])
    first = len(train[0])
    forward, backward = forward[first:], backward[first:]
    return SilverAlignments(forward, backward, [grow_diag_final(f, b) for f, b in zip(forward, backward)])


def eflomal_directions(sources: Sequence[str], targets: Sequence[str]) -> tuple[list[set[Link]], list[set[Link]]]:
    """eflomal's links of each pair in both directions, (source word, target word) each; their
    grow-diag-final is the usual symmetrized alignment (`scripts/silver_alignments.py` writes it).

    Raises:
        UserError: when eflomal is not installed, or wrote another number of alignments.
    """
    try:
        import eflomal
    except ImportError:
        raise UserError("the silver alignments need eflomal: pip install eflomal") from None
    with tempfile.TemporaryDirectory(prefix="nmt-eflomal-") as folder:
        forward_file, backward_file = Path(folder) / "forward", Path(folder) / "backward"
        eflomal.Aligner().align(
            [f"{line}\n" for line in sources],
            [f"{line}\n" for line in targets],
            links_filename_fwd=str(forward_file),
            links_filename_rev=str(backward_file),
            quiet=True,
        )
        written = [read_pharaoh(path) for path in (forward_file, backward_file)]
        if any(len(links) != len(sources) for links in written):  # eflomal does not report a failed run
            raise UserError(
                f"eflomal wrote {len(written[0])} and {len(written[1])} alignments for {len(sources)} pairs"
            )
    forward, backward = ([set(a.possible) for a in links] for links in written)
    return forward, backward


def against(links: Sequence[set[Link] | list[Link]], reference: Sequence[set[Link]]) -> AlignmentScores:
    """AER, precision and recall of `links` with every reference link counted as sure."""
    return alignment_error_rate(links, [Alignment(frozenset(r), frozenset(r)) for r in reference])


def silver_table(silver: SilverAlignments, systems: dict[str, Sequence[Sequence[Link]]]) -> list[dict[str, object]]:
    """One row per aligner and model: AER, precision and recall against the silver reference
    (and, for the aligner's forward direction, against its backward one)."""
    rows = [
        {"system": "eflomal forward", "against": "silver", **_figures(against(silver.forward, silver.symmetrized))},
        {"system": "eflomal backward", "against": "silver", **_figures(against(silver.backward, silver.symmetrized))},
        {
            "system": "eflomal forward",
            "against": "eflomal backward",
            **_figures(against(silver.forward, silver.backward)),
        },
    ]
    for name, links in systems.items():
        if len(links) != len(silver.symmetrized):
            raise UserError(f"{name}: {len(links)} alignments for {len(silver.symmetrized)} test sentences")
        rows.append({"system": name, "against": "silver", **_figures(against(links, silver.symmetrized))})
    return rows


def _figures(scores: AlignmentScores) -> dict[str, float]:
    return {"aer": scores.aer, "precision": scores.precision, "recall": scores.recall}
