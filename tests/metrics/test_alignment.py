"""Attention diagnostics, hard alignments, symmetrization and AER, against hand-worked examples."""

import math
import random
import re

import numpy as np
import pytest

from nmt.cli.aer import main as aer_main
from nmt.data.alignments import Alignment, read_pharaoh, word_indices, write_pharaoh
from nmt.metrics.alignment import (
    aer_group_bootstrap,
    alignment_error_rate,
    argmax_alignment,
    argmax_coverage,
    attention_entropy,
    attention_mass,
    grow_diag_final,
    pieces_to_words,
    summarize_attention,
)
from nmt.utils.errors import UserError


@pytest.mark.parametrize("size", [1, 2, 7])
def test_entropy_is_log_size_for_uniform_and_zero_for_one_hot(size):
    uniform = np.full((3, size), 1.0 / size)
    assert np.allclose(attention_entropy(uniform), math.log(size))
    one_hot = np.eye(size)
    assert np.array_equal(attention_entropy(one_hot), np.zeros(size))


def test_coverage_mass_and_corpus_summary():
    weights = np.array([[0.7, 0.1, 0.1, 0.1], [0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]])
    assert argmax_coverage(weights) == 2 / 4  # positions 0 and 3 are someone's argmax
    assert np.allclose(attention_mass(weights), [1.4, 0.4, 0.4, 0.8])

    uniform, one_hot = np.full((2, 4), 0.25), np.array([[0.0, 1.0]])
    summary = summarize_attention([uniform, one_hot])
    assert np.allclose(summary.sentence_entropy, [math.log(4), 0.0])
    assert math.isclose(summary.mean_entropy, 2 * math.log(4) / 3)  # three output positions in all
    assert math.isclose(summary.coverage, (1 + 1) / (4 + 2))  # uniform rows: argmax 0 only; one-hot: 1 of 2


def test_argmax_alignment_and_pieces_to_words():
    # source "▁Der ▁Hunde besitzer </s>", output "▁The ▁dog ▁own er </s>"
    weights = np.array(
        [
            [0.8, 0.1, 0.05, 0.05],
            [0.1, 0.7, 0.1, 0.1],
            [0.1, 0.2, 0.6, 0.1],
            [0.1, 0.1, 0.2, 0.6],  # "er" looks at </s>: unaligned after conversion
            [0.0, 0.0, 0.1, 0.9],
        ]
    )
    links = argmax_alignment(weights)
    assert links == {(0, 0), (1, 1), (2, 2), (3, 3), (3, 4)}
    source, output = ["▁Der", "▁Hunde", "besitzer"], ["▁The", "▁dog", "▁own", "er"]
    assert word_indices(source) == [0, 1, 1] and word_indices(output) == [0, 1, 2, 2]
    # piece links (2, 2) "besitzer"-"▁own" -> word link (1, 2); links to </s> are dropped
    assert pieces_to_words(links, source, output) == {(0, 0), (1, 1), (1, 2)}


def write(path, lines):
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_aer_precision_recall_by_hand(tmp_path, capsys):
    gold = write(tmp_path / "gold.txt", ["0-0 1-1 1?2 2?2", "0-1 1-0", ""])
    hyp = write(tmp_path / "hyp.txt", ["0-0 1-2 2-1", "0-1 1-0 1-1", "0-0"])
    # sentence 1: A={00,12,21} S={00,11} P={00,11,12,22}: |A∩S|=1 |A∩P|=2
    # sentence 2: A={01,10,11} S=P={01,10}:                |A∩S|=2 |A∩P|=2
    # sentence 3: A={00} S=P={}:                            |A∩S|=0 |A∩P|=0
    # totals |A|=7 |S|=4 |P|=6 |A∩S|=3 |A∩P|=4
    # AER = 1 - (3 + 4) / (7 + 4) = 4/11; precision = |A∩P|/|A| = 4/7; recall = |A∩S|/|S| = 3/4
    scores = alignment_error_rate([a.possible for a in read_pharaoh(hyp)], read_pharaoh(gold))
    assert math.isclose(scores.aer, 4 / 11) and math.isclose(scores.precision, 4 / 7)
    assert math.isclose(scores.recall, 3 / 4)
    assert (scores.hypothesis_links, scores.sure_links, scores.possible_links) == (7, 4, 6)

    aer_main(["--hyp-align", str(hyp), "--gold", str(gold)])
    assert capsys.readouterr().out.splitlines()[:3] == ["AER 0.3636", "precision 0.5714", "recall 0.7500"]


def test_perfect_alignment_has_zero_aer_and_files_round_trip(tmp_path):
    links = [{(0, 0), (2, 1), (1, 2)}, set(), {(3, 0)}]
    path = tmp_path / "a.txt"
    write_pharaoh(path, links)
    assert path.read_text() == "0-0 1-2 2-1\n\n3-0\n"
    read = read_pharaoh(path)
    assert [a.sure for a in read] == links and [a.possible for a in read] == links
    assert alignment_error_rate(links, read).aer == 0.0


@pytest.mark.parametrize("token", ["x-2", "1-", "3", "1-2-3", "-1-2", "1?2-3", "1:2"])
def test_malformed_link_names_file_and_line(tmp_path, token, capsys):
    path = write(tmp_path / "bad.txt", ["0-0", f"0-1 {token}"])
    with pytest.raises(UserError, match=re.escape(f"bad.txt:2: bad alignment link '{token}'")):
        read_pharaoh(path)
    gold = write(tmp_path / "gold.txt", ["0-0", "0-1"])
    with pytest.raises(SystemExit) as exit_:
        aer_main(["--hyp-align", str(path), "--gold", str(gold)])
    assert exit_.value.code == 2 and capsys.readouterr().err.strip().count("\n") == 0


def test_line_count_mismatch_is_a_user_error(tmp_path, capsys):
    hyp, gold = write(tmp_path / "hyp.txt", ["0-0"]), write(tmp_path / "gold.txt", ["0-0", "1-1"])
    with pytest.raises(SystemExit):
        aer_main(["--hyp-align", str(hyp), "--gold", str(gold)])
    assert f"{hyp} has 1 lines, {gold} has 2" in capsys.readouterr().err


def test_grow_diag_final_keeps_what_both_directions_agree_on():
    links = {(0, 0), (1, 2), (2, 1)}
    assert grow_diag_final(links, links) == links


def test_grow_diag_final_grows_along_the_diagonal_then_adds_links_of_unaligned_words():
    # Intersection {(0, 0), (1, 1)}; (2, 1) neighbours (1, 1) and joins the unaligned source word
    # 2; (2, 2) neighbours (1, 1) diagonally and joins the unaligned target word 2; (4, 4), apart
    # from everything, is added by the final step because both its words are unaligned.
    forward = {(0, 0), (1, 1), (2, 1), (4, 4)}
    backward = {(0, 0), (1, 1), (2, 2)}
    assert grow_diag_final(forward, backward) == {(0, 0), (1, 1), (2, 1), (2, 2), (4, 4)}


def test_grow_diag_final_leaves_out_a_link_between_two_aligned_words():
    assert grow_diag_final({(0, 0), (1, 1)}, {(0, 0), (1, 1), (0, 1)}) == {(0, 0), (1, 1)}


def test_grow_diag_final_lies_between_the_intersection_and_the_union():
    rng = random.Random(5)
    for _ in range(200):
        forward = {(rng.randrange(6), rng.randrange(6)) for _ in range(rng.randrange(10))}
        backward = {(rng.randrange(6), rng.randrange(6)) for _ in range(rng.randrange(10))}
        found = grow_diag_final(forward, backward)
        assert forward & backward <= found <= forward | backward
        # every word either direction aligned stays aligned
        assert {i for i, _ in forward | backward} == {i for i, _ in found}
        assert {j for _, j in forward | backward} == {j for _, j in found}


def test_grow_diag_final_adds_the_forward_links_before_the_backward_ones():
    """Links on which the directions disagree entirely: symal keeps the forward direction's,
    never a mix of both."""
    assert grow_diag_final({(0, 0), (1, 1)}, {(0, 1), (1, 0)}) == {(0, 0), (1, 1)}
    assert grow_diag_final({(0, 1), (1, 0)}, {(0, 0), (1, 1)}) == {(0, 1), (1, 0)}


def test_grow_diag_final_grows_along_the_diagonal_link_by_link():
    # from (0, 0) along the diagonal: each forward link joins two words not yet aligned
    forward = {(0, 0), (1, 1), (2, 2), (3, 3)}
    assert grow_diag_final(forward, {(0, 0)}) == forward


def test_the_aer_bootstrap_equals_a_plain_loop_over_the_same_resamples():
    """One run per system: the p-value equals sacrebleu's rule applied by hand, the AER of each
    resample recomputed from its sentences' link sets."""
    rng = random.Random(5)
    gold = [
        Alignment(frozenset(s), frozenset(s) | {(9, 9)})
        for s in ({(i, i) for i in range(rng.randint(1, 6))} for _ in range(40))
    ]
    noisy = lambda keep: [  # noqa: E731
        {link for link in g.sure if rng.random() < keep} | ({(0, 1)} if rng.random() < 0.3 else set()) for g in gold
    ]
    base, better = noisy(0.6), noisy(0.8)
    indices = np.random.default_rng(12345).choice(len(gold), size=(200, len(gold)), replace=True)
    differences = [
        alignment_error_rate([better[i] for i in rows], [gold[i] for i in rows]).aer
        - alignment_error_rate([base[i] for i in rows], [gold[i] for i in rows]).aer
        for rows in indices
    ]
    observed = alignment_error_rate(better, gold).aer - alignment_error_rate(base, gold).aer
    magnitudes = np.abs(differences)
    expected = (np.sum(magnitudes - magnitudes.mean() > abs(observed)) + 1) / (len(magnitudes) + 1)
    p_values = aer_group_bootstrap([[base], [better]], gold, samples=200)
    assert p_values[0] is None and p_values[1] == pytest.approx(expected)
    assert aer_group_bootstrap([[base, better], [better, base]], gold, samples=50) == [None, 1.0]  # the same runs


def test_the_aer_bootstrap_tells_a_clear_difference_from_seed_noise():
    gold = [Alignment(frozenset({(i, i) for i in range(5)}), frozenset({(i, i) for i in range(5)}))] * 60
    perfect = [set(g.sure) for g in gold]
    wrong = [{(i, (i + 1) % 5) for i in range(5)} for _ in gold]
    half = [set(g.sure) if n % 2 else wrong[n] for n, g in enumerate(gold)]
    assert aer_group_bootstrap([[half, half], [perfect, perfect]], gold)[1] < 0.01
