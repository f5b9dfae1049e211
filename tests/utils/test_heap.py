"""`nmt.utils.heap`: the process-wide memory settings of training and the benchmark."""

import os

from nmt.utils.heap import ONEDNN_CACHE_CAPACITY, bound_onednn_cache


def test_the_onednn_cache_is_bounded_unless_the_user_chose_a_capacity(monkeypatch):
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    bound_onednn_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(ONEDNN_CACHE_CAPACITY)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")
    bound_onednn_cache()
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "64"  # the user's setting wins
