"""graftlab serve over real HTTP: uvicorn on a free loopback port (in a thread; one test runs the
command itself), every endpoint, every limit and every refusal, the answers equal to
Predictor.predict_proba, and concurrent requests batched into fewer model calls. Servers are
stopped when their module (or test) ends."""

from __future__ import annotations

import base64
import io
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
from conftest import TEXTS, squares
from PIL import Image
from typer.testing import CliRunner

from graftlab.cli import app as cli_app
from graftlab.deploy.payload import Limits
from graftlab.errors import ConfigError
from graftlab.deploy.predictor import Predictor
from graftlab.deploy.serve import create_app, open_socket

LIMITS = Limits(max_body_mb=0.05, max_pixels=64 * 64, max_text_chars=200, max_items=10,
                max_request_pixels=3 * 64 * 64)


@contextmanager
def running(app):
    """``app`` served by uvicorn in a thread on a free 127.0.0.1 port; yields an httpx client."""
    import uvicorn

    sock = open_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a hung start fails, it is no timing assertion
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture(scope="module")
def served(models):
    """One server per model (text, image, regressor), all stopped at the module's end."""
    with running(create_app(Predictor.load(models["text"]), limits=LIMITS)) as text, \
            running(create_app(Predictor.load(models["image"]), limits=LIMITS)) as image, \
            running(create_app(Predictor.load(models["regressor"]), limits=LIMITS)) as reg:
        yield {"text": text, "image": image, "regressor": reg}


def png(img: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(img).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _probabilities(answer: httpx.Response, labels: list[str]) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    return np.asarray([[p["probabilities"][k] for k in labels]
                       for p in answer.json()["predictions"]])


# ---------------------------------------------------------------------- endpoints
def test_health_and_info(served, models):
    health = served["text"].get("/health").json()
    assert health["status"] == "ok" and health["waiting"] == 0
    assert {"batches", "inputs"} <= set(health)
    info = served["text"].get("/info").json()
    assert info["backbone"] == f"hf:{models['bert']}" and info["strategy"] == "full"
    assert (info["labels"], info["task"], info["modality"]) == (["neg", "pos"],
                                                                "classification", "text")
    assert info["limits"] == {"max_body_mb": 0.05, "max_pixels": 4096, "max_text_chars": 200,
                              "max_items": 10, "max_request_pixels": 12288}
    assert info["batching"] == {"max_batch": 32, "max_wait_ms": 5.0}
    assert "texts" in info["accepts"]
    assert served["regressor"].get("/info").json()["task"] == "regression"


def test_the_openapi_schema_describes_predict(served):
    schema = served["image"].get("/openapi.json").json()
    assert {"/predict", "/health", "/info"} <= set(schema["paths"])
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert body["application/json"]["schema"]["properties"]["inputs"]["maxItems"] == 10
    assert "PredictResponse" in schema["components"]["schemas"]


def test_the_docs_page_reads_offline(served):
    page = served["image"].get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "<code>POST /predict</code>" in text and "multipart/form-data" in text
    assert "<script" not in text and "http" not in text.split("</title>")[0]
    assert "cdn" not in text.lower()  # FastAPI's own page loads Swagger UI from a CDN


def test_text_answers_equal_predict_proba(served, models):
    p = Predictor.load(models["text"])
    answer = served["text"].post("/predict", json={"inputs": TEXTS})
    np.testing.assert_allclose(_probabilities(answer, p.labels), p.predict_proba(TEXTS),
                               atol=1e-6)
    assert [x["label"] for x in answer.json()["predictions"]] == p.predict(TEXTS).tolist()
    health = served["text"].get("/health").json()
    assert health["inputs"] >= len(TEXTS) and health["batches"] >= 1


def test_images_as_base64_and_multipart_equal_predict_proba(served, models):
    p = Predictor.load(models["image"])
    x, _ = squares(3)
    odd = np.random.default_rng(3).integers(0, 256, (20, 50, 3), dtype=np.uint8)
    images = [x[0], odd, x[1]]
    expected = p.predict_proba(images)
    files = [png(img) for img in images]
    as_json = served["image"].post("/predict", json={"inputs": [
        b64(files[0]), "data:image/png;base64," + b64(files[1]), b64(files[2])]})
    np.testing.assert_allclose(_probabilities(as_json, p.labels), expected, atol=1e-6)
    upload = served["image"].post("/predict", files=[("file", (f"{i}.png", f, "image/png"))
                                                     for i, f in enumerate(files)])
    np.testing.assert_allclose(_probabilities(upload, p.labels), expected, atol=1e-6)


def test_a_regressor_answers_values(served, models):
    answer = served["regressor"].post("/predict", json={"inputs": TEXTS[:3]})
    assert answer.status_code == 200
    values = [x["value"] for x in answer.json()["predictions"]]
    assert set(answer.json()["predictions"][0]) == {"value"}
    np.testing.assert_allclose(values, Predictor.load(models["regressor"]).predict(TEXTS[:3]),
                               atol=1e-5)


def test_an_exported_model_serves_as_its_predictor(exported):
    p = Predictor.load(exported["image"])
    x, _ = squares(3)
    with running(create_app(Predictor.load(exported["image"], threads=1))) as client:
        assert client.get("/info").json()["kind"] == "exported"
        answer = client.post("/predict", json={"inputs": [b64(png(img)) for img in x]})
    np.testing.assert_allclose(_probabilities(answer, p.labels), p.predict_proba(x), atol=1e-6)


# ---------------------------------------------------------------------- limits
def _refused(answer: httpx.Response, status: int, *needles: str) -> dict:
    assert answer.status_code == status, answer.text
    body = answer.json()
    for needle in needles:
        assert needle in body["detail"], (needle, body)
    return body


def test_a_body_over_the_limit_is_413(served):
    body = _refused(served["text"].post("/predict", json={"inputs": ["a" * 60_000]}), 413,
                    "the request body is 0.1 MiB", "--max-body-mb 0.05")
    assert body["limit"] == {"option": "--max-body-mb", "value": 0.05}
    chunked = (b'{"inputs": ["' + b"a" * 1000 for _ in range(60))  # no Content-Length
    _refused(served["text"].post("/predict", content=chunked), 413, "--max-body-mb 0.05")
    assert served["text"].get("/health").status_code == 200  # the server goes on


def test_a_text_over_the_limit_is_413(served):
    body = _refused(served["text"].post("/predict", json={"inputs": ["ok", "x" * 201]}), 413,
                    "input 1 has 201 characters", "--max-text-chars 200")
    assert "hint" in body
    assert served["text"].post("/predict", json={"inputs": ["x" * 200]}).status_code == 200


def test_too_many_inputs_is_413(served):
    _refused(served["text"].post("/predict", json={"inputs": ["good"] * 11}), 413,
             "the request holds 11 inputs", "--max-items 10")
    one = png(squares(3)[0][0])
    for n, needle in [(11, "the request holds 11 inputs"), (13, "more than 11 parts")]:
        files = [("file", (f"{i}.png", one, "image/png")) for i in range(n)]
        _refused(served["image"].post("/predict", files=files), 413, needle, "--max-items 10")


def test_an_image_over_the_pixel_limit_is_413(served):
    big = png(np.zeros((65, 64, 3), np.uint8))
    _refused(served["image"].post("/predict", json={"inputs": [b64(big)]}), 413,
             "input 0 is 64x65 = 4,160 pixels", "--max-pixels 4,096")
    _refused(served["image"].post("/predict", files=[("file", ("a.png", big, "image/png"))]),
             413, "--max-pixels 4,096")


def test_a_request_of_many_large_images_is_413_before_any_is_decoded(served, monkeypatch):
    import graftlab.deploy.payload as payload

    decoded = []
    monkeypatch.setattr(payload, "read_image", lambda f: decoded.append(1))
    each = png(np.zeros((64, 64, 3), np.uint8))  # within --max-pixels, four over the sum
    _refused(served["image"].post("/predict", json={"inputs": [b64(each)] * 4}), 413,
             "over 16,384 pixels (up to input 3)", "--max-request-pixels 12,288")
    assert not decoded


def test_limits_must_be_finite():
    with pytest.raises(ConfigError, match="--max-body-mb must be a finite number > 0, got inf"):
        Limits(max_body_mb=float("inf"))


# ---------------------------------------------------------------------- bad requests
PNG = b64(png(np.zeros((8, 8, 3), np.uint8)))


@pytest.mark.parametrize(("model", "request_", "status", "needle"), [
    ("text", {"content": b"{not json"}, 400, "the body is not JSON"),
    ("text", {"content": b""}, 400, "the body is not JSON"),
    ("text", {"content": b"[" * 3000}, 400, "nested too deeply"),  # parsed on the loop
    ("text", {"content": b'{"inputs": ' + b"[" * 20000}, 400, "nested too deeply"),  # pool
    ("text", {"json": ["good"]}, 422, "must be a JSON object with 'inputs'; got a list"),
    ("text", {"json": {"texts": ["good"]}}, 422, "an object without 'inputs'"),
    ("text", {"json": {"inputs": ["good"], "x": 1}}, 422, "unknown field(s) 'x'"),
    ("text", {"json": {"inputs": "good"}}, 422, "'inputs' must be a list; got a string"),
    ("text", {"json": {"inputs": []}}, 422, "'inputs' is empty"),
    ("text", {"json": {"inputs": ["good", 3]}}, 422, "input 1 is a number; this text model"),
    ("text", {"json": {"inputs": [None]}}, 422, "input 0 is null"),
    ("text", {"files": [("file", ("a.png", b"x", "image/png"))]}, 422, "this is a text model"),
    ("image", {"json": {"inputs": ["not base64!"]}}, 422, "input 0 is not valid base64"),
    ("image", {"json": {"inputs": [PNG, b64(b"hello, no image")]}}, 422,
     "input 1 is not an image that can be read"),
    ("image", {"json": {"inputs": [PNG, [1, 2]]}}, 422, "input 1 is a list; this image model"),
    ("image", {"files": [("file", ("a.png", png(np.zeros((8, 8, 3), np.uint8))[:40]))]}, 422,
     "input 0 is not an image that can be read"),
    ("image", {"data": {"note": "a text field"}, "files": [("file", ("a.png", b"x"))]}, 422,
     "multipart field 'note' is text, not a file"),
    ("image", {"content": b"--b\r\nbroken", "headers": {
        "content-type": "multipart/form-data; boundary=b"}}, 422, "holds no file part"),
    ("image", {"content": b"--b\r\nbroken", "headers": {
        "content-type": "multipart/form-data"}}, 400, "the multipart body cannot be parsed"),
])
def test_bad_requests_get_a_4xx_that_says_why(served, model, request_, status, needle):
    body = _refused(served[model].post("/predict", **request_), status)
    assert needle in body["detail"] or needle in str(body), body
    assert served[model].get("/health").status_code == 200


def test_answers_are_not_held_back_by_nagle():
    """asyncio turns Nagle off (TCP_NODELAY) on accepted connections of a socket that names
    IPPROTO_TCP only; otherwise each answer waits ~40 ms for the client's delayed ACK."""
    with open_socket("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP


def test_unknown_paths_and_methods_are_4xx(served):
    assert served["text"].get("/nope").status_code == 404
    assert served["text"].get("/predict").status_code == 405


# ---------------------------------------------------------------------- batching
class CountingPredictor:
    """A Predictor whose predict_proba calls are counted; the first waits for ``release``."""

    def __init__(self, predictor: Predictor) -> None:
        self.inner, self.calls = predictor, []
        self.entered, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def predict_proba(self, items):
        self.calls.append(len(items))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(60)
        return self.inner.predict_proba(items)


def test_concurrent_requests_are_batched(models):
    counting = CountingPredictor(Predictor.load(models["text"]))
    app = create_app(counting, max_batch=32, max_wait_ms=0)
    answers: dict[int, httpx.Response] = {}
    with running(app) as client:
        def ask(i: int) -> None:
            answers[i] = client.post("/predict", json={"inputs": [TEXTS[i]]})

        threads = [threading.Thread(target=ask, args=(0,))]
        threads[0].start()
        assert counting.entered.wait(60)  # the worker holds the first request
        threads += [threading.Thread(target=ask, args=(i,)) for i in range(1, 8)]
        for t in threads[1:]:
            t.start()
        deadline = time.monotonic() + 60
        while app.state.batcher.pending < 7:  # all seven wait behind the first
            assert time.monotonic() < deadline, "the requests did not arrive"
            time.sleep(0.005)
        counting.release.set()
        for t in threads:
            t.join(60)
        health = client.get("/health").json()
    assert counting.calls == [1, 7]  # 8 requests, 2 model calls
    assert (health["batches"], health["inputs"]) == (2, 8)
    expected = Predictor.load(models["text"]).predict_proba(TEXTS[:8])
    got = np.concatenate([_probabilities(answers[i], counting.labels) for i in range(8)])
    np.testing.assert_allclose(got, expected, atol=1e-6)


# ---------------------------------------------------------------------- the command
def _cli(*args, code: int = 2) -> str:
    result = CliRunner().invoke(cli_app, ["serve", *map(str, args)])
    assert result.exit_code == code, (result.output, result.exception)
    return " ".join(result.output.split())


def test_a_port_in_use_is_named_with_the_option(models):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _cli(models["text"], "--port", port)
    assert f"port {port} on 127.0.0.1 is in use" in out and "--port" in out


@pytest.mark.parametrize(("args", "needle"), [
    (["--max-batch", "0"], "--max-batch must be an integer >= 1, got 0"),
    (["--max-wait-ms", "-1"], "--max-wait-ms must be >= 0"),
    (["--max-items", "0"], "--max-items must be a finite number > 0, got 0"),
    (["--max-body-mb", "0"], "--max-body-mb must be a finite number > 0"),
    (["--max-body-mb", "inf"], "--max-body-mb must be a finite number > 0, got inf"),
    (["--port", "70000"], "--port must be between 0 and 65535, got 70000"),
    (["--threads", "0"], "--threads must be an integer >= 1, got 0"),
    (["--host", "203.0.113.9", "--port", "0"], "cannot listen on 203.0.113.9:0"),
])
def test_bad_options_are_refused_before_anything_loads(models, args, needle):
    assert needle in _cli(models["text"], *args)


def test_a_model_that_does_not_load_stops_before_the_server(tmp_path):
    out = _cli(tmp_path / "missing", "--port", "0")
    assert f"{tmp_path / 'missing'} does not exist" in out


def test_the_command_serves_until_interrupted(models):
    command = [sys.executable, "-c", "from graftlab.cli import app; app()", "serve",
               str(models["text"]), "--port", "0", "--max-items", "4"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        assert "serving" in line and "http://127.0.0.1:" in line, line
        url = line.split("http://", 1)[1].split()[0]
        with httpx.Client(base_url=f"http://{url}", timeout=60) as client:
            assert client.get("/health").json()["status"] == "ok"
            answer = client.post("/predict", json={"inputs": ["good film"] * 5})
            assert answer.status_code == 413 and "--max-items 4" in answer.json()["detail"]
            assert json.loads(client.post("/predict", json={"inputs": ["good"]}).text)[
                "predictions"][0]["label"] in ("neg", "pos")
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl+C
        code, rest = server.wait(60), server.stderr.read()
    assert code == 0 and "Traceback" not in rest, rest


def test_importing_the_cli_loads_no_web_server():
    code = ("import sys, graftlab.cli; print([m for m in ('fastapi', 'uvicorn', 'starlette', "
            "'graftlab.deploy.serve') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
