import random

import pytest

from nmt.data.batching import ParallelData, bucket_batches, collate, filter_by_length
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID
from tests.conftest import random_sentences


def make_lengths(count=300):
    return [random.randint(1, 40) for _ in range(count)], [random.randint(1, 40) for _ in range(count)]


def test_every_example_lands_in_exactly_one_batch_within_the_budget():
    src, tgt = make_lengths()
    batches = bucket_batches(src, tgt, max_tokens=200, max_sentences=16, rng=random.Random(1))
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
    batches = bucket_batches(src, tgt, max_tokens=400, rng=random.Random(0))
    padded = sum(len(b) * max(max(src[i], tgt[i]) + 1 for i in b) for b in batches)
    real = sum(max(s, t) + 1 for s, t in zip(src, tgt))
    assert padded < 1.2 * real


def test_epochs_are_shuffled_repeatably_from_the_seed():
    src, tgt = random_sentences(100), random_sentences(100)
    first = ParallelData(src, tgt, max_tokens=60, seed=3)
    again = ParallelData(src, tgt, max_tokens=60, seed=3)
    assert first.batch_order(0) == again.batch_order(0)
    assert first.batch_order(0) != first.batch_order(1)
    assert first.batch_order(0) != ParallelData(src, tgt, max_tokens=60, seed=4).batch_order(0)


def test_collate_frames_and_pads():
    batch = collate([[5, 6, 7], [8]], [[9], [10, 11]], [4, 2])
    assert batch.src.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert batch.src_lengths.tolist() == [4, 2]
    assert batch.tgt_in.tolist() == [[BOS_ID, 9, PAD_ID], [BOS_ID, 10, 11]]
    assert batch.tgt_out.tolist() == [[9, EOS_ID, PAD_ID], [10, 11, EOS_ID]]
    assert batch.num_target_tokens == 5 and batch.indices == [4, 2]


@pytest.mark.parametrize("max_length, dropped", [(3, 2), (10, 0)])
def test_filter_by_length_counts_what_it_drops(max_length, dropped):
    src, tgt, count = filter_by_length([[1] * 3, [1] * 4, [1]], [[1], [1], [1] * 5], max_length)
    assert count == dropped and len(src) == len(tgt) == 3 - dropped
