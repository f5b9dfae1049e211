"""The explorer's JSON API over HTTP, as a program uses it: good requests answered with what the
library gives, bad ones with a 4xx and a one-line reason (never a 500), the server still serving,
and concurrent requests each answered correctly."""

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import numpy as np
import pytest

SENTENCES = ["ka lo mi ne", "ta ri po", "lo ka su su fe gu ba", "mi"]


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """(status, parsed JSON or raw bytes) of one request on a fresh connection."""
    parts = urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    kind = response.getheader("Content-Type", "")
    return response.status, json.loads(data) if kind.startswith("application/json") else data


def post(url: str, path: str, body) -> tuple[int, dict]:
    return request(url, "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"})


def test_translate_answers_what_the_library_gives(explorer):
    status, answer = post(explorer.url, "/api/translate", {"texts": SENTENCES, "nbest": 3})
    assert status == 200
    expected = explorer.translator.translate_nbest(SENTENCES, nbest=3)
    for sentence, translated, hypotheses in zip(SENTENCES, answer["translations"], expected):
        assert translated["source"] == sentence
        assert [h["text"] for h in translated["nbest"]] == [h.text for h in hypotheses]
        best = translated["nbest"][0]
        scored = explorer.translator.score([sentence], [best["text"]], attention=True)[0]
        assert best["target_pieces"] == [*scored.target_pieces, "</s>"]
        assert np.allclose(best["attention"], scored.attention, atol=1e-5)
        assert np.allclose(np.log(best["token_probabilities"]), scored.token_log_probs, atol=1e-6)
        assert len(best["attention"]) == len(best["target_pieces"])
        assert all(len(row) == len(best["source_pieces"]) for row in best["attention"])


def test_score_answers_forced_decoding_and_its_alignment(explorer):
    status, answer = post(explorer.url, "/api/score", {"source": "ka lo mi", "target": "three two one"})
    assert status == 200
    (scored,) = explorer.translator.score(["ka lo mi"], ["three two one"], attention=True)
    assert answer["log_prob"] == pytest.approx(scored.log_prob) and answer["perplexity"] == pytest.approx(
        scored.perplexity
    )
    (links,) = explorer.translator.align(["ka lo mi"], ["three two one"])
    assert answer["alignment"] == [list(link) for link in links]
    assert answer["source_words"] == ["ka", "lo", "mi"] and answer["target_words"] == ["three", "two", "one"]


def test_info_and_the_page(explorer):
    status, info = request(explorer.url, "GET", "/api/info")
    assert status == 200 and info["source_language"] == "xx" and info["max_chars"] == 200
    status, page = request(explorer.url, "GET", "/")
    assert status == 200 and b"Attention explorer" in page
    for path in ("/static/explorer.js", "/static/explorer.css"):
        assert request(explorer.url, "GET", path)[0] == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/translate", b"{not json", 400, "not valid JSON"),
        ("/api/translate", b"\xff\xfe", 400, "not valid JSON"),
        ("/api/translate", b"[1, 2]", 400, "must be a JSON object"),
        ("/api/translate", b'{"text": ""}', 400, '"text" is empty'),
        ("/api/translate", b'{"text": "   "}', 400, '"text" is empty'),
        ("/api/translate", b'{"text": 5}', 400, '"text" must be a string'),
        ("/api/translate", b'{"txt": "ka"}', 400, 'unknown field "txt"'),
        ("/api/translate", b'{"text": "ka", "texts": ["lo"]}', 400, "not both"),
        ("/api/translate", b'{"texts": []}', 400, '"texts" is empty'),
        ("/api/translate", b'{"texts": ["ka", 3]}', 400, '"texts[1]" must be a string'),
        ("/api/translate", b'{"text": "ka", "nbest": 99}', 400, '"nbest": 99'),
        ("/api/translate", b'{"text": "ka", "nbest": true}', 400, '"nbest" must be an integer'),
        ("/api/translate", b'{"text": "ka", "search": "sample"}', 400, '"search"'),
        ("/api/translate", json.dumps({"text": "ka " * 100}).encode(), 413, "at most 200"),
        ("/api/translate", json.dumps({"texts": ["ka"] * 9}).encode(), 413, "at most 8 per request"),
        ("/api/score", b'{"source": "ka"}', 400, '"target" is missing'),
        ("/api/score", b'{"source": "ka", "target": ""}', 400, '"target" is empty'),
        ("/api/nothing", b"{}", 404, "no API at /api/nothing"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_reason_and_the_server_goes_on(explorer, path, body, status, message):
    got, answer = request(explorer.url, "POST", path, body, {"Content-Type": "application/json"})
    assert got == status and message in answer["error"] and "\n" not in answer["error"]
    assert post(explorer.url, "/api/translate", {"text": "ka lo"})[0] == 200


def test_a_missing_length_an_oversized_body_and_other_methods_are_refused(explorer):
    parts = urlparse(explorer.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    connection.putrequest("POST", "/api/translate")
    connection.putheader("Content-Type", "application/json")
    connection.endheaders()
    assert connection.getresponse().status == 411
    connection.close()
    json_type = {"Content-Type": "application/json"}
    assert (
        request(explorer.url, "POST", "/api/translate", b"x", {**json_type, "Content-Length": str(2 << 20)})[0] == 413
    )
    # a plain-text POST, which any web page could send cross-site, is refused unread
    status, answer = request(explorer.url, "POST", "/api/translate", b'{"text": "ka"}', {"Content-Type": "text/plain"})
    assert status == 415 and "application/json" in answer["error"]
    assert request(explorer.url, "DELETE", "/api/translate")[0] == 405
    assert request(explorer.url, "GET", "/missing")[0] == 404
    assert post(explorer.url, "/api/translate", {"text": "ka lo"})[0] == 200


def test_concurrent_requests_are_each_answered_correctly(explorer):
    expected = explorer.translator.translate(SENTENCES)
    jobs = [(SENTENCES[i % len(SENTENCES)], expected[i % len(SENTENCES)]) for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda job: post(explorer.url, "/api/translate", {"text": job[0]}), jobs))
    for (_, translation), (status, answer) in zip(jobs, answers):
        assert status == 200 and answer["translations"][0]["nbest"][0]["text"] == translation
