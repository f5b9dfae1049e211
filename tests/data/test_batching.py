import random

import numpy as np
import pytest
import torch

from nmt.data.batching import ParallelData, bucket_batches, collate, filter_by_length
from nmt.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from tests.conftest import random_sentences


def make_lengths(count=300):
    return [random.randint(1, 40) for _ in range(count)], [random.randint(1, 40) for _ in range(count)]


def test_every_example_lands_in_exactly_one_batch_within_the_budget():
    src, tgt = make_lengths()
    batches = bucket_batches(src, tgt, max_tokens=200, max_sentences=16, rng=np.random.default_rng(1))
    assert sorted(i for batch in batches for i in batch) == list(range(len(src)))
    for batch in batches:
        assert len(batch) <= 16
        assert len(batch) * max(max(src[i], tgt[i]) + 1 for i in batch) <= 200


def test_an_example_over_the_budget_gets_a_batch_alone():
    batches = bucket_batches([3, 500, 4], [3, 2, 4], max_tokens=50)
    assert [1] in batches and sorted(map(len, batches)) == [1, 2]


def test_batches_group_similar_lengths():
    src = [random.randint(1, 40) for _ in range(1000)]
    tgt = [max(1, s + random.randint(-3, 3)) for s in src]  # translations have similar lengths
    batches = bucket_batches(src, tgt, max_tokens=400, rng=np.random.default_rng(0))
    padded = sum(len(b) * max(max(src[i], tgt[i]) + 1 for i in b) for b in batches)
    real = sum(max(s, t) + 1 for s, t in zip(src, tgt))
    assert padded < 1.2 * real


def test_epochs_are_shuffled_repeatably_from_the_seed():
    src, tgt = random_sentences(100), random_sentences(100)
    first = ParallelData.from_lists(src, tgt, max_tokens=60, seed=3)
    again = ParallelData.from_lists(src, tgt, max_tokens=60, seed=3)
    assert first.batch_order(0) == again.batch_order(0)
    assert first.batch_order(0) != first.batch_order(1)
    assert first.batch_order(0) != ParallelData.from_lists(src, tgt, max_tokens=60, seed=4).batch_order(0)


def test_collate_frames_and_pads():
    batch = collate([[5, 6, 7], [8]], [[9], [10, 11]], [4, 2])
    assert batch.src.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [4, 2]
    assert batch.tgt_in.tolist() == [[BOS_ID, 9, PAD_ID], [BOS_ID, 10, 11]]
    assert batch.tgt_out.tolist() == [[9, EOS_ID, PAD_ID], [10, 11, EOS_ID]]
    assert batch.num_target_tokens == 5 and batch.indices == [4, 2]
    assert batch.target_positions.tolist() == [0, 1, 3, 4, 5]  # tgt_out flattened, padding left out


@pytest.mark.parametrize("max_length, kept", [(3, [0]), (4, [0, 1]), (10, [0, 1, 2])])
def test_filter_by_length_keeps_the_rows_within_the_limit(max_length, kept):
    rows = filter_by_length(np.array([3, 4, 1]), np.array([1, 1, 5]), max_length)
    assert rows.tolist() == kept


def greedy_batches(src: list[int], tgt: list[int], max_tokens: int, max_sentences: int | None) -> list[list[int]]:
    """The oracle: examples sorted by (source, target) length, taken one at a time into the open
    batch while rows x longest row (+1 for EOS/BOS) stays within the budget."""
    batches: list[list[int]] = []
    longest = 0
    for index in sorted(range(len(src)), key=lambda i: (src[i], tgt[i])):
        length = max(src[index], tgt[index]) + 1
        full = batches and (
            max(longest, length) * (len(batches[-1]) + 1) > max_tokens
            or (max_sentences is not None and len(batches[-1]) >= max_sentences)
        )
        if not batches or full:
            batches.append([])
            longest = 0
        batches[-1].append(index)
        longest = max(longest, length)
    return batches


@pytest.mark.parametrize("max_tokens, max_sentences", [(200, None), (200, 7), (37, None), (1000, 3)])
def test_batches_are_the_greedy_fill_of_the_length_sorted_examples(max_tokens, max_sentences):
    src, tgt = make_lengths(500)
    src[3] = 80  # longer than some budgets: a batch alone
    assert list(bucket_batches(src, tgt, max_tokens, max_sentences)) == greedy_batches(
        src, tgt, max_tokens, max_sentences
    )


def test_without_targets_batches_group_source_lengths():
    src = [random.randint(1, 40) for _ in range(200)]
    batches = bucket_batches(src, None, max_tokens=10_000, max_sentences=10)
    assert [src[i] for batch in batches for i in batch] == sorted(src)


def test_shuffling_changes_which_equal_lengths_share_a_batch_and_the_order_never_the_shapes():
    """Training batches are the decoding batches with ties in length shuffled and the batch order
    shuffled, from a numpy Generator seeded with `seed + epoch`.

    (Until the data could be memory-mapped, a `random.Random(seed + epoch)` shuffled a Python
    list: for the same seed the epochs' batches now hold other examples of the same lengths and
    come in another order. The batch shapes, the greedy fill and the determinism are unchanged.)
    """
    src, tgt = make_lengths(400)
    fixed = bucket_batches(src, tgt, max_tokens=150)
    shuffled = bucket_batches(src, tgt, max_tokens=150, rng=np.random.default_rng(5))
    shape = lambda batch: [(src[i], tgt[i]) for i in batch]  # noqa: E731
    assert sorted(map(shape, shuffled)) == sorted(map(shape, fixed))
    assert list(shuffled) != list(fixed)
    assert list(shuffled) == list(bucket_batches(src, tgt, max_tokens=150, rng=np.random.default_rng(5)))


def test_collate_takes_arrays_as_it_takes_lists():
    lists = [[5, 6, 7], [8]], [[9], [10, 11]]
    arrays = [np.array(row, dtype=np.uint16) for row in lists[0]], [np.array(row, dtype=np.int32) for row in lists[1]]
    expected, actual = collate(*lists, [0, 1]), collate(*arrays, [0, 1])
    for field in ("src", "src_lengths", "tgt_in", "tgt_out"):
        assert torch.equal(getattr(actual, field), getattr(expected, field))
        assert getattr(actual, field).dtype == torch.long
