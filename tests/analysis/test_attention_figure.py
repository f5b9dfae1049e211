"""`nmt-attention`: the matrices it draws, the files it writes, its one-line errors."""

import numpy as np
import pytest
from matplotlib.image import imread

from nmt import Translator
from nmt.analysis.attention_figure import System, attention_comparison, pick_sentences
from nmt.checkpoint import save_checkpoint
from nmt.cli.attention import main
from nmt.data.corpus import read_lines
from nmt.data.tokenizer import TokenizerConfig, build_tokenizers
from tests.data.test_sources import write_toy
from tests.test_checkpoint import TINY_MODEL, tiny_checkpoint, toy_tokenizers
from tests.training.test_board import stepwise_attention

LINES = [3, 1, 7]  # not in file order: rows follow the order asked for
LOCATION = {
    **TINY_MODEL["decoder"],
    "scorer": {"_target_": "nmt.modules.attention.LocationScorer", "_partial_": True, "max_source_length": 6},
}
GENERAL = {
    "_target_": "nmt.modules.decoder.LuongDecoder",
    "_partial_": True,
    "embedding_size": 8,
    "hidden_size": 16,
    "attentional_size": 16,
    "scorer": {"_target_": "nmt.modules.attention.GeneralScorer", "_partial_": True},
}


@pytest.fixture(scope="module")
def test_files(tmp_path_factory):
    return write_toy(tmp_path_factory.mktemp("toy"))["test"]


@pytest.fixture(scope="module")
def systems(tmp_path_factory):
    """Two systems with attention, each with its own tokenizers (unigram, bpe: different pieces),
    the RNNencdec baseline, and location attention over at most 5 source pieces; the models are
    returned with them to check against."""
    root = tmp_path_factory.mktemp("systems")
    unigram = toy_tokenizers(root / "unigram")
    files = write_toy(root / "bpe" / "toy")["train"]
    bpe = build_tokenizers(
        TokenizerConfig(vocab_size=60, model_type="bpe"),
        files.src,
        files.tgt,
        root / "bpe" / "cache",
        root / "bpe" / "run",
    )
    found = {}
    for name, tokenizers, seed, decoder in (
        ("additive", unigram, 1, TINY_MODEL["decoder"]),
        ("general", bpe, 2, GENERAL),
        ("encdec", unigram, 3, {**TINY_MODEL["decoder"], "scorer": None}),
        ("location", unigram, 4, LOCATION),
    ):
        model, payload = tiny_checkpoint(tokenizers, seed=seed, decoder=decoder)
        save_checkpoint(root / f"{name}.pt", payload)
        found[name] = (System(name, root / f"{name}.pt"), model.eval(), tokenizers)
    return found


def panels(figure, rows: int, columns: int):
    """The heatmap axes as a (rows, columns) grid: subplots come first, row by row; the colorbar last."""
    return np.array(figure.axes[: rows * columns], dtype=object).reshape(rows, columns)


def pieces(tokenizer, ids):
    return [tokenizer.processor.id_to_piece(i).replace("\u2581", "_") for i in ids] + ["</s>"]


def test_reference_panels_are_the_attention_of_the_model_stepping_over_the_reference(systems, test_files):
    sentences = pick_sentences(test_files.src, test_files.tgt, LINES)
    sources, references = sentences.sources, sentences.references
    assert references == [read_lines(test_files.tgt)[n - 1] for n in LINES]
    chosen = [systems["additive"], systems["general"]]
    figure = attention_comparison([system for system, _, _ in chosen], sentences, device="cpu")
    grid = panels(figure, len(LINES), len(chosen))
    assert [axes.get_title() for axes in grid[0]] == ["additive", "general"]
    assert [axes.get_ylabel() for axes in grid[:, 0]] == [f"line {n}" for n in LINES]
    src_pieces = {}
    for column, (_, model, (src_tokenizer, tgt_tokenizer)) in enumerate(chosen):
        for row, (source, reference) in enumerate(zip(sources, references)):
            src_ids, ref_ids = src_tokenizer.encode([source])[0], tgt_tokenizer.encode([reference])[0]
            axes = grid[row, column]
            drawn = axes.images[0].get_array()
            np.testing.assert_allclose(drawn, stepwise_attention(model, src_ids, ref_ids), atol=1e-6)
            np.testing.assert_allclose(drawn.sum(-1), 1.0, atol=1e-6)  # over the source, EOS included
            assert [t.get_text() for t in axes.get_xticklabels()] == pieces(src_tokenizer, src_ids)
            assert [t.get_text() for t in axes.get_yticklabels()] == pieces(tgt_tokenizer, ref_ids)
            src_pieces.setdefault(row, []).append(pieces(src_tokenizer, src_ids))
    assert all(unigram != bpe for unigram, bpe in src_pieces.values())  # each system's own tokenizers


def test_translation_panels_are_each_systems_own_translation(systems, test_files):
    system, _, _ = systems["additive"]
    sentences = pick_sentences(test_files.src, None, LINES)
    sources = sentences.sources
    figure = attention_comparison([system], sentences, device="cpu")
    best = [
        nbest[0]
        for nbest in Translator.from_checkpoint(system.checkpoint, device="cpu").translate_nbest(
            sources, attention=True
        )
    ]
    for axes, translation in zip(panels(figure, len(LINES), 1)[:, 0], best):
        np.testing.assert_allclose(axes.images[0].get_array(), translation.attention, atol=1e-6)
        assert [t.get_text() for t in axes.get_yticklabels()] == [
            p.replace("\u2581", "_") for p in translation.target_pieces
        ] + ["</s>"]


def test_the_tool_writes_png_and_svg_with_an_empty_panel_for_a_system_without_attention(
    systems, test_files, tmp_path, capsys
):
    prefix = tmp_path / "figures" / "attention"
    main(
        [
            "--system",
            f"additive={systems['additive'][0].checkpoint}",
            "--system",
            f"encdec={systems['encdec'][0].checkpoint}",
            "--src",
            str(test_files.src),
            "--ref",
            str(test_files.tgt),
            "--lines",
            *map(str, LINES),
            "--output",
            str(prefix),
            "--device",
            "cpu",
        ]
    )
    assert capsys.readouterr().out.strip() == f"wrote {prefix}.png {prefix}.svg"
    image = imread(f"{prefix}.png")
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 300
    assert "no attention" in (tmp_path / "figures" / "attention.svg").read_text()
    sentences = pick_sentences(test_files.src, test_files.tgt, LINES)
    figure = attention_comparison([systems["additive"][0], systems["encdec"][0]], sentences, device="cpu")
    for axes in panels(figure, len(LINES), 2)[:, 1]:
        assert not axes.images and [t.get_text() for t in axes.texts] == ["no attention"]


COMMON = ["--src", "{src}", "--ref", "{ref}", "--output", "{out}", "--device", "cpu"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ([*COMMON, "--lines", "1", "--system", "additive"], "--system 'additive': use NAME=CHECKPOINT"),
        ([*COMMON, "--lines", "1", "--system", "a={missing}"], "{missing}: checkpoint not found"),
        (
            [*COMMON, "--lines", "21", "--system", "a={checkpoint}"],
            "{src}: no line 21 (it has 20 lines, numbered from 1)",
        ),
        ([*COMMON, "--lines", "0", "--system", "a={checkpoint}"], "{src}: no line 0"),
        (
            [*COMMON, "--lines", "1", "--system", "a={checkpoint}", "--system", "a={checkpoint}"],
            "--system a is given twice",
        ),
        (
            ["--src", "{src}", "--output", "{out}", "--lines", "1", "--system", "a={checkpoint}"],
            "--target reference needs --ref",
        ),
        (
            [*COMMON, "--lines", "7", "--system", "a={location}"],
            "{location}: line 7 has 21 source pieces, more than its location attention reads (5)",
        ),
        (
            [
                *COMMON,
                "--lines",
                "7",
                "--system",
                "a={location}",
                "--target",
                "translation",
            ],  # not truncated in silence
            "{location}: line 7 has 21 source pieces, more than its location attention reads (5)",
        ),
        (
            [*COMMON, "--ref", "{head}", "--lines", "1", "--system", "a={checkpoint}"],
            "parallel files differ in length: {src} has 20 lines, {head} has 3",
        ),
    ],
)
def test_mistakes_end_in_one_line_and_exit_status_2(systems, test_files, tmp_path, capsys, arguments, message):
    values = {
        "src": test_files.src,
        "ref": test_files.tgt,
        "head": tmp_path / "head.tgt",
        "out": tmp_path / "out",
        "missing": tmp_path / "missing.pt",
        "checkpoint": systems["additive"][0].checkpoint,
        "location": systems["location"][0].checkpoint,
    }
    values["head"].write_text("".join(f"{line}\n" for line in read_lines(test_files.tgt)[:3]))
    with pytest.raises(SystemExit) as exit_info:
        main([argument.format(**values) for argument in arguments])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith(f"error: {message.format(**values)}") and err.count("\n") == 1
    assert not (tmp_path / "out.png").exists()
