import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nmt.checkpoint import average_checkpoints, build_checkpoint, load_checkpoint, save_checkpoint
from nmt.cli.average import main as average_main
from nmt.data.tokenizer import Tokenizer
from nmt.decoding.batches import translate_lines
from nmt.decoding.loading import load_model
from nmt.training.run_layout import RunLayout
from nmt.utils.errors import UserError
from tests.test_checkpoint import SOURCES, TINY_MODEL, TOKENIZERS, search, tiny_checkpoint, toy_tokenizers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory) -> tuple[Tokenizer, Tokenizer]:
    return toy_tokenizers(tmp_path_factory.mktemp("tokenizers"))


def test_the_average_of_three_is_their_float64_mean_and_translates(tmp_path, tokenizers):
    layout = RunLayout(tmp_path / "run")
    states = []
    for step in (100, 200, 300):
        model, payload = tiny_checkpoint(tokenizers, seed=step)
        save_checkpoint(layout.step_checkpoint(step), {**payload, "training": {"optimizer": {"lr": 0.1}}})
        states.append(model.state_dict())
    save_checkpoint(layout.step_checkpoint(1), tiny_checkpoint(tokenizers, seed=1)[1])  # older: left out

    average_main(["--run", str(layout.root), "--last", "3", "--output", str(tmp_path / "avg.pt")])

    averaged = load_checkpoint(tmp_path / "avg.pt")
    for key, tensor in states[-1].items():
        mean = torch.stack([state[key].to(torch.float64) for state in states]).mean(dim=0)
        torch.testing.assert_close(averaged["model"][key], mean.to(tensor.dtype), rtol=1.2e-7, atol=0)  # rounding
        assert averaged["model"][key].dtype == tensor.dtype
    assert averaged["provenance"]["averaged_from"] == [str(layout.step_checkpoint(s)) for s in (100, 200, 300)]
    assert "training" not in averaged and averaged["step"] == 300 and averaged["valid"] == {}
    model, src, tgt, _ = load_model(tmp_path / "avg.pt")
    with torch.inference_mode():
        assert len(translate_lines(model, src, tgt, SOURCES, search)) == len(SOURCES)


def test_integer_buffers_come_from_the_last(tmp_path):
    for index, count in enumerate((1, 5)):
        state = {"w": torch.full((2,), float(index), dtype=torch.float16), "count": torch.tensor(count)}
        save_checkpoint(tmp_path / f"{index}.pt", build_checkpoint(state, {}, TOKENIZERS, step=index, valid={}))
    averaged = average_checkpoints([tmp_path / "0.pt", tmp_path / "1.pt"])
    assert torch.equal(averaged["model"]["w"], torch.full((2,), 0.5, dtype=torch.float16))
    assert torch.equal(averaged["model"]["count"], torch.tensor(5))


def test_mismatched_shapes_give_one_line(tmp_path, tokenizers, capsys):
    save_checkpoint(tmp_path / "a.pt", tiny_checkpoint(tokenizers)[1])
    save_checkpoint(
        tmp_path / "b.pt", tiny_checkpoint(tokenizers, decoder={**TINY_MODEL["decoder"], "hidden_size": 20})[1]
    )
    with pytest.raises(SystemExit) as exit_:
        average_main(["--inputs", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "--output", str(tmp_path / "o.pt")])
    assert exit_.value.code == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and message.startswith(f"error: {tmp_path / 'b.pt'}: weight decoder.")
    assert "has shape" in message and not (tmp_path / "o.pt").exists()


def test_other_tokenizers_are_refused(tmp_path, tokenizers):
    _, payload = tiny_checkpoint(tokenizers)
    save_checkpoint(tmp_path / "a.pt", payload)
    save_checkpoint(tmp_path / "b.pt", {**payload, "tokenizers": {**payload["tokenizers"], "src": b"other"}})
    with pytest.raises(UserError, match=r"b\.pt: its tokenizers differ from those of .*a\.pt"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"])


@pytest.mark.integration
def test_the_script_names_a_run_with_too_few_step_checkpoints(tmp_path):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    result = subprocess.run(
        [sys.executable, "-m", "nmt.cli.average", "--run", "run", "--last", "2", "--output", "avg.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == "error: run/checkpoints: 0 step checkpoints (step-<N>.pt), fewer than --last 2\n"
