"""A model folder the ecosystem understands: weights in safetensors, the config in JSON, the two
sentencepiece models and a model card, laid out as a Hugging Face Hub repository.

    model.safetensors   the weights only (shared matrices stored once); no pickle anywhere
    config.json         the resolved run config the model is built from (`_target_`s), its
                        decoding defaults, the languages, and the training summary for the card;
                        written last: a folder without it is an unfinished save
    src.model, tgt.model  the sentencepiece models
    README.md           the model card (`model_card`)

`save_pretrained` writes one from a model, its tokenizers and its run config (a checkpoint has
all three); `load_pretrained` rebuilds the model from a local folder or a Hub id (downloaded with
`huggingface_hub`, the `hub` extra); `push_to_hub` uploads a folder. A folder translates exactly
as the checkpoint it was written from: the same weights, tokenizers and decoding config.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nmt.data.tokenizer import Tokenizer
from nmt.utils.errors import UserError
from nmt.utils.fileio import write_bytes_atomically

FORMAT, FORMAT_VERSION = "attention-nmt", 1
WEIGHTS, CONFIG, CARD = "model.safetensors", "config.json", "README.md"
TOKENIZERS = {"src": "src.model", "tgt": "tgt.model"}
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")

SUMMARY_KEYS = (
    "parameters",
    "steps",
    "epochs",
    "wall_seconds",
    "training_seconds",
    "precision",
    "best_step",
    "best_valid",
    "test",
    "extra_tests",
    "machine",
)
"""What the model card needs of a run's `summary.json` (kept in config.json, so a folder saved
again from a loaded one keeps its card)."""


def save_pretrained(
    folder: str | Path,
    model: nn.Module,
    tokenizers: tuple[Tokenizer, Tokenizer],
    run_config: dict[str, Any],
    summary: dict[str, Any] | None = None,
) -> Path:
    """Writes the model folder (files replaced one by one, `config.json` last).

    Args:
        folder: created if missing; an existing one must be empty or a model folder.
        model: a `Seq2Seq` (not an ensemble: it has no one config to rebuild it from).
        tokenizers: the source and target sentencepiece models.
        run_config: the resolved run config (a checkpoint's `config`).
        summary: the run's `summary.json`, for the model card (None: a card without results).

    Raises:
        UserError: if `folder` holds other files, or the model has no config to rebuild it.
    """
    from safetensors.torch import save_model

    folder = Path(folder)
    ours = {WEIGHTS, CONFIG, CARD, f".{WEIGHTS}.tmp", *TOKENIZERS.values()}
    if folder.is_dir() and any(path.name not in ours for path in folder.iterdir()):  # an interrupted save is ours
        raise UserError(f"{folder}: holds files of its own; save into a new folder, an empty one or a model folder")
    if not isinstance(run_config.get("model"), dict):
        raise UserError("this model has no model config to rebuild it from (an ensemble?): save one member")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).unlink(missing_ok=True)  # unfinished until the new config is written
    tmp = folder / f".{WEIGHTS}.tmp"
    save_model(model, str(tmp), metadata={"format": FORMAT})
    tmp.replace(folder / WEIGHTS)
    for side, tokenizer in zip(TOKENIZERS, tokenizers):
        write_bytes_atomically(folder / TOKENIZERS[side], tokenizer.model_bytes)
    kept = {key: summary[key] for key in SUMMARY_KEYS if summary and key in summary}
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nmt_version": _version(),
        "source_language": _language(run_config, "src_lang"),
        "target_language": _language(run_config, "tgt_lang"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocabulary": {side: tokenizer.vocab_size for side, tokenizer in zip(TOKENIZERS, tokenizers)},
        "run": run_config,
        "summary": kept,
    }
    write_bytes_atomically(folder / CARD, model_card(config).encode())
    write_bytes_atomically(folder / CONFIG, (json.dumps(config, indent=2) + "\n").encode())
    return folder


def load_pretrained(
    folder_or_id: str | Path, device: torch.device | str = "cpu"
) -> tuple[nn.Module, Tokenizer, Tokenizer, dict[str, Any]]:
    """The model (eval mode), its tokenizers and its run config from a model folder or a Hub id.
    Nothing is unpickled: weights come from safetensors, the rest from JSON and sentencepiece.

    Raises:
        UserError: naming the folder and file that is missing or does not fit.
    """
    from safetensors.torch import load_model

    from nmt.decoding.loading import build_model

    folder = resolve_folder(folder_or_id)
    config = read_config(folder)
    tokenizers = [Tokenizer(folder / TOKENIZERS[side]) for side in TOKENIZERS]
    model = build_model(config["run"], *tokenizers, str(folder / CONFIG))
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise UserError(f"{weights}: file not found")
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except Exception as error:  # noqa: BLE001 - safetensors raises its own errors on damaged files
        raise UserError(f"{weights}: cannot read the weights ({str(error).splitlines()[0]})") from None
    if missing or unexpected:
        raise UserError(
            f"{weights}: does not fit the model of {CONFIG} "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    return model.to(device).eval(), tokenizers[0], tokenizers[1], config["run"]


def stored_summary(path: str | Path) -> dict[str, Any] | None:
    """The training summary a model folder keeps (None for a checkpoint file: its run's
    `summary.json` is the run directory's business; `nmt-export` passes it on)."""
    return read_config(Path(path)).get("summary") if is_model_folder(path) else None


def is_model_folder(path: str | Path) -> bool:
    """A folder with a `config.json`: what `load_pretrained` reads (a checkpoint is a file)."""
    return (Path(path) / CONFIG).is_file()


def resolve_folder(folder_or_id: str | Path) -> Path:
    """A local model folder as given, or a Hub id (`owner/name`) downloaded into the Hub's cache.

    Raises:
        UserError: for a path that is neither, or when `huggingface_hub` is not installed.
    """
    folder = Path(folder_or_id)
    if folder.is_dir():
        return folder
    if not HUB_ID.fullmatch(str(folder_or_id)) or ".." in str(folder_or_id) or str(folder_or_id).startswith("."):
        raise UserError(f"{folder_or_id}: no such model folder (nor a Hub id owner/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserError(f"{folder_or_id}: downloading from the Hub needs pip install 'attention-nmt[hub]'") from None
    try:
        return Path(snapshot_download(str(folder_or_id)))
    except Exception as error:  # noqa: BLE001 - network and Hub errors alike
        raise UserError(
            f"{folder_or_id}: no such model folder here, and no such model on the Hub ({str(error).splitlines()[0]})"
        ) from None


def read_config(folder: Path) -> dict[str, Any]:
    """A model folder's `config.json`, checked for its format.

    Raises:
        UserError: if it is missing, not JSON, or of another format or a newer version.
    """
    path = folder / CONFIG
    if not path.is_file():
        raise UserError(f"{path}: file not found (not a model folder, or an unfinished save)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or not isinstance(config.get("run"), dict):
        raise UserError(f"{path}: not an {FORMAT} model config")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(f"{path}: format version {config['format_version']}; this nmt reads {FORMAT_VERSION}")
    return config


def push_to_hub(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False) -> str:
    """Uploads a model folder to the Hugging Face Hub (creating the repository); returns its URL.

    Raises:
        UserError: for an unfinished folder, a malformed id, a missing `huggingface_hub`, or an
            upload that fails (no network, no permission).
    """
    folder = Path(folder)
    read_config(folder)
    if not HUB_ID.fullmatch(repo_id):
        raise UserError(f"{repo_id}: a Hub id is owner/name")
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise UserError("pushing to the Hub needs pip install 'attention-nmt[hub]'") from None
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="Upload attention-nmt model")
    except Exception as error:  # noqa: BLE001 - network and Hub errors alike
        raise UserError(f"{repo_id}: upload failed ({str(error).splitlines()[0]})") from None
    return f"https://huggingface.co/{repo_id}"


def model_card(config: dict[str, Any]) -> str:
    """The folder's README.md: what the model is, what it was trained on, how long and where,
    its test scores with their sacreBLEU signatures, how to use it, and its limitations."""
    run, summary = config["run"], config["summary"]
    model, data = run.get("model", {}), run.get("data", {})
    src, tgt = config["source_language"] or "source", config["target_language"] or "target"
    decoder = model.get("decoder", {})
    scorer = (decoder.get("scorer") or {}).get("_target_", "none (no attention)").rsplit(".", 1)[-1]
    corpus = data.get("_target_", "?").rsplit(".", 1)[-1]
    tags = ["translation", "attention", "rnn", "seq2seq", "attention-nmt"]
    lines = ["---", f"language: [{src}, {tgt}]", "library_name: attention-nmt", f"tags: [{', '.join(tags)}]"]
    if corpus == "Multi30k":
        lines.append("datasets: [multi30k]")
    lines += ["metrics: [bleu, chrf]", "---", "", f"# {run.get('name', 'model')}: {src} → {tgt} translation", ""]
    lines += [
        f"An attention-based encoder-decoder (RNNsearch, Bahdanau et al. 2015) trained with "
        f"[attention-nmt](https://pypi.org/project/attention-nmt/): a bidirectional "
        f"{model.get('cell', 'gru').upper()} encoder, a {decoder.get('_target_', '?').rsplit('.', 1)[-1]} "
        f"with {scorer} attention ({_normalizer(decoder)}), {config['parameters']:,} parameters, "
        f"sentencepiece vocabularies of {config['vocabulary']['src']:,} and {config['vocabulary']['tgt']:,} pieces.",
        "",
        "## Data",
        "",
        f"{corpus} ({src} → {tgt})" + (f", test set `{data['test_set']}`" if data.get("test_set") else "") + ".",
        "",
        "## Training",
        "",
    ]
    if summary:
        precision = summary.get("precision", {}).get("training", "?")
        machine = summary.get("machine") or {}
        hardware = machine.get("gpu") or machine.get("cpu") or "not recorded"
        lines += [
            f"{summary.get('steps', '?')} updates ({summary.get('epochs', '?')} epochs), "
            f"{summary.get('training_seconds', 0) / 60:.1f} minutes of training "
            f"({summary.get('wall_seconds', 0) / 60:.1f} in all) in {precision} on {hardware}"
            + (f" ({machine.get('logical_cpus')} logical CPUs, torch {machine.get('torch')})" if machine else "")
            + f"; seed {run.get('seed', '?')}.",
            "",
            "## Results",
            "",
            "| test set | BLEU | chrF | TER | sacreBLEU signatures |",
            "|---|---|---|---|---|",
        ]
        tests = {data.get("test_set", "test"): summary.get("test", {}), **summary.get("extra_tests", {})}
        for name, scores in tests.items():
            if scores:
                lines.append(
                    f"| {name} | {scores['bleu']:.2f} | {scores['chrf']:.2f} | {scores['ter']:.2f} | "
                    f"BLEU `{scores['bleu_signature']}`, chrF `{scores['chrf_signature']}`, "
                    f"TER `{scores['ter_signature']}` |"
                )
        lines += ["", f"One run (seed {run.get('seed', '?')}); the decoding config is in `config.json`."]
    else:
        lines += ["No training summary was saved with this model: its training and results are not recorded."]
    lines += [
        "",
        "## How to use",
        "",
        "```python",
        "from nmt import Translator  # pip install attention-nmt",
        "",
        'translator = Translator.from_pretrained("path/or/owner-name")',
        'print(translator.translate(["..."]))',
        "```",
        "",
        "Or `nmt-translate --checkpoint path/to/folder < input.txt`; `nmt-serve` shows the attention in a browser.",
        "",
        "## Limitations",
        "",
        f"- Trained on {corpus} only: "
        + (
            "expect poor translations of other domains (Multi30k holds short image descriptions)."
            if corpus == "Multi30k"
            else "other domains may fare worse."
        ),
        "- A recurrent model: below current Transformer systems in quality; long sentences fare worst.",
        "- Source sentences are raw text (sentencepiece tokenizes them); no document context.",
        "",
    ]
    return "\n".join(lines)


def _normalizer(decoder: dict[str, Any]) -> str:
    return decoder.get("normalizer", "softmax")


def _language(run_config: dict[str, Any], key: str) -> str | None:
    value = (run_config.get("data") or {}).get(key)
    return value if isinstance(value, str) else None


def _version() -> str:
    try:
        return metadata.version("attention-nmt")
    except metadata.PackageNotFoundError:
        return "unknown"
