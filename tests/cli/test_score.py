"""`nmt-score`: one line per pair, empty pairs kept, bad input named in one line, nothing half-written."""

import re

import pytest

from nmt import Translator
from nmt.checkpoint import save_checkpoint
from nmt.cli.score import main as score_main
from tests.test_checkpoint import tiny_checkpoint, toy_tokenizers

SOURCES = ["ka lo mi", "", "lo ka ne su", "mi"]
TARGETS = ["one two three", "two", "four five", ""]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("score")
    _, payload = tiny_checkpoint(toy_tokenizers(folder), seed=2)
    save_checkpoint(folder / "model.pt", payload)
    return folder / "model.pt"


def write(path, lines: list[str]) -> str:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)


def test_scores_per_line_equal_the_api_and_keep_empty_pairs(checkpoint, tmp_path):
    src, ref = write(tmp_path / "src", SOURCES), write(tmp_path / "ref", TARGETS)
    out, alignments = tmp_path / "scores", tmp_path / "align"
    common = ["--checkpoint", str(checkpoint), "--src", src, "--ref", ref, "--device", "cpu", "--precision", "fp32"]
    score_main([*common, "--output", str(out), "--per-token", "--alignments", str(alignments)])
    lines, links = out.read_text().split("\n")[:-1], alignments.read_text().split("\n")[:-1]
    assert len(lines) == len(links) == len(SOURCES) and lines[1] == lines[3] == "" and links[1] == links[3] == ""
    translator = Translator.from_checkpoint(checkpoint, device="cpu", precision="fp32")
    expected = translator.score(SOURCES, TARGETS)
    for line, scored in zip(lines, expected):
        if scored is None:
            continue
        log_prob, perplexity, per_token = line.split("\t")
        assert float(log_prob) == pytest.approx(scored.log_prob, abs=1e-5)
        assert float(perplexity) == pytest.approx(scored.perplexity, rel=1e-5)
        assert [float(v) for v in per_token.split()] == pytest.approx(scored.token_log_probs, abs=1e-5)
    assert links[0] == " ".join(f"{i}-{j}" for i, j in translator.align(SOURCES[:1], TARGETS[:1])[0])


@pytest.mark.parametrize(
    ("src_lines", "ref_bytes", "message"),
    [
        (["a", "b"], b"x\n", r"differ in length: .*src has 2 lines, .*ref has 1"),
        (["a", "b"], b"x\n\xff\n", r"ref:2: invalid UTF-8"),
    ],
    ids=["unequal", "invalid_utf8"],
)
def test_bad_input_is_named_in_one_line_and_writes_nothing(checkpoint, tmp_path, capsys, src_lines, ref_bytes, message):
    src = write(tmp_path / "src", src_lines)
    (tmp_path / "ref").write_bytes(ref_bytes)
    out = tmp_path / "scores"
    ref = str(tmp_path / "ref")
    with pytest.raises(SystemExit) as stopped:
        score_main(["--checkpoint", str(checkpoint), "--src", src, "--ref", ref, "--output", str(out)])
    error = capsys.readouterr().err.strip()
    assert stopped.value.code == 2 and len(error.splitlines()) == 1
    assert error.startswith("error: ") and re.search(message, error)
    assert not out.exists()


def test_a_reverse_model_without_alignments_is_refused(checkpoint, tmp_path, capsys):
    src = write(tmp_path / "src", ["a"])
    model = str(checkpoint)
    with pytest.raises(SystemExit):
        score_main(["--checkpoint", model, "--src", src, "--ref", src, "--reverse-checkpoint", model])
    assert "--reverse-checkpoint goes with --alignments" in capsys.readouterr().err
