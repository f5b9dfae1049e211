"""Every config composes and instantiates; unknown keys fail by name."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from nmt.training.experiment import run

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
EXPERIMENTS = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
ATTENTIONS = sorted(p.stem for p in (CONFIGS / "model" / "attention").glob("*.yaml"))
PAPER_SIZED = {"rnnsearch50", "luong2015"}  # GPU-sized: a whole run is slow on a CPU; test_paper_configs trains them


def experiment_run(name: str):
    """`+experiment=name` for a whole toy run, marked slow for the paper-sized experiments."""
    overrides = [f"+experiment={name}"]
    return pytest.param(overrides, marks=pytest.mark.slow) if name in PAPER_SIZED else overrides


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=list(overrides))


@pytest.mark.parametrize(
    "overrides", [[], *[[f"+experiment={e}"] for e in EXPERIMENTS], *[[f"model/attention={a}"] for a in ATTENTIONS]]
)
def test_every_config_instantiates(overrides):
    cfg = compose_train(*overrides)
    src_vocab = 40 if cfg.model.share_embeddings else 30  # one shared matrix needs one vocabulary
    model = instantiate(cfg.model, src_vocab_size=src_vocab, tgt_vocab_size=40)
    assert model.decoder.generator.out_features == 40
    instantiate(cfg.trainer), instantiate(cfg.tokenizer), instantiate(cfg.data), instantiate(cfg.decode)
    # the hardware chooses (`nmt.utils.precision.choose_precision`), not the machine a config was tuned on
    assert (cfg.trainer.precision, cfg.decode_precision) == ("auto", "auto")


def test_bahdanau_experiment_sets_the_paper_model_on_multi30k():
    cfg = compose_train("+experiment=bahdanau")
    assert cfg.data._target_.endswith("Multi30k") and (cfg.data.src_lang, cfg.data.tgt_lang) == ("de", "en")
    assert cfg.model.decoder.scorer._target_.endswith("AdditiveScorer")
    assert (cfg.model.encoder.hidden_size, cfg.model.decoder.hidden_size) == (256, 512)


def test_an_unknown_key_is_named():
    with pytest.raises(ConfigCompositionException, match="model.encoder.hiden_size"):
        compose_train("model.encoder.hiden_size=3")


@pytest.mark.parametrize(
    "overrides",
    [
        *[experiment_run(e) for e in EXPERIMENTS],
        *[[f"model/attention={a}"] for a in ATTENTIONS],
        *[[f"model/attention/normalizer={n}"] for n in ("sparsemax", "entmax15")],
        ["model.cell=lstm"],
    ],
)
def test_every_config_trains_a_few_steps_on_the_toy_task(overrides, tmp_path):
    # compile=false: compiling takes ~30 s a run; the compiled step and loss have their own tests
    # (test_decoders, test_loss, and test_trainer's slow one)
    cfg = compose_train(
        *overrides,
        "data=toy",
        f"data_root={tmp_path}/data",
        "data.num_train=100",
        "data.num_valid=4",
        "data.num_test=4",
        "trainer.max_steps=2",
        "trainer.valid_every=2",
        "trainer.progress_bar=false",
        "decode.beam_size=2",
        "device=cpu",
        "trainer.compile=false",
    )
    scores = run(cfg, tmp_path / "run")
    assert 0 <= scores.bleu <= 100
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
