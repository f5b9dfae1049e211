"""Where the parallel text comes from: your own files, Multi30k (downloaded or copied), and a
generated toy task.

A source's `prepare()` makes sure the text files exist and returns, for each split, the source
and target file: `train`, `valid`, `test`, and any further test sets by name (scored after
training like `test`). Everything after that (tokenization, encoding, batching) is shared.
"""

from __future__ import annotations

import gzip
import random
import re
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from nmt.data.corpus import read_lines, read_parallel
from nmt.utils.errors import UserError
from nmt.utils.fileio import write_bytes_atomically

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SplitFiles:
    """The two line-aligned files of one split."""

    src: Path
    tgt: Path


class ParallelFiles:
    """Your own line-aligned files, read where they are: `<prefix>.<lang>`, plain or gzipped.

    Each split is a path prefix, completed by the language codes (as fairseq and JoeyNMT name
    files): `train=corpus/train` with `src_lang=de`, `tgt_lang=en` reads `corpus/train.de` and
    `corpus/train.en`, or `corpus/train.de.gz` and `corpus/train.en.gz`. Swapping the codes
    trains the other direction. The validation and test files are checked at once (line counts,
    UTF-8); the training files, which may hold millions of lines, when they are first encoded.

    Args:
        train: path prefix of the training split.
        valid: path prefix of the validation split.
        test: path prefix of the test split.
        src_lang: source language code: the source files' last suffix.
        tgt_lang: target language code: the target files' last suffix.
        extra_tests: further test sets, name -> path prefix (e.g. `newstest2015: wmt/newstest2015`),
            decoded and scored after training like `test`.
    """

    def __init__(
        self, train: str, valid: str, test: str, src_lang: str, tgt_lang: str, extra_tests: dict[str, str] | None = None
    ) -> None:
        self.prefixes = {"train": train, "valid": valid, "test": test}
        for name, prefix in (extra_tests or {}).items():
            if name in SPLITS or not re.fullmatch(r"[\w.-]+", name):
                raise UserError(
                    f"data.extra_tests.{name}: name a test set with letters, digits, '.', '-' or '_', "
                    f"and not {', '.join(SPLITS)}"
                )
            self.prefixes[name] = prefix
        self.src_lang, self.tgt_lang = src_lang, tgt_lang

    def prepare(self) -> dict[str, SplitFiles]:
        """Finds each split's files; checks all but the training split's; returns their paths."""
        splits = {
            name: SplitFiles(self._find(name, prefix, self.src_lang), self._find(name, prefix, self.tgt_lang))
            for name, prefix in self.prefixes.items()
        }
        for name, files in splits.items():
            if name != "train":
                read_parallel(files.src, files.tgt)
        return splits

    @staticmethod
    def _find(name: str, prefix: str, lang: str) -> Path:
        plain = Path(f"{prefix}.{lang}")
        gzipped = plain.with_name(f"{plain.name}.gz")
        for path in (plain, gzipped):
            if path.is_file():
                return path
        key = f"data.extra_tests.{name}" if name not in SPLITS else f"data.{name}"
        raise UserError(f"{key}={prefix}: neither {plain} nor {gzipped} exists")


class Multi30k:
    """Multi30k task 1 (Elliott et al. 2016), raw text, en/de/fr.

    Files come from `local_dir` when given (the offline route: a folder holding
    `train.de.gz`, `val.en.gz`, `test_2016_flickr.fr.gz`, ... or their unzipped forms),
    otherwise from the dataset's public repository.

    Args:
        root: folder where the unzipped files are written (`<root>/train.de`, ...).
        src_lang: source language code (en, de or fr).
        tgt_lang: target language code.
        local_dir: folder with the original files; `None` downloads them.
        test_set: name of the test split file stem.
    """

    URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}.gz"
    LANGUAGES = ("en", "de", "fr")

    def __init__(
        self,
        root: str,
        src_lang: str = "de",
        tgt_lang: str = "en",
        local_dir: str | None = None,
        test_set: str = "test_2016_flickr",
    ) -> None:
        for key, lang in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
            if lang not in self.LANGUAGES:
                raise UserError(f"data.{key}={lang!r}: Multi30k has {', '.join(self.LANGUAGES)}")
        self.root = Path(root)
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.local_dir = Path(local_dir) if local_dir else None
        self.stems = {"train": "train", "valid": "val", "test": test_set}

    def prepare(self) -> dict[str, SplitFiles]:
        """Fetches the missing files, checks each split's line counts, returns their paths."""
        splits = {}
        for split, stem in self.stems.items():
            files = SplitFiles(self._fetch(f"{stem}.{self.src_lang}"), self._fetch(f"{stem}.{self.tgt_lang}"))
            read_parallel(files.src, files.tgt)  # fails early, naming the file, on a bad download
            splits[split] = files
        return splits

    def _fetch(self, name: str) -> Path:
        target = self.root / name
        if target.is_file():
            return target
        if self.local_dir is not None:
            data = self._read_local(name)
        else:
            try:
                with urllib.request.urlopen(self.URL.format(name=name), timeout=60) as response:
                    data = gzip.decompress(response.read())
            except (OSError, EOFError, zlib.error) as error:
                raise UserError(
                    f"cannot download {name} ({error}); offline, set NMT_MULTI30K or "
                    f"data.local_dir to a folder holding the Multi30k files"
                ) from None
        write_bytes_atomically(target, data)
        return target

    def _read_local(self, name: str) -> bytes:
        gzipped, plain = self.local_dir / f"{name}.gz", self.local_dir / name
        for path in (gzipped, plain):
            if path.is_file():
                return "".join(f"{line}\n" for line in read_lines(path)).encode()
        raise UserError(f"{gzipped}: file not found (data.local_dir={self.local_dir})")


class ToyTask:
    """A generated task that needs attention: translate each word and reverse the order.

    Source sentences are random strings of pseudo-words; the target maps every word through
    a fixed dictionary and reverses the sentence. Generated deterministically from `seed`, so
    `python train.py` runs end to end with no download.

    Args:
        root: folder where `{train,valid,test}.{src,tgt}` are written.
        num_train: training sentence pairs.
        num_valid: validation sentence pairs.
        num_test: test sentence pairs.
        min_words: shortest sentence, in words.
        max_words: longest sentence, in words.
        seed: seed of the generator.
    """

    SOURCE_WORDS = ("ka lo mi ne su ta ri po fe gu ba do zi ve hu ja kor lam mis nod sul tep rin pax").split()
    TARGET_WORDS = (
        "one two three four five six seven eight nine ten red blue green black white "
        "cat dog bird fish tree house river stone sun"
    ).split()

    def __init__(
        self,
        root: str,
        num_train: int = 8000,
        num_valid: int = 200,
        num_test: int = 200,
        min_words: int = 3,
        max_words: int = 12,
        seed: int = 7,
    ) -> None:
        self.root = Path(root)
        self.sizes = {"train": num_train, "valid": num_valid, "test": num_test}
        self.min_words, self.max_words, self.seed = min_words, max_words, seed
        self.dictionary = dict(zip(self.SOURCE_WORDS, self.TARGET_WORDS))

    def translate(self, sentence: str) -> str:
        """The reference transformation: word-by-word dictionary lookup, then reversal."""
        return " ".join(self.dictionary[word] for word in reversed(sentence.split()))

    def prepare(self) -> dict[str, SplitFiles]:
        """Writes the splits (the same text on every call with the same settings)."""
        rng = random.Random(self.seed)
        splits = {}
        for split, size in self.sizes.items():
            sources = [
                " ".join(rng.choices(self.SOURCE_WORDS, k=rng.randint(self.min_words, self.max_words)))
                for _ in range(size)
            ]
            files = SplitFiles(self.root / f"{split}.src", self.root / f"{split}.tgt")
            write_bytes_atomically(files.src, "".join(f"{s}\n" for s in sources).encode())
            write_bytes_atomically(files.tgt, "".join(f"{self.translate(s)}\n" for s in sources).encode())
            splits[split] = files
        return splits
