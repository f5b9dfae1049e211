"""TensorBoard output read back with TensorBoard's own reader, and the attention it shows."""

from __future__ import annotations

import io
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

from nmt.data.batching import collate
from nmt.data.tokenizer import BOS_ID, EOS_ID
from nmt.decoding.attention_maps import AttentionExample, attention_examples, attention_figure
from nmt.decoding.search import GreedySearch
from nmt.modules.decoder import BahdanauDecoder
from nmt.modules.encoder import RNNEncoder
from nmt.modules.seq2seq import Seq2Seq
from nmt.training.board import Board
from nmt.utils.config import flatten_config
from tests.conftest import VOCAB, random_sentences, tiny_model


class Pieces:
    """Stands in for a sentencepiece processor: id i is the piece "▁w{i}" ("</s>" for EOS)."""

    def id_to_piece(self, i: int) -> str:
        return "</s>" if i == EOS_ID else f"\u2581w{i}"


class FakeTokenizer:
    processor = Pieces()


def read(log_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(log_dir), size_guidance={"images": 0, "tensors": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def stepwise_attention(model: Seq2Seq, src: list[int], out: list[int]) -> np.ndarray:
    """(len(out) + 1, len(src) + 1): the weights `decode_step` returns while the model reads
    BOS + `out` one token at a time (teacher forcing, no batching)."""
    single = collate([src], None, [0])
    memory, state = model.start(single.src, single.src_lengths)
    rows = []
    with torch.no_grad():
        for token in [BOS_ID, *out]:
            _, state, weights = model.decode_step(torch.tensor([token]), state, memory)
            rows.append(weights[0].double().numpy())
    return np.stack(rows)


def example(num_outputs: int, num_sources: int) -> AttentionExample:
    weights = np.random.default_rng(0).dirichlet(np.ones(num_sources), size=num_outputs)  # (T, S)
    return AttentionExample(
        [f"\u2581src{j}" for j in range(num_sources)], [f"\u2581out{i}" for i in range(num_outputs)], weights
    )


def test_scalars_are_read_back_with_tags_values_and_steps(tmp_path: Path) -> None:
    board = Board(tmp_path)
    board.scalars("train", {"loss": 2.5, "lr": 0.001}, step=10)
    board.scalars("train", {"loss": 2.0, "lr": 0.001}, step=20)
    board.close()
    accumulator = read(tmp_path)
    assert {"train/loss", "train/lr"} <= set(accumulator.Tags()["scalars"])
    assert [(e.step, e.value) for e in accumulator.Scalars("train/loss")] == [(10, 2.5), (20, 2.0)]


def test_attention_maps_are_png_images_that_grow_with_the_sentence(tmp_path: Path) -> None:
    board = Board(tmp_path)
    board.attention_maps([example(3, 4), example(14, 18)], step=7)
    board.close()
    accumulator = read(tmp_path)
    assert {"valid/attention/0", "valid/attention/1"} <= set(accumulator.Tags()["images"])
    short, long = (accumulator.Images(f"valid/attention/{i}")[0] for i in (0, 1))
    assert short.step == 7
    decoded = [imread(io.BytesIO(e.encoded_image_string), format="png") for e in (short, long)]
    assert decoded[0].shape[:2] == (short.height, short.width)
    assert long.width > short.width and long.height > short.height


def test_attention_figure_is_an_rgb_image_that_depends_on_the_weights() -> None:
    image = attention_figure(example(3, 4))
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    flipped = example(3, 4)
    other = attention_figure(AttentionExample(flipped.source_pieces, flipped.output_pieces, flipped.weights[::-1]))
    assert image.shape == other.shape and not np.array_equal(image, other)


def test_samples_are_a_markdown_table_of_the_three_columns(tmp_path: Path) -> None:
    board = Board(tmp_path)
    board.samples(["ein Haus", "a | b"], ["a house", "x"], ["the house", "y"], step=3)
    board.close()
    accumulator = read(tmp_path)
    (event,) = accumulator.Tensors("valid/samples/text_summary")
    text = event.tensor_proto.string_val[0].decode()
    assert event.step == 3
    lines = text.splitlines()
    assert lines[0] == "| source | hypothesis | reference |"
    assert "| ein Haus | a house | the house |" in lines
    assert "| a \\| b | x | y |" in lines  # a pipe in a sentence does not open a new column


def test_hparams_land_in_the_scalars_event_directory(tmp_path: Path) -> None:
    board = Board(tmp_path)
    board.scalars("valid", {"bleu": 12.0}, step=5)
    board.hparams({"model.attention": "additive", "optim.lr": 0.001, "data.joint": True}, {"test_bleu": 21.5})
    board.close()
    assert len(list(tmp_path.iterdir())) == 1  # one event file, no sub-run directory
    # The reader TensorBoard's server uses: the hparams summaries carry no value, and only it
    # lists them as tensors (the classic reader keeps just their plugin data).
    served = plugin_event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    served.Reload()
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "valid/bleu", "hparams/test_bleu"} <= set(
        served.Tags()["tensors"]
    )
    accumulator = read(tmp_path)
    content = accumulator.PluginTagToContent("hparams")
    experiment = HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert {h.name for h in experiment.hparam_infos} == {"model.attention", "optim.lr", "data.joint"}
    assert [m.name.tag for m in experiment.metric_infos] == ["hparams/test_bleu"]
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["model.attention"].string_value == "additive"
    assert start.hparams["optim.lr"].number_value == pytest.approx(0.001)
    assert accumulator.Scalars("hparams/test_bleu")[0].value == 21.5


def test_a_board_without_directory_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # SummaryWriter's default directory would be ./runs
    board = Board(None)
    board.scalars("train", {"loss": 1.0}, step=1)
    board.attention_maps([example(2, 2)], step=1)
    board.samples(["a"], ["b"], ["c"], step=1)
    board.hparams({"lr": 0.1}, {"bleu": 1.0})
    board.flush()
    board.close()
    assert list(tmp_path.iterdir()) == []


def test_attention_examples_equal_the_weights_greedy_search_saw() -> None:
    model = tiny_model().eval()
    src_ids = random_sentences(4)
    batch = collate(src_ids, None, list(range(len(src_ids))))
    outputs = [h.tokens for [h] in GreedySearch(max_length_offset=3)(model, batch.src, batch.src_lengths)]
    model.train()
    examples = attention_examples(model, src_ids, outputs, FakeTokenizer(), FakeTokenizer(), torch.device("cpu"))
    assert model.training  # the caller's mode is restored
    model.eval()
    for src, out, found in zip(src_ids, outputs, examples):
        assert found.weights.shape == (len(out) + 1, len(src) + 1)
        assert found.source_pieces[-1] == found.output_pieces[-1] == "</s>"
        assert found.source_pieces[0] == f"\u2581w{src[0]}"
        np.testing.assert_allclose(found.weights.sum(-1), 1.0, atol=1e-12)
        # Independently: the weights decode_step returns while replaying the greedy output.
        np.testing.assert_allclose(found.weights, stepwise_attention(model, src, out), atol=1e-12)


def test_attention_examples_are_empty_for_a_model_without_attention() -> None:
    model = Seq2Seq(
        encoder=partial(RNNEncoder, embedding_size=8, hidden_size=8),
        decoder=partial(BahdanauDecoder, embedding_size=8, hidden_size=16, readout_size=8),
        src_vocab_size=VOCAB,
        tgt_vocab_size=VOCAB,
    )
    assert attention_examples(model, [[5, 6]], [[7]], FakeTokenizer(), FakeTokenizer(), torch.device("cpu")) == []


def test_flatten_config_gives_dotted_keys_and_accepted_values() -> None:
    config = {
        "seed": 1,
        "model": {
            "_target_": "nmt.modules.seq2seq.Seq2Seq",
            "share_embeddings": False,
            "decoder": {"_partial_": True, "hidden_size": 16, "scorer": None},
        },
        "optim": {"lr": 0.001, "betas": [0.9, 0.98]},
    }
    assert flatten_config(config) == {
        "seed": 1,
        "model._target_": "nmt.modules.seq2seq.Seq2Seq",
        "model.share_embeddings": False,
        "model.decoder.hidden_size": 16,
        "model.decoder.scorer": "null",
        "optim.lr": 0.001,
        "optim.betas": "[0.9, 0.98]",
    }
