"""The Python API (`nmt.Translator`) and the translate tool built on it."""

import logging

import numpy as np
import pytest
import torch

from nmt import Translator
from nmt.checkpoint import save_checkpoint
from nmt.cli.translate import main as translate_main
from nmt.data.tokenizer import TokenizerConfig, build_tokenizers
from nmt.decoding.batches import translate_lines
from nmt.decoding.loading import load_model
from nmt.decoding.search import BeamSearch
from nmt.utils.errors import UserError
from tests.data.test_sources import write_toy
from tests.test_checkpoint import TINY_MODEL, tiny_checkpoint, toy_tokenizers

SOURCES = ["ka lo mi", "", "lo lo ka ne", "mi"]
LOCATION = {"scorer": {"_target_": "nmt.modules.attention.LocationScorer", "_partial_": True, "max_source_length": 6}}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    return toy_tokenizers(tmp_path_factory.mktemp("tokenizers"))


@pytest.fixture(scope="module")
def checkpoint(tokenizers, tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoint") / "model.pt"
    _, payload = tiny_checkpoint(tokenizers, seed=1)
    save_checkpoint(path, payload)
    return path


def test_translate_equals_the_library_path_with_the_default_search(checkpoint):
    translator = Translator.from_checkpoint(checkpoint, device="cpu")
    model, src, tgt, _ = load_model(checkpoint)
    expected = translate_lines(model, src, tgt, SOURCES, BeamSearch())  # no decode config: beam defaults
    assert translator.translate(SOURCES) == expected
    assert translator.translate(SOURCES)[1] == ""


def test_nbest_lists_are_sorted_distinct_and_carry_attention_and_alignments(checkpoint):
    translator = Translator.from_checkpoint(checkpoint, device="cpu")
    results = translator.translate_nbest(SOURCES, nbest=3, beam_size=4, attention=True, min_length_ratio=1.0)
    assert results[1] == []
    for source, nbest in ((SOURCES[0], results[0]), (SOURCES[2], results[2]), (SOURCES[3], results[3])):
        assert len(nbest) == 3
        scores = [t.score for t in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(t.target_pieces) for t in nbest}) == 3
        for translation in nbest:
            assert translation.attention.shape == (
                len(translation.target_pieces) + 1,
                len(translation.source_pieces) + 1,
            )
            np.testing.assert_allclose(translation.attention.sum(-1), 1.0, atol=1e-5)
            source_words, target_words = len(source.split()), len(translation.text.split())
            assert translation.alignment  # word links, within the sentences' words
            assert all(0 <= i < source_words and 0 <= j < target_words for i, j in translation.alignment)


def test_an_ensemble_of_one_model_twice_translates_like_the_model(checkpoint):
    single = Translator.from_checkpoint(checkpoint, device="cpu").translate_nbest(SOURCES, nbest=2)
    double = Translator.from_checkpoint([checkpoint, checkpoint], device="cpu").translate_nbest(SOURCES, nbest=2)
    for a, b in zip(single, double):
        assert [t.text for t in a] == [t.text for t in b]
        assert [t.score for t in a] == pytest.approx([t.score for t in b], abs=1e-5)


def test_ensemble_members_need_the_same_tokenizers(checkpoint, tmp_path):
    files = write_toy(tmp_path / "toy")["train"]
    other = build_tokenizers(TokenizerConfig(vocab_size=50), files.src, files.tgt, tmp_path / "cache", tmp_path / "run")
    _, payload = tiny_checkpoint(other, seed=2)
    save_checkpoint(tmp_path / "other.pt", payload)
    with pytest.raises(UserError, match="other.pt: its tokenizers differ"):
        Translator.from_checkpoint([checkpoint, tmp_path / "other.pt"], device="cpu")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"beam_size": 0}, "decode.beam_size=0"),
        ({"max_length_ratio": -1.0}, "decode.max_length_ratio=-1.0"),
        ({"temperature": 0.5}, "unknown decode option"),
        ({"search": "viterbi"}, "search='viterbi': use one of beam, greedy, sample"),
    ],
)
def test_bad_options_are_user_errors(checkpoint, options, message):
    with pytest.raises(UserError, match=message):
        Translator.from_checkpoint(checkpoint, device="cpu").translate(SOURCES, **options)


def test_other_searches_share_the_api(checkpoint):
    translator = Translator.from_checkpoint(checkpoint, device="cpu")
    greedy = translator.translate(SOURCES, search="greedy")
    assert translator.translate(SOURCES, search="sample", top_k=1) == greedy  # top-1 sampling is greedy
    assert translator.translate(SOURCES, search="beam", beam_size=1, stop_early=True) == greedy


def test_sources_over_the_models_limit_are_truncated_with_a_warning(tokenizers, tmp_path, caplog):
    _, payload = tiny_checkpoint(tokenizers, seed=3, decoder={**TINY_MODEL["decoder"], **LOCATION})
    save_checkpoint(tmp_path / "location.pt", payload)
    translator = Translator.from_checkpoint(tmp_path / "location.pt", device="cpu")
    assert translator.max_source_length == 5  # 6 positions, one of them EOS
    long = " ".join(["ka lo mi ne"] * 5)
    with caplog.at_level(logging.WARNING):
        outputs = translator.translate(["mi", long, ""], first_line=10)
    assert len(outputs) == 3 and outputs[2] == ""
    assert "line 11:" in caplog.text and "truncated to the model's limit of 5" in caplog.text


def run_tool(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        translate_main([str(a) for a in args])
        raise SystemExit(0)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_the_tool_keeps_the_line_count_with_empty_and_over_long_lines(tokenizers, tmp_path, capsys, caplog):
    _, payload = tiny_checkpoint(tokenizers, seed=3, decoder={**TINY_MODEL["decoder"], **LOCATION})
    save_checkpoint(tmp_path / "location.pt", payload)
    lines = ["ka lo", "", " ".join(["ka lo mi ne"] * 6), "mi", ""]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = run_tool(
        [
            "--checkpoint",
            tmp_path / "location.pt",
            "--input",
            tmp_path / "in.txt",
            "--device",
            "cpu",
            "--alignments",
            tmp_path / "align.txt",
            "--attention-stats",
            "--heatmaps",
            tmp_path / "maps",
            "--chunk-lines",
            2,
            "--min-length-ratio",
            1,
        ],
        capsys,
    )
    assert code == 0, err
    assert "attention: mean entropy" in err and "3 sentences" in err
    outputs = out.split("\n")[:-1]
    assert len(outputs) == 5 and outputs[1] == outputs[4] == "" and outputs[0] and outputs[3]
    assert "line 3: 24 source pieces, truncated to the model's limit of 5" in caplog.text
    assert len((tmp_path / "align.txt").read_text().split("\n")[:-1]) == 5
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [
        "line-000001.png",
        "line-000003.png",
        "line-000004.png",
    ]
    code, whole, _ = run_tool(
        [
            "--checkpoint",
            tmp_path / "location.pt",
            "--input",
            tmp_path / "in.txt",
            "--device",
            "cpu",
            "--min-length-ratio",
            1,
        ],
        capsys,
    )
    assert whole == out  # reading in chunks of 2 lines changes nothing


def test_the_tool_names_the_line_with_invalid_utf8(checkpoint, tmp_path, capsys):
    (tmp_path / "bad.txt").write_bytes(b"ka lo\nmi\nka \xff lo\n")
    code, out, err = run_tool(
        [
            "--checkpoint",
            checkpoint,
            "--input",
            tmp_path / "bad.txt",
            "--device",
            "cpu",
            "--output",
            tmp_path / "out.txt",
        ],
        capsys,
    )
    assert code == 2 and err.strip() == f"error: {tmp_path / 'bad.txt'}:3: invalid UTF-8 at byte 3 of the line"
    assert not (tmp_path / "out.txt").exists()  # the output is written atomically: nothing half done


@pytest.mark.parametrize(
    "option", [["--beam-size", "0"], ["--max-length-offset", "-3"], ["--chunk-lines", "0"], ["--top-k", "2"]]
)
def test_the_tool_rejects_bad_options_in_one_line(checkpoint, tmp_path, capsys, option):
    (tmp_path / "in.txt").write_text("ka lo\n")
    code, _, err = run_tool(["--checkpoint", checkpoint, "--input", tmp_path / "in.txt", *option], capsys)
    assert code == 2 and err.startswith("error: ") and err.strip().count("\n") == 0


def test_the_tool_writes_moses_nbest_lists(checkpoint, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("ka lo\n\nmi ne\n")
    code, out, err = run_tool(
        [
            "--checkpoint",
            checkpoint,
            "--input",
            tmp_path / "in.txt",
            "--nbest",
            3,
            "--beam-size",
            4,
            "--min-length-ratio",
            1.0,
        ],
        capsys,
    )
    assert code == 0, err
    rows = [line.split(" ||| ") for line in out.splitlines()]
    assert [r[0] for r in rows] == ["0"] * 3 + ["1"] + ["2"] * 3  # 0-based; the empty line: one empty entry
    assert rows[3] == ["1", "", "0.000000"]
    scores = [float(r[2]) for r in rows[:3]]
    assert scores == sorted(scores, reverse=True)


def test_an_older_checkpoints_decode_config_becomes_a_beam_search(tokenizers, tmp_path, caplog):
    _, payload = tiny_checkpoint(tokenizers, seed=1)
    payload["config"]["decode"] = {
        "_target_": "nmt.decoding.search.beam_search",
        "_partial_": True,
        "beam_size": 3,
        "alpha": 0.5,
        "max_length_ratio": 1.5,
        "max_length_offset": 4,
    }
    save_checkpoint(tmp_path / "old.pt", payload)
    with caplog.at_level(logging.WARNING):
        translator = Translator.from_checkpoint(tmp_path / "old.pt", device="cpu")
    assert translator.search() == BeamSearch(beam_size=3, alpha=0.5, max_length_ratio=1.5, max_length_offset=4)
    assert "from an older nmt" in caplog.text
    assert len(translator.translate(SOURCES)) == len(SOURCES)


def test_a_model_without_attention_translates_but_has_no_alignments(tokenizers, tmp_path):
    _, payload = tiny_checkpoint(tokenizers, seed=1, decoder={**TINY_MODEL["decoder"], "scorer": None})
    save_checkpoint(tmp_path / "encdec.pt", payload)
    translator = Translator.from_checkpoint(tmp_path / "encdec.pt", device="cpu")
    assert len(translator.translate(SOURCES)) == len(SOURCES)
    with pytest.raises(UserError, match="no attention"):
        translator.translate_nbest(SOURCES, attention=True)


def test_the_precision_comes_from_the_run_and_runs_the_matmuls_in_bf16(tokenizers, tmp_path):
    _, payload = tiny_checkpoint(tokenizers, seed=1)
    payload["config"]["decode_precision"] = "bf16"
    save_checkpoint(tmp_path / "bf16.pt", payload)
    translator = Translator.from_checkpoint(tmp_path / "bf16.pt", device="cpu")
    generator_dtypes = []
    translator.model.decoder.generator.register_forward_hook(lambda *args: generator_dtypes.append(args[2].dtype))
    translator.translate(SOURCES)
    assert translator.precision == "bf16" and set(generator_dtypes) == {torch.bfloat16}
    generator_dtypes.clear()
    Translator(
        translator.model, translator.src_tokenizer, translator.tgt_tokenizer, translator.decode, translator.device
    ).translate(SOURCES)  # the API's own default: fp32
    assert set(generator_dtypes) == {torch.float32}


def test_the_tool_rejects_an_unknown_precision_in_one_line(checkpoint, tmp_path, capsys):
    (tmp_path / "in.txt").write_text("ka lo\n")
    with pytest.raises(SystemExit):  # argparse: `choices`
        translate_main(["--checkpoint", str(checkpoint), "--input", str(tmp_path / "in.txt"), "--precision", "fp8"])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err
    with pytest.raises(UserError, match="precision='fp8': use one of auto, fp32, bf16, fp16"):
        Translator.from_checkpoint(checkpoint, device="cpu", precision="fp8")


def test_bf16_decoding_casts_each_weight_once_per_batch_not_once_per_step(tokenizers, tmp_path):
    """Autocast keeps a 16-bit copy of each weight for its region, except in inference mode,
    where every decoder step would cast every weight matrix again."""
    _, payload = tiny_checkpoint(tokenizers, seed=1)
    payload["config"]["decode_precision"] = "bf16"
    save_checkpoint(tmp_path / "bf16.pt", payload)
    translator = Translator.from_checkpoint(tmp_path / "bf16.pt", device="cpu", max_tokens=100_000)  # one batch
    generator = translator.model.decoder.generator.weight
    steps = []
    translator.model.decoder.generator.register_forward_hook(lambda *args: steps.append(1))
    with torch.profiler.profile(record_shapes=True) as profile:  # every output 6 tokens long: 6 steps
        translator.translate(SOURCES, search="greedy", max_length_ratio=0, max_length_offset=6, min_length_offset=6)
    weight_casts = [
        event
        for event in profile.events()
        if event.name == "aten::_to_copy" and event.input_shapes[:1] == [list(generator.shape)]
    ]
    assert len(steps) == 6 and len(weight_casts) == 1


def test_compiled_decoding_comes_from_the_run_unless_overridden(tokenizers, tmp_path):
    """`decode_compile` of the run is the default; compiled or not, the translations agree."""
    _, payload = tiny_checkpoint(tokenizers, seed=1)
    payload["config"]["decode_compile"] = True
    save_checkpoint(tmp_path / "compiled.pt", payload)
    compiled = Translator.from_checkpoint(tmp_path / "compiled.pt", device="cpu")
    eager = Translator.from_checkpoint(tmp_path / "compiled.pt", device="cpu", compile=False)
    assert compiled.model.decoder.compiled_decoding and not eager.model.decoder.compiled_decoding
    assert compiled.translate(SOURCES, beam_size=3) == eager.translate(SOURCES, beam_size=3)
    del payload["config"]["decode_compile"]  # a run from before the key: eager
    save_checkpoint(tmp_path / "older.pt", payload)
    assert not Translator.from_checkpoint(tmp_path / "older.pt", device="cpu").model.decoder.compiled_decoding
    assert Translator.from_checkpoint(tmp_path / "older.pt", device="cpu", compile=True).model.decoder.compiled_decoding
