"""BLEU by source length: buckets partition the test set, per-bucket BLEU is sacrebleu's, plots are files."""

import math
import random
import xml.etree.ElementTree as ElementTree

import pytest
import sacrebleu

from nmt.analysis.length import (
    bleu_by_length,
    bleu_by_length_of_groups,
    length_buckets,
    length_figure,
    save_figure,
    word_lengths,
)

WORDS = "the a dog cat runs sleeps on under red big small house tree".split()


def corpus(count: int) -> tuple[list[str], list[str], list[str]]:
    """Sources of 1 to 45 words, references, and noisy hypotheses (seeded by the autouse fixture)."""
    sources = [
        " ".join(random.choices(WORDS, k=random.choice([random.randint(1, 12), random.randint(1, 45)])))
        for _ in range(count)
    ]
    references = [" ".join(random.choices(WORDS, k=len(s.split()) + 1)) for s in sources]
    hypotheses = [" ".join(w if random.random() < 0.7 else random.choice(WORDS) for w in r.split()) for r in references]
    return sources, references, hypotheses


def test_merging_by_hand():
    lengths = [3] * 5 + [15] * 2 + [25] * 4 + [45]
    # width 10, at least 4: 1-10 holds 5 (closed); 11-20 holds 2, 21-30 adds 4 (closed as 11-30);
    # 41-50 holds 1, too few, so it joins the last bucket: 11-50
    buckets = length_buckets(lengths, width=10, min_count=4)
    assert [(b.label, b.indices) for b in buckets] == [("1-10", [0, 1, 2, 3, 4]), ("11-50", list(range(5, 12)))]


def test_fewer_sentences_than_the_minimum_make_one_bucket():
    buckets = length_buckets([0, 4, 30], width=10, min_count=50)
    assert [(b.label, b.indices) for b in buckets] == [("1-30", [0, 1, 2])]  # the empty source is in the first


@pytest.mark.parametrize("width,min_count", [(10, 20), (5, 7), (3, 1)])
def test_buckets_partition_and_respect_the_minimum(width, min_count):
    lengths = word_lengths(corpus(300)[0])
    buckets = length_buckets(lengths, width, min_count)
    assert sorted(i for b in buckets for i in b.indices) == list(range(len(lengths)))  # each sentence once
    assert all(len(b.indices) >= min_count for b in buckets)
    assert all(b.low <= max(lengths[i], 1) <= b.high for b in buckets for i in b.indices)
    assert all(a.high + 1 == b.low for a, b in zip(buckets, buckets[1:]))  # contiguous, ordered


def test_bucket_bleu_is_sacrebleu_on_the_bucket_sentences(tmp_path):
    sources, references, hypotheses = corpus(200)
    other = [" ".join(reversed(h.split())) for h in hypotheses]
    buckets = length_buckets(word_lengths(sources), width=10, min_count=30)
    assert len(buckets) >= 2
    table = bleu_by_length(buckets, [("a", hypotheses), ("b", other)], [references])
    for row, bucket in enumerate(buckets):
        chosen = [i for i, s in enumerate(sources) if bucket.low <= len(s.split()) <= bucket.high]
        for name, system in (("a", hypotheses), ("b", other)):
            expected = sacrebleu.corpus_bleu([system[i] for i in chosen], [[references[i] for i in chosen]]).score
            assert table.bleu[name][row] == pytest.approx(expected)
    lines = table.markdown().splitlines()
    assert lines[0] == "| source length | sentences | a | b |" and len(lines) == 2 + len(buckets)
    assert lines[2].startswith(f"| {buckets[0].label} | {len(buckets[0].indices)} | ")

    figure = length_figure(table)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels == [f"{b.label}\n(n={len(b.indices)})" for b in buckets]
    png, svg = save_figure(figure, tmp_path / "plots" / "by_length")
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert ElementTree.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg"


def test_groups_are_the_mean_and_sample_spread_of_their_runs(tmp_path):
    sources, references, hypotheses = corpus(200)
    seeds = [hypotheses, [" ".join(reversed(h.split())) for h in hypotheses], [h.upper() for h in hypotheses]]
    single = [" ".join(h.split()[1:]) for h in hypotheses]
    buckets = length_buckets(word_lengths(sources), width=10, min_count=30)
    table = bleu_by_length_of_groups(
        buckets, [("three", [(f"s{k}", h) for k, h in enumerate(seeds)]), ("one", [("s", single)])], [references]
    )
    per_seed = [bleu_by_length(buckets, [("x", h)], [references]).bleu["x"] for h in (*seeds, single)]
    for row in range(len(buckets)):
        values = [per_seed[k][row] for k in range(3)]
        mean = sum(values) / 3
        assert table.bleu["three"][row] == pytest.approx(mean)
        assert table.spread["three"][row] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 2))
        assert table.bleu["one"][row] == pytest.approx(per_seed[3][row])
    assert list(table.spread) == ["three"]  # one run: no spread
    assert table.markdown().splitlines()[2].endswith(f"{table.spread['three'][0]:.2f} | {per_seed[3][0]:.2f} ± — |")

    axes = length_figure(table).axes[0]
    assert len(axes.collections) == 1  # error bars for the system of several runs only
    assert axes.get_legend_handles_labels()[1] == ["three", "one"]
    png, _ = save_figure(length_figure(table), tmp_path / "groups")
    assert png.read_bytes().startswith(b"\x89PNG")
