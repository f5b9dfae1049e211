"""Scores with signatures, paired bootstrap resampling, and the `nmt-evaluate` tool."""

import os
import random

import pytest

from nmt.cli.evaluate import main as evaluate_main
from nmt.metrics.bleu import paired_bootstrap, score
from nmt.utils.errors import UserError

WORDS = "the a dog cat runs sleeps on under red big small house tree park man woman".split()


def corpus(count: int) -> tuple[list[str], list[str]]:
    """References and a system that gets about 70% of the words right (seeded by the autouse fixture)."""
    references = [" ".join(random.choices(WORDS, k=random.randint(4, 15))) for _ in range(count)]
    hypotheses = [" ".join(w if random.random() < 0.7 else random.choice(WORDS) for w in r.split()) for r in references]
    return references, hypotheses


def test_ter_by_hand_with_signatures():
    scores = score(["a b c d"], [["a b c e"]])
    assert scores.ter == pytest.approx(25.0)  # one substitution / four reference words
    assert scores.bleu_signature.startswith("nrefs:1|case:mixed") and "tok:13a" in scores.bleu_signature
    assert "nrefs:1" in scores.chrf_signature and "tok:tercom" in scores.ter_signature
    assert {"bleu", "chrf", "ter", "ter_signature"} <= set(scores.as_dict())


def test_length_mismatch_names_the_reference():
    with pytest.raises(UserError, match="reference 1 has 1 lines, hypotheses have 2"):
        score(["a", "b"], [["a"]])


def test_bootstrap_self_near_and_clearly_better():
    references, hypotheses = corpus(150)
    near = [*hypotheses[:-1], references[-1]]  # one sentence fixed
    garbage = ["house house house"] * len(references)
    comparison = paired_bootstrap(
        [("base", hypotheses), ("same", list(hypotheses)), ("near", near), ("refs", references), ("garbage", garbage)],
        [references],
        samples=300,
    )
    assert comparison.systems == ["base", "same", "near", "refs", "garbage"]
    for metric in ("BLEU", "chrF2"):
        base, same, near_result, refs, bad = comparison.results[metric]
        assert base.p_value is None and same.p_value == 1.0 and near_result.p_value > 0.05
        assert refs.p_value < 0.05 and bad.p_value < 0.05
        assert refs.score == pytest.approx(100.0) and base.ci > 0
    assert "bs:300|seed:12345" in comparison.signatures["BLEU"]
    assert str(comparison).splitlines()[2].startswith("| base (baseline) |")


def test_bootstrap_is_repeatable_and_leaves_the_environment_alone():
    references, hypotheses = corpus(60)
    other = [" ".join(reversed(h.split())) for h in hypotheses]
    before = os.environ.get("SACREBLEU_SEED")
    runs = [
        paired_bootstrap([("a", hypotheses), ("b", other)], [references], samples=200, seed=seed) for seed in (7, 7, 8)
    ]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert "seed:7" in runs[0].signatures["BLEU"] and os.environ.get("SACREBLEU_SEED") == before


def write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def test_tool_one_system_several_systems_and_by_length(tmp_path, capsys):
    references, hypotheses = corpus(80)
    ref, hyp = write(tmp_path / "ref.txt", references), write(tmp_path / "hyp.txt", hypotheses)
    better = write(tmp_path / "better.txt", references)
    src = write(tmp_path / "src.txt", references)

    evaluate_main(["--hyp", hyp, "--ref", ref])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("BLEU ") and "nrefs:1|case:mixed" in out[0]
    assert out[1].startswith("chrF ") and out[2].startswith("TER ") and len(out) == 3

    prefix = tmp_path / "by_length"
    evaluate_main(
        [
            "--hyp",
            hyp,
            better,
            "--ref",
            ref,
            "--bootstrap",
            "100",
            "--src",
            src,
            "--by-length",
            str(prefix),
            "--min-bucket",
            "20",
        ]
    )
    out = capsys.readouterr().out
    assert f"| {hyp} (baseline) |" in out and "bs:100|seed:12345" in out
    assert f"| source length | sentences | {hyp} | {better} |" in out
    assert (tmp_path / "by_length.png").is_file() and (tmp_path / "by_length.svg").is_file()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--by-length", "x"], "--by-length needs --src"),
        (["--src", "short"], "short.txt has 1 lines, "),
    ],
)
def test_tool_errors_are_one_line(tmp_path, capsys, extra, message):
    ref, hyp = write(tmp_path / "ref.txt", ["a b", "c d"]), write(tmp_path / "hyp.txt", ["a b", "c"])
    short = write(tmp_path / "short.txt", ["a"])
    extra = [short if arg == "short" else arg for arg in extra]
    with pytest.raises(SystemExit) as exit_:
        evaluate_main(["--hyp", hyp, "--ref", ref, *extra])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.strip().count("\n") == 0 and message in err


def test_tool_names_the_hypothesis_file_of_a_short_system(tmp_path, capsys):
    ref, hyp = write(tmp_path / "ref.txt", ["a b", "c d"]), write(tmp_path / "hyp.txt", ["a b", "c d"])
    short = write(tmp_path / "short.txt", ["a"])
    with pytest.raises(SystemExit):
        evaluate_main(["--hyp", hyp, short, "--ref", ref])
    assert f"{short}: reference 1 has 2 lines, hypotheses have 1" in capsys.readouterr().err
