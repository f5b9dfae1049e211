"""Sentencepiece subword models: train once per (data, settings), reuse, store with the run."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import sentencepiece as spm

from nmt.data.corpus import iter_lines
from nmt.utils.errors import UserError
from nmt.utils.fileio import atomic_path, file_fingerprint

log = logging.getLogger(__name__)

# Fixed ids of the special symbols, the same in every model this project trains.
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

WORD_START = "\u2581"
"""Sentencepiece's mark ("▁") on a piece that begins a new word."""


class Tokenizer:
    """A sentencepiece model: raw text <-> ids. Encoding never adds BOS/EOS; batching does.

    Built from a model file, or from the file's bytes (`from_bytes`) as a checkpoint stores them.

    Attributes:
        name: where the model came from (a file, or a key in a checkpoint), for messages.
        model_bytes: the model file's bytes, for storing the model inside a checkpoint.
    """

    def __init__(self, model_file: str | Path) -> None:
        model_file = Path(model_file)
        if not model_file.is_file():
            raise UserError(f"{model_file}: sentencepiece model not found")
        self._load(model_file.read_bytes(), str(model_file))

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> Tokenizer:
        """A tokenizer from a model file's bytes; `name` says where they came from in errors."""
        tokenizer = cls.__new__(cls)
        tokenizer._load(data, name)
        return tokenizer

    def _load(self, data: bytes, name: str) -> None:
        try:
            self.processor = spm.SentencePieceProcessor(model_proto=data)
        except RuntimeError:  # sentencepiece's message is a C++ source location, not a reason
            raise UserError(f"{name}: not a sentencepiece model") from None
        self.name, self.model_bytes = name, data

    @property
    def vocab_size(self) -> int:
        """Number of pieces, special symbols included."""
        return self.processor.get_piece_size()

    @functools.cached_property
    def begins_word(self) -> np.ndarray:
        """(V,) bool: which pieces begin a word (carry sentencepiece's "▁" mark), to find the word
        of each piece of an id sequence (`nmt.data.alignments.word_of_each_piece`)."""
        pieces = map(self.processor.id_to_piece, range(self.vocab_size))
        return np.fromiter((piece.startswith(WORD_START) for piece in pieces), bool, self.vocab_size)

    def encode(self, lines: list[str]) -> list[list[int]]:
        """Raw sentences -> piece ids (no BOS/EOS)."""
        return self.processor.encode(lines)

    def decode(self, ids: list[list[int]]) -> list[str]:
        """Piece ids -> detokenized sentences."""
        return self.processor.decode(ids)


@dataclass(frozen=True)
class TokenizerConfig:
    """Settings of the subword models.

    Args:
        model_type: `unigram` or `bpe`.
        vocab_size: pieces per model (a soft limit: small corpora get fewer).
        joint: one model trained on both sides (needed for shared embeddings), or one per side.
        character_coverage: share of characters the model must cover.
        input_sentence_size: most sentences a model is trained on (both sides' for a joint
            model): a larger corpus is sampled down to this many (0: no limit). Multi30k (58k
            sentences, both sides) is below the default, so it is trained on in full.
        shuffle_input_sentence: sample uniformly over the whole corpus (with a fixed seed, so
            the model repeats); false takes the first `input_sentence_size` sentences.
    """

    model_type: str = "unigram"
    vocab_size: int = 8000
    joint: bool = True
    character_coverage: float = 1.0
    input_sentence_size: int = 1_000_000
    shuffle_input_sentence: bool = True

    def __post_init__(self) -> None:
        if self.model_type not in ("unigram", "bpe"):
            raise UserError(f"tokenizer.model_type={self.model_type!r}: use unigram or bpe")
        if self.input_sentence_size < 0:
            raise UserError(f"tokenizer.input_sentence_size={self.input_sentence_size}: must be at least 0")


# The seed of the sample of a large corpus. sentencepiece's own sampling differs from process to
# process (even after `set_random_generator_seed`), and nodes that train their own copy of a
# tokenizer must get the same one, so the sample is drawn here.
SAMPLING_SEED = 1


def _fingerprint(config: TokenizerConfig, files: list[Path]) -> str:
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for path in files:
        digest.update(file_fingerprint(path).encode())
    return digest.hexdigest()[:16]


def _training_sentences(config: TokenizerConfig, files: list[Path]) -> Iterator[str]:
    """The lines of `files`, in order, that a model is trained on: all of them, or a uniform
    sample of `input_sentence_size` (seeded: the same on every machine), or the first ones."""
    lines = itertools.chain.from_iterable(map(iter_lines, files))
    limit = config.input_sentence_size
    if not limit:
        return lines
    if not config.shuffle_input_sentence:
        return itertools.islice(lines, limit)
    total = sum(sum(1 for _ in iter_lines(path)) for path in files)
    if total <= limit:
        return lines
    chosen = np.zeros(total, dtype=bool)
    chosen[np.random.default_rng(SAMPLING_SEED).choice(total, limit, replace=False)] = True
    return itertools.compress(lines, chosen)


def _train_model(config: TokenizerConfig, files: list[Path], model_file: Path) -> None:
    """Trains on the files' lines, streamed: sentencepiece reads no gzip, and a large corpus is
    sampled first (`_training_sentences`)."""
    errors: list[UserError] = []

    def sentences() -> Iterator[str]:
        try:
            yield from _training_sentences(config, files)
        except UserError as error:  # sentencepiece would turn it into a RuntimeError with a traceback
            errors.append(error)
            raise

    with atomic_path(model_file) as tmp:
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=sentences(),
                model_prefix=str(tmp.with_suffix("")),
                vocab_size=config.vocab_size,
                model_type=config.model_type,
                character_coverage=config.character_coverage,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary, not an error
                num_threads=2,
                minloglevel=2,
            )
        except RuntimeError:
            if errors:
                raise errors[0] from None
            raise
        tmp.with_suffix(".model").replace(tmp)
        tmp.with_suffix(".vocab").unlink(missing_ok=True)


def build_tokenizers(
    config: TokenizerConfig, train_src: Path, train_tgt: Path, cache_dir: Path, run_dir: Path
) -> tuple[Tokenizer, Tokenizer]:
    """Trains (or reuses from `cache_dir`) the source and target models, copied into `run_dir`.

    The cache key is a hash of the settings and the training files' bytes, so a change of
    either trains anew (so does a new field of `TokenizerConfig`: the key covers them all). The
    copies in `run_dir` (`src.model`, `tgt.model`) let a checkpoint translate raw text without
    the original data.
    """
    sides = (
        {"src": [train_src, train_tgt], "tgt": [train_src, train_tgt]}
        if config.joint
        else {"src": [train_src], "tgt": [train_tgt]}
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    for side, files in sides.items():
        cached = cache_dir / f"{_fingerprint(config, files)}.model"
        if cached.is_file():
            log.info("reusing sentencepiece model %s", cached)
        else:
            log.info(
                "training sentencepiece %s %d on %s",
                config.model_type,
                config.vocab_size,
                ", ".join(str(f) for f in files),
            )
            _train_model(config, files, cached)
        shutil.copyfile(cached, run_dir / f"{side}.model")
    return Tokenizer(run_dir / "src.model"), Tokenizer(run_dir / "tgt.model")
