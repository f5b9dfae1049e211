"""`nmt.utils.fileio`'s folders: put in place whole, and never taken from under a process reading them."""

import pytest

from nmt.utils.fileio import atomic_directory, discard_directory


def test_a_folder_appears_whole_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "cache" / "key"
    with atomic_directory(target) as tmp:
        (tmp / "ids").write_text("1 2 3")
        assert not target.exists()  # nothing at the path until the folder is complete
    assert (target / "ids").read_text() == "1 2 3"
    assert [path.name for path in target.parent.iterdir()] == ["key"]


def test_a_folder_another_process_put_in_place_first_is_kept(tmp_path):
    """Two jobs of a sweep encode the same corpus at once. The one that finishes second must not
    replace the first one's folder, which the first is reading by then: replacing it removed files
    the first one was about to open (a sweep's job failed on a vanished file)."""
    target = tmp_path / "key"
    with atomic_directory(target) as tmp:
        (tmp / "ids").write_text("second")
        target.mkdir()  # meanwhile, the other process puts its folder in place
        (target / "ids").write_text("first")
    assert (target / "ids").read_text() == "first"
    assert [path.name for path in tmp_path.iterdir()] == ["key"]  # ours is gone


def test_a_failed_build_leaves_the_folder_in_place_and_no_temporary_one(tmp_path):
    target = tmp_path / "key"
    target.mkdir()
    (target / "ids").write_text("old")
    with pytest.raises(RuntimeError, match="encoding failed"):
        with atomic_directory(target) as tmp:
            (tmp / "ids").write_text("new")
            raise RuntimeError("encoding failed")
    assert (target / "ids").read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["key"]


def test_a_discarded_folder_is_gone_whole_and_discarding_it_twice_is_harmless(tmp_path):
    target = tmp_path / "key"
    (target / "inner").mkdir(parents=True)
    (target / "inner" / "ids").write_text("damaged")
    discard_directory(target)
    assert list(tmp_path.iterdir()) == []
    discard_directory(target)  # another process discarded it first: nothing left to do
    assert list(tmp_path.iterdir()) == []
