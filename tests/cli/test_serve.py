"""`nmt-serve` as a user starts it: it prints its address, answers there, and a port already in
use ends with one line."""

import json
import re
import socket
import subprocess
import sys
import urllib.request

import pytest

from nmt.checkpoint import save_checkpoint
from tests.test_checkpoint import tiny_checkpoint, toy_tokenizers

pytestmark = pytest.mark.integration  # starts the tool in a subprocess


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    _, payload = tiny_checkpoint(toy_tokenizers(root), seed=2)
    save_checkpoint(root / "model.pt", payload)
    return root / "model.pt"


def serve(*arguments: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "nmt.cli.serve", *arguments, "--quiet"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_tool_prints_its_address_and_answers_there(checkpoint):
    process = serve("--checkpoint", str(checkpoint), "--port", "0", "--device", "cpu")
    try:
        line = process.stdout.readline()
        url = re.search(r"http://[\d.]+:\d+/", line).group(0)
        with urllib.request.urlopen(f"{url}api/info", timeout=30) as response:
            assert json.loads(response.read())["max_chars"] == 1000
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_port_in_use_ends_with_one_line(checkpoint):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = serve("--checkpoint", str(checkpoint), "--port", str(port), "--device", "cpu")
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert stderr.strip().count("\n") == 0
