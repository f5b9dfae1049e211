"""A running explorer over a tiny toy model, on a free localhost port, for the API and browser tests."""

import threading
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from nmt import Translator
from nmt.checkpoint import save_checkpoint
from nmt.serving.api import ExplorerApi, Limits
from nmt.serving.server import make_server
from tests.test_checkpoint import tiny_checkpoint, toy_tokenizers


class Explorer(NamedTuple):
    url: str
    translator: Translator


@pytest.fixture(scope="module")
def explorer(tmp_path_factory) -> Iterator[Explorer]:
    root = tmp_path_factory.mktemp("explorer")
    _, payload = tiny_checkpoint(toy_tokenizers(root), seed=4)
    payload["config"]["data"] = {"src_lang": "xx", "tgt_lang": "yy"}
    payload["config"]["decode"] = {  # an untrained model would end at once: outputs as long as the source
        "_target_": "nmt.decoding.search.BeamSearch",
        "beam_size": 4,
        "min_length_ratio": 1.0,
        "max_length_ratio": 1.5,
    }
    save_checkpoint(root / "model.pt", payload)
    translator = Translator.from_checkpoint(root / "model.pt", device="cpu", precision="fp32")
    server = make_server(ExplorerApi(translator, Limits(max_chars=200, max_texts=8), name="toy"), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield Explorer(f"http://{host}:{port}", translator)
    server.shutdown()
    server.server_close()
