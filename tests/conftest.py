"""Shared fixtures: a fixed seed for every test, tiny models in float64, and the devices a
property is checked on (tests marked `cuda` are skipped where no GPU is present)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from functools import partial

import pytest
import torch

from nmt.data.tokenizer import EOS_ID
from nmt.modules.attention import AdditiveScorer
from nmt.modules.decoder import BahdanauDecoder
from nmt.modules.encoder import RNNEncoder
from nmt.modules.seq2seq import Seq2Seq

VOCAB = 24  # ids 0-3 are special; 4.. are words

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]
"""`@pytest.mark.parametrize("device", DEVICES)`: a property that must hold on the CPU and on a GPU."""

# cuBLAS repeats its results only with a fixed workspace; read when cuBLAS starts, so set before
# any test touches CUDA (the exact-resume test runs under `torch.use_deterministic_algorithms`).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skips the `cuda` tests where torch sees no GPU, so the CPU suite and CI pass unchanged."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m cuda` on one, or scripts/gpu_check.sh)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def exact_cuda_float32() -> Iterator[None]:
    """fp32 on a GPU means fp32 in the tests: no TF32 products (a 10-bit mantissa) in cuDNN's
    recurrences or cuBLAS's matmuls, so CPU and GPU results can be compared at fp32 tolerances."""
    cudnn, matmul = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = cudnn, matmul


@pytest.fixture(autouse=True, scope="session")
def one_thread() -> None:
    """Tiny models gain nothing from a second thread, and on a busy 2-core machine each small
    matmul can stall for ~100 ms waiting for it (tests ran 10-15x slower). Subprocesses
    (train.py, tools) inherit the setting through OMP_NUM_THREADS."""
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def seed() -> None:
    random.seed(0)
    torch.manual_seed(0)


def tiny_model(dropout: float = 0.0, dtype: torch.dtype = torch.float64) -> Seq2Seq:
    """A small RNNsearch, float64 by default so equality checks are not blurred by rounding."""
    model = Seq2Seq(
        encoder=partial(RNNEncoder, embedding_size=8, hidden_size=8, embedding_dropout=dropout, hidden_dropout=dropout),
        decoder=partial(
            BahdanauDecoder,
            embedding_size=8,
            hidden_size=16,
            readout_size=8,
            scorer=partial(AdditiveScorer, hidden_size=12),
            embedding_dropout=dropout,
            hidden_dropout=dropout,
            output_dropout=dropout,
        ),
        src_vocab_size=VOCAB,
        tgt_vocab_size=VOCAB,
    )
    return model.to(dtype)


def random_sentences(count: int, min_length: int = 2, max_length: int = 9) -> list[list[int]]:
    """Random word ids (no special symbols), lengths drawn from the seeded generator."""
    return [
        [random.randrange(EOS_ID + 1, VOCAB) for _ in range(random.randint(min_length, max_length))]
        for _ in range(count)
    ]
