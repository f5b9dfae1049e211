import gzip

import pytest

from nmt.data.corpus import drop_empty_pairs, read_lines, read_parallel
from nmt.utils.errors import UserError


def test_reads_plain_and_gzipped_text(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"Ein Hund.\r\nZwei Katzen.\n")
    (tmp_path / "b.gz").write_bytes(gzip.compress(b"Ein Hund.\nZwei Katzen."))
    assert read_lines(tmp_path / "a.txt") == read_lines(tmp_path / "b.gz") == ["Ein Hund.", "Zwei Katzen."]


def test_unequal_parallel_files_name_both_files_and_counts(tmp_path):
    (tmp_path / "x.de").write_text("a\nb\nc\n")
    (tmp_path / "x.en").write_text("a\nb\n")
    with pytest.raises(UserError, match=r"x\.de has 3 lines, .*x\.en has 2"):
        read_parallel(tmp_path / "x.de", tmp_path / "x.en")


def test_missing_file_is_named(tmp_path):
    (tmp_path / "x.de").write_text("a\n")
    with pytest.raises(UserError, match=r"x\.en: file not found"):
        read_parallel(tmp_path / "x.de", tmp_path / "x.en")


def test_invalid_utf8_names_file_and_line(tmp_path):
    (tmp_path / "bad.de").write_bytes(b"gut\nschl\xe4cht\n")
    with pytest.raises(UserError, match=r"bad\.de:2: invalid UTF-8"):
        read_lines(tmp_path / "bad.de")


def test_pairs_with_an_empty_side_are_dropped_and_counted():
    src, tgt, dropped = drop_empty_pairs(["a", "", "c", "d"], ["x", "y", "  ", "w"])
    assert (src, tgt, dropped) == (["a", "d"], ["x", "w"], 2)


def test_a_corrupt_gzip_file_is_named(tmp_path):
    (tmp_path / "cut.de.gz").write_bytes(gzip.compress(b"ein Hund\n" * 50)[:30])
    with pytest.raises(UserError, match=r"cut\.de\.gz: cannot read"):
        read_lines(tmp_path / "cut.de.gz")
