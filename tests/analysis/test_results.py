"""Results tables: runs found and grouped by what their overrides vary, mean ± sample std over
seeds, the group bootstrap equal to sacrebleu's paired bootstrap for one seed per system, the
by-length figure of groups, and one-line errors."""

import csv
import json
import math
import random

import pytest
import sacrebleu
import yaml

from nmt.analysis.length import length_buckets, word_lengths
from nmt.analysis.results import find_runs, group_runs
from nmt.cli.collect import main as collect_main
from nmt.metrics.bleu import group_bootstrap, paired_bootstrap

WORDS = "the a dog cat runs sleeps on under red big small house tree river stone".split()
BAHDANAU = ["+experiment=bahdanau", "trainer.max_steps=600", "name=study_bahdanau", "trainer.progress_bar=false"]
ENCDEC = ["+experiment=encdec", "trainer.max_steps=600", "name=study_encdec"]


def make_run(
    root,
    overrides,
    seed=1,
    bleu=30.0,
    chrf=50.0,
    valid=20.0,
    seconds=600.0,
    tokens=1000.0,
    hypotheses=None,
    data=None,
    scorer="nmt.modules.attention.AdditiveScorer",
):
    """A finished run as training leaves it: summary.json, Hydra's overrides, and test.hyp if given."""
    (root / ".hydra").mkdir(parents=True)
    (root / ".hydra" / "overrides.yaml").write_text(
        yaml.safe_dump([*overrides, f"seed={seed}", f"hydra.sweep.dir={root.parent}"])
    )
    decoder = {"_target_": "nmt.modules.decoder.BahdanauDecoder", "scorer": scorer and {"_target_": scorer}}
    summary = {
        "config": {"name": "study", "seed": seed, "model": {"decoder": decoder}, "data": data or {}},
        "parameters": 123456,
        "steps": 600,
        "best_step": 500,
        "best_valid": {"bleu": valid, "ppl": 9.5},
        "test": {"bleu": bleu, "chrf": chrf},
        "training_seconds": seconds,
        "wall_seconds": seconds + 60,
        "target_tokens_per_second": tokens,
    }
    (root / "summary.json").write_text(json.dumps(summary))
    if hypotheses is not None:
        (root / "test.hyp").write_text("".join(f"{h}\n" for h in hypotheses))
    return root


def sweeps(tmp_path):
    """Two sweeps: bahdanau with two scorers x 3 seeds (jobs 0-5) and encdec x 3 seeds; a job that failed."""
    for job, (attention, seed) in enumerate((a, s) for a in ("dot", "general") for s in (1, 2, 3)):
        make_run(tmp_path / "multirun" / "bahdanau" / str(job), [*BAHDANAU, f"model/attention={attention}"], seed)
    for job, seed in enumerate((1, 2, 3)):
        make_run(tmp_path / "multirun" / "encdec" / str(job), ENCDEC, seed, scorer=None)
    failed = tmp_path / "multirun" / "encdec" / "3"
    failed.mkdir()
    (failed / "train.log").write_text("step 100: loss 5.1\nRuntimeError: CUDA out of memory\n")
    return tmp_path / "multirun"


def corpus(count):
    """References, and a source per reference (one word fewer)."""
    references = [" ".join(random.choices(WORDS, k=random.randint(2, 30))) for _ in range(count)]
    return [" ".join(r.split()[1:]) or "x" for r in references], references


def noisy(references, keep):
    """Each reference word kept with probability `keep`, else replaced by a random word."""
    return [" ".join(w if random.random() < keep else random.choice(WORDS) for w in r.split()) for r in references]


def test_runs_group_by_the_overrides_that_vary_and_a_failed_job_is_skipped(tmp_path, capsys):
    runs, skipped = find_runs([sweeps(tmp_path)])
    assert len(runs) == 9 and [(s.root.name, s.reason) for s in skipped] == [
        ("3", "no summary.json; train.log: RuntimeError: CUDA out of memory")
    ]
    systems, common = group_runs(runs)
    assert common == ["trainer.max_steps=600"]
    assert {s.label: sorted(r.value("config.seed") for r in s.runs) for s in systems} == {
        "experiment=bahdanau model/attention=dot": [1, 2, 3],
        "experiment=bahdanau model/attention=general": [1, 2, 3],
        "experiment=encdec": [1, 2, 3],
    }

    collect_main([str(tmp_path / "multirun"), "--output", str(tmp_path / "results"), "--bootstrap", "0"])
    out, err = capsys.readouterr()
    assert f"skipped: {tmp_path / 'multirun' / 'encdec' / '3'}: no summary.json" in err
    assert "common settings: trainer.max_steps=600" in out
    assert (
        "9 runs; their wall-clock time (start-up, training, validation, test) adds up to 1.65 hours" in out
    )  # 9 x 660 s
    assert (
        len((tmp_path / "results.md").read_text().splitlines()) == 3 + 2 + 3
    )  # notes and a blank line, header, 3 systems


def test_means_and_sample_standard_deviations(tmp_path):
    # by hand: 30, 32, 34 -> 32 ± 2; 50, 53, 56 -> 53 ± 3; 20, 20, 23 -> 21 ± sqrt(3)
    for seed, (bleu, chrf, valid, minutes) in enumerate([(30, 50, 20, 10), (32, 53, 20, 20), (34, 56, 23, 60)], 1):
        make_run(tmp_path / "a" / str(seed), BAHDANAU, seed, bleu, chrf, valid, seconds=60 * minutes, tokens=seed)
    make_run(tmp_path / "b" / "0", ENCDEC, 1, bleu=40.0)
    collect_main(
        [str(tmp_path / "a"), str(tmp_path / "b"), "--output", str(tmp_path / "out" / "t"), "--bootstrap", "0"]
    )
    rows = {row["system"]: row for row in csv.DictReader((tmp_path / "out" / "t.csv").open())}
    a, b = rows["experiment=bahdanau"], rows["experiment=encdec"]
    assert (a["runs"], a["seeds"], a["parameters"]) == ("3", "1 2 3", "123456")
    assert [
        float(a[k])
        for k in (
            "test BLEU",
            "test BLEU std",
            "test chrF",
            "test chrF std",
            "valid BLEU",
            "training minutes",
            "target tokens/s",
        )
    ] == pytest.approx([32, 2, 53, 3, 21, 30, 2])
    assert float(a["valid BLEU std"]) == pytest.approx(math.sqrt(3))
    assert b["test BLEU"] == "40.0" and b["test BLEU std"] == ""  # one run: no spread
    markdown = (tmp_path / "out" / "t.md").read_text()
    assert "| experiment=encdec | 1 | 1 | 40.00 ± — |" in markdown
    assert "| experiment=bahdanau | 3 | 1 2 3 | 32.00 ± 2.00 | 53.00 ± 3.00 | 21.00 ± 1.73 |" in markdown
    assert markdown.index("encdec") < markdown.index("bahdanau")  # best mean test BLEU first


def test_one_seed_per_system_is_sacrebleus_paired_bootstrap():
    _, references = corpus(300)
    outputs = {"base": noisy(references, 0.7), "near": noisy(references, 0.7), "worse": noisy(references, 0.5)}
    for baseline in ("base", "near"):
        names = [baseline, *(n for n in outputs if n != baseline)]
        expected = paired_bootstrap([(n, outputs[n]) for n in names], [references], samples=300, seed=7)
        test = group_bootstrap([(n, [(n, outputs[n])]) for n in names], [references], samples=300, seed=7)
        for metric, name in (("bleu", "BLEU"), ("chrf", "chrF2")):
            assert test.p_values[metric] == [r.p_value for r in expected.results[name]]
            assert [s[0] for s in test.scores[metric]] == pytest.approx([r.score for r in expected.results[name]])
        assert 0.05 < test.p_values["bleu"][1] < 1 and test.p_values["bleu"][2] < 0.01  # not just the extremes
    other_seed = group_bootstrap([(n, [(n, outputs[n])]) for n in names], [references], samples=300, seed=9)
    assert other_seed.p_values["bleu"][1] != test.p_values["bleu"][1]  # the seed matters: the equality is not vacuous


def test_groups_identical_equal_and_clearly_better_systems():
    _, references = corpus(300)
    good = [noisy(references, 0.8) for _ in range(3)]
    equal = [noisy(references, 0.8) for _ in range(3)]
    bad = [noisy(references, 0.6) for _ in range(3)]
    named = lambda runs: [(f"seed{k}", h) for k, h in enumerate(runs)]  # noqa: E731
    test = group_bootstrap(
        [("good", named(good)), ("same", named(good[::-1])), ("equal", named(equal)), ("bad", named(bad))],
        [references],
        samples=200,
    )
    assert test.p_values["bleu"][:2] == [None, 1.0] and test.p_values["chrf"][1] == 1.0
    assert test.p_values["bleu"][2] > 0.05 and test.p_values["bleu"][3] < 0.01
    bleu = [sacrebleu.corpus_bleu(h, [references]).score for runs in (good, good[::-1], equal, bad) for h in runs]
    assert [s for system in test.scores["bleu"] for s in system] == pytest.approx(bleu)


def test_by_length_figure_of_groups_is_the_mean_of_the_seeds(tmp_path, capsys):
    sources, references = corpus(240)
    (tmp_path / "test.de").write_text("".join(f"{s}\n" for s in sources))
    (tmp_path / "test.en").write_text("".join(f"{r}\n" for r in references))
    seeds = [noisy(references, 0.8), noisy(references, 0.6)]
    for seed, hypotheses in enumerate(seeds, 1):
        make_run(
            tmp_path / "runs" / "a" / str(seed),
            BAHDANAU,
            seed,
            hypotheses=hypotheses,
            bleu=sacrebleu.corpus_bleu(hypotheses, [references]).score,
        )
    single = noisy(references, 0.5)
    make_run(
        tmp_path / "runs" / "b" / "1",
        ENCDEC,
        1,
        hypotheses=single,
        bleu=sacrebleu.corpus_bleu(single, [references]).score,
    )
    prefix = tmp_path / "plots" / "by_length"
    collect_main(
        [
            str(tmp_path / "runs"),
            "--src",
            str(tmp_path / "test.de"),
            "--ref",
            str(tmp_path / "test.en"),
            "--by-length",
            str(prefix),
            "--min-bucket",
            "60",
            "--output",
            str(tmp_path / "results"),
        ]
    )
    out, _ = capsys.readouterr()
    assert prefix.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    assert prefix.with_suffix(".svg").is_file()

    buckets = length_buckets(word_lengths(sources), 10, 60)
    assert len(buckets) >= 2
    lines = prefix.with_suffix(".md").read_text().splitlines()
    assert lines[0] == "| source length | sentences | experiment=bahdanau | experiment=encdec |"
    for bucket, line in zip(buckets, lines[2:], strict=True):
        per_seed = [
            sacrebleu.corpus_bleu([h[i] for i in bucket.indices], [[references[i] for i in bucket.indices]]).score
            for h in (*seeds, single)
        ]
        spread = abs(per_seed[0] - per_seed[1]) / math.sqrt(2)  # the sample std of two values
        assert line == (
            f"| {bucket.label} | {len(bucket.indices)} | {(per_seed[0] + per_seed[1]) / 2:.2f} ± "
            f"{spread:.2f} | {per_seed[2]:.2f} ± — |"
        )
    assert "\n".join(lines) in out


def test_default_reference_is_the_runs_test_set(tmp_path, capsys):
    sources, references = corpus(50)
    data = {
        "_target_": "nmt.data.sources.ParallelFiles",
        "src_lang": "de",
        "tgt_lang": "en",
        **{split: str(tmp_path / split) for split in ("train", "valid", "test")},
    }
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.de").write_text("".join(f"{s}\n" for s in sources))
        (tmp_path / f"{split}.en").write_text("".join(f"{r}\n" for r in references))
    for name, keep in (("a", 0.8), ("b", 0.4)):
        hypotheses = noisy(references, keep)
        make_run(
            tmp_path / "runs" / name,
            [f"+experiment={name}"],
            hypotheses=hypotheses,
            data=data,
            bleu=sacrebleu.corpus_bleu(hypotheses, [references]).score,
        )
    collect_main([str(tmp_path / "runs"), "--bootstrap", "100", "--output", str(tmp_path / "results")])
    out, err = capsys.readouterr()
    assert f"against {tmp_path / 'test.en'}" in out and "warning" not in err
    assert "| experiment=a (baseline) |" in out


def test_one_row_per_run(tmp_path, capsys):
    sweeps(tmp_path)
    collect_main([str(tmp_path / "multirun" / "encdec"), "--runs", "--output", str(tmp_path / "runs")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| name | decoder | scorer | parameters | steps | best step | valid BLEU (greedy) |")
    assert (
        lines[2]
        == (
            f"| study | BahdanauDecoder | none | 123,456 | 600 | 500 | 20.00 | 9.50 | 30.00 | 50.00 "
            f"| {tmp_path / 'multirun' / 'encdec' / '0'} |"
        )
        and len(lines) == 2 + 3 + 1
    )


def bad_json(tmp_path):
    make_run(tmp_path / "runs" / "0", BAHDANAU)
    (tmp_path / "runs" / "0" / "summary.json").write_text("{not json")
    return [str(tmp_path / "runs")], "runs/0/summary.json: not a readable JSON file"


def short_hypotheses(tmp_path):
    (tmp_path / "ref.en").write_text("a b\nc d\ne f\n")
    make_run(
        tmp_path / "runs" / "0",
        BAHDANAU,
        hypotheses=["a b", "c d", "e f"],
        bleu=sacrebleu.corpus_bleu(["a b", "c d", "e f"], [["a b", "c d", "e f"]]).score,
    )
    make_run(tmp_path / "runs" / "1", ENCDEC, hypotheses=["a b", "c d"])
    return (
        [str(tmp_path / "runs"), "--ref", str(tmp_path / "ref.en")],
        "runs/1/test.hyp: reference 1 has 3 lines, hypotheses have 2",
    )


def unknown_baseline(tmp_path):
    make_run(tmp_path / "runs" / "0", BAHDANAU)
    return [str(tmp_path / "runs"), "--baseline", "luong"], "--baseline 'luong': no such system"


def no_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    return [str(tmp_path / "empty")], "empty: no run directories below it"


def only_unfinished(tmp_path):
    (tmp_path / "runs" / "0").mkdir(parents=True)
    (tmp_path / "runs" / "0" / "train.log").write_text("step 1\n")
    return [str(tmp_path / "runs")], "no finished runs (summary.json) in"


def other_references(tmp_path):
    (tmp_path / "ref.en").write_text("a b c d\ne f g h\n")
    make_run(tmp_path / "runs" / "0", BAHDANAU, hypotheses=["a b c d", "e f g h"], bleu=100.0)
    make_run(tmp_path / "runs" / "1", ENCDEC, hypotheses=["a b c d", "x y z w"], bleu=100.0)  # scored elsewhere
    return (
        [
            str(tmp_path / "runs"),
            "--ref",
            str(tmp_path / "ref.en"),
            "--bootstrap",
            "0",
            "--by-length",
            str(tmp_path / "by_length"),
            "--src",
            str(tmp_path / "ref.en"),
        ],
        "runs/1/test.hyp: BLEU 50.00 against",
    )


def a_seed_twice(tmp_path):
    make_run(tmp_path / "first" / "0", BAHDANAU, seed=1)
    make_run(tmp_path / "again" / "0", [*reversed(BAHDANAU)], seed=1)  # the same system, spelled in another order
    return [str(tmp_path / "first"), str(tmp_path / "again")], "has seed=1 twice"


@pytest.mark.parametrize(
    "case", [bad_json, short_hypotheses, unknown_baseline, no_runs, only_unfinished, other_references, a_seed_twice]
)
def test_errors_are_one_line(tmp_path, capsys, case):
    argv, message = case(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        collect_main([*argv, "--output", str(tmp_path / "results")])
    error = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("skipped: ")]
    assert exit_.value.code == 2 and len(error) == 1 and error[0].startswith("error: ") and message in error[0]
    assert not (tmp_path / "results.md").exists()


def test_a_system_is_its_overrides_in_any_order_and_spelling(tmp_path):
    make_run(tmp_path / "runs" / "0", ["+experiment=bahdanau", "model/attention=dot", "trainer.max_steps=600"], seed=1)
    make_run(tmp_path / "runs" / "1", ["trainer.max_steps=600", "model/attention=dot", "experiment=bahdanau"], seed=2)
    make_run(tmp_path / "runs" / "2", ["+experiment=bahdanau", "model/attention=general", "trainer.max_steps=600"])
    runs, _ = find_runs([tmp_path / "runs", tmp_path / "runs" / ".." / "runs"])  # the same runs named twice
    systems, common = group_runs(runs)
    assert len(runs) == 3 and common == ["experiment=bahdanau", "trainer.max_steps=600"]
    assert {s.label: [r.layout.root.name for r in s.runs] for s in systems} == {
        "model/attention=dot": ["0", "1"],
        "model/attention=general": ["2"],
    }
