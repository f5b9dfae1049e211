"""A GPU gives what the CPU gives: the same model's logits, loss and gradients, the same
translations of a trained model, checkpoints that cross between the two, peak memory from the
CUDA allocator. Marked `cuda`: skipped without a GPU (`pytest -m cuda` on one, or
`scripts/gpu_check.sh`). The properties that must hold on either device alone (teacher forcing
equals stepping, beam search against exhaustive search, exact resume, compiled equals eager, every
precision trains) are the CPU tests themselves, parametrized over `tests.conftest.DEVICES`."""

import copy
import random

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nmt.checkpoint import build_checkpoint, save_checkpoint
from nmt.data.batching import collate
from nmt.decoding.batches import translate_ids
from nmt.decoding.loading import load_model
from nmt.decoding.search import BeamSearch, GreedySearch
from nmt.training.loss import token_loss_sum
from nmt.training.train_log import peak_memory_mb
from nmt.utils.precision import autocast
from tests.conftest import random_sentences
from tests.modules.test_decoders import build
from tests.test_checkpoint import TINY_MODEL, toy_tokenizers

pytestmark = pytest.mark.cuda
CUDA = torch.device("cuda")

TOLERANCE = {"fp32": (1e-4, 1e-3), "fp16": (0.01, 0.05), "bf16": (0.05, 0.1)}
"""(logits and loss, gradients): the largest error allowed against a float64 CPU oracle, as a
share of the oracle's largest magnitude. fp32: summation order alone; fp16 (10-bit mantissa)
and bf16 (7-bit) under autocast: the products' rounding, carried through the network."""


def assert_near(actual: torch.Tensor, expected: torch.Tensor, share: float, what: str) -> None:
    error = (actual.double().cpu() - expected).abs().max().item()
    scale = expected.abs().max().item()
    assert error <= share * scale, f"{what}: largest error {error:.3g}, allowed {share} x {scale:.3g}"


@pytest.mark.parametrize("precision", TOLERANCE)
@pytest.mark.parametrize("style", ["bahdanau", "luong_input_feeding"])
def test_the_gpu_model_gives_the_cpu_models_logits_loss_and_gradients(style, precision):
    """One batch through the same weights: float64 on the CPU (the oracle) and float32 on the
    GPU in `precision`."""
    oracle = build(style, dtype=torch.float64)
    model = copy.deepcopy(oracle).float().to(CUDA)
    batch = collate(random_sentences(6), random_sentences(6), list(range(6)))
    logits, _ = oracle(batch.src, batch.src_lengths, batch.tgt_in)
    loss = token_loss_sum(oracle, batch, label_smoothing=0.1)
    grads = torch.autograd.grad(loss, list(oracle.parameters()))
    with autocast(CUDA, precision):
        gpu_batch = batch.to(CUDA)
        gpu_logits, _ = model(gpu_batch.src, gpu_batch.src_lengths, gpu_batch.tgt_in)
        gpu_loss = token_loss_sum(model, gpu_batch, label_smoothing=0.1)
    gpu_grads = torch.autograd.grad(gpu_loss, list(model.parameters()))
    share, grad_share = TOLERANCE[precision]
    assert_near(gpu_logits.float(), logits, share, "logits")
    assert_near(gpu_loss, loss, share, "loss")
    for (name, _), expected, actual in zip(oracle.named_parameters(), grads, gpu_grads):
        assert actual.dtype == torch.float32, name
        assert_near(actual, expected, grad_share, f"gradient of {name}")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on the CPU to copy its input (peaked output distributions: a
    hypothesis is not decided by a near-tie), with the toy tokenizers and its config."""
    tokenizers = toy_tokenizers(tmp_path_factory.mktemp("tokenizers"))
    torch.manual_seed(0)
    random.seed(0)
    config = {"model": TINY_MODEL}
    model = instantiate(
        OmegaConf.create(TINY_MODEL), src_vocab_size=tokenizers[0].vocab_size, tgt_vocab_size=tokenizers[1].vocab_size
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(300):
        sentences = random_sentences(32)
        batch = collate(sentences, sentences, list(range(32)))
        loss = token_loss_sum(model, batch) / int(batch.target_positions.numel())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    return model.eval(), tokenizers, config


SEARCHES = {"greedy": GreedySearch(), "beam 5": BeamSearch(beam_size=5)}


@pytest.mark.parametrize("search", SEARCHES)
def test_greedy_and_beam_search_on_the_gpu_return_the_cpus_hypotheses(trained, search):
    model, _, _ = trained
    sources = random_sentences(64, max_length=12)
    on_cpu = translate_ids(model, sources, SEARCHES[search], device="cpu")
    on_gpu = translate_ids(copy.deepcopy(model).to(CUDA), sources, SEARCHES[search], device=CUDA)
    assert on_gpu == on_cpu


@pytest.mark.parametrize("written_on, read_on", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_crosses_between_gpu_and_cpu_and_translates_alike(trained, tmp_path, written_on, read_on):
    model, (src, tgt), config = trained
    writer = copy.deepcopy(model).to(written_on)
    path = tmp_path / "model.pt"
    save_checkpoint(
        path,
        build_checkpoint(
            writer.state_dict(), config, {"src": src.model_bytes, "tgt": tgt.model_bytes}, step=1, valid={}
        ),
    )
    reader, _, _, _ = load_model(path, read_on)
    assert {p.device.type for p in reader.parameters()} == {read_on}
    sources = random_sentences(32, max_length=12)
    search = BeamSearch(beam_size=5)
    assert translate_ids(reader, sources, search, device=read_on) == translate_ids(
        writer, sources, search, device=written_on
    )


def test_peak_memory_comes_from_the_cuda_allocator():
    """The trainer's and the benchmark's peak memory on a GPU: the largest the allocator held,
    not the process's resident size (which holds the CUDA libraries, hundreds of MB)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(CUDA)
    held = torch.cuda.memory_allocated(CUDA) / 2**20
    block = torch.empty(64 * 2**20, dtype=torch.uint8, device=CUDA)
    del block
    peak = peak_memory_mb(CUDA)
    assert held + 64 <= peak < held + 66
