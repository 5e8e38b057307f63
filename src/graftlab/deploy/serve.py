"""``graftlab serve``: one model behind HTTP (FastAPI + uvicorn), with dynamic micro-batching.

    POST /predict   {"inputs": [texts]} or {"inputs": [base64 image files]} (JSON), or image
                    files as multipart/form-data parts; answers a label and probabilities per
                    input (a value for a regression model; a tagger's words, tags and
                    entities; a multi-task model's answer per task)
    GET  /health    liveness, and how many batches and inputs the model has run
    GET  /info      the model card (backbone, strategy, data, metrics, labels) and the limits
    GET  /openapi.json, /docs

Where the work runs: the endpoints are ``async``. Parsing and decoding a request's inputs
(JSON, base64, image decoding: :mod:`graftlab.deploy.payload`) runs in the thread pool
(``run_in_threadpool``), but for a JSON body of at most :data:`INLINE_BYTES` (one short text, a
thumbnail), parsed on the loop where the thread hop would cost more than the parse; inference
runs in the micro-batcher's one worker thread
(:mod:`graftlab.deploy.batcher`), which owns the Predictor; the endpoint awaits the batcher's
future. So the event loop only moves bytes and never runs the model, and a request waiting for
its batch holds no thread (a plain ``def`` endpoint would hold one of the pool's 40 threads
blocked on the future for every request in flight).

The body limit is an ASGI middleware that reads at most ``--max-body-mb`` before the endpoint
sees the body; a body over it is read to its end and discarded (up to :data:`DRAIN_CAP`, or twice
the limit if larger), so the client, still sending, gets the 413 rather than a reset connection.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from graftlab import __version__
from graftlab.deploy import payload
from graftlab.deploy.batcher import MicroBatcher
from graftlab.deploy.payload import Limits, Refused
from graftlab.deploy.predictor import Predictor
from graftlab.deploy.structured import MULTITASK, TAGGING
from graftlab.errors import ConfigError, GraftlabError

log = logging.getLogger(__name__)
INLINE_BYTES = 4096  # a JSON body this small is parsed (and its images decoded) on the loop
DRAIN_CAP = 256 * 2**20  # a larger body is answered at once and its connection closed


def open_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: a free one), for :func:`run`; a port in use,
    or a host this machine does not have, is a :class:`ConfigError` naming it."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {port}.",
                          hint="e.g. --port 8000 (0 takes any free port).")
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY on accepted connections only then; without
    # it every answer waits for the client's delayed ACK (~40 ms on Linux).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM,
                         socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: not a live port
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:
        sock.close()
        code = getattr(exc, "errno", None)
        if code == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use: another program listens there.",
                              hint=f"stop it, or choose another port with --port (e.g. --port "
                              f"{port + 1 if port < 65535 else 8000}).") from None
        if code == errno.EACCES:
            raise ConfigError(f"no permission to listen on port {port} (ports below 1024 need "
                              "administrator rights).", hint="use --port 8000.") from None
        raise ConfigError(f"cannot listen on {host}:{port} ({getattr(exc, 'strerror', exc)}).",
                          hint="--host 127.0.0.1 serves this machine only, --host 0.0.0.0 "
                          "every network interface.") from None
    return sock


def warm_up(predictor: Predictor) -> None:
    """One prediction on a synthetic input: the first call's set-up is paid before the port
    opens, and a model that cannot predict fails here, not on the first request."""
    sample = ["warm-up"] if predictor.modality == "text" else [np.zeros((32, 32, 3), np.uint8)]
    predictor.predict(sample)


def run(app: FastAPI, sock: socket.socket, ready: Callable[[str], Any] | None = None) -> None:
    """Serve ``app`` on ``sock`` with uvicorn until interrupted (Ctrl+C, SIGTERM); ``ready``
    gets the URL once the port takes connections. Access logs are off (one line per request
    costs throughput); uvicorn's warnings still show."""
    import uvicorn

    sock.listen(2048)  # connections wait from now on, even before uvicorn accepts them
    host, port = sock.getsockname()[:2]
    if ready is not None:
        ready(f"http://{f'[{host}]' if ':' in host else host}:{port}")
    config = uvicorn.Config(app, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops gracefully, then raises Ctrl+C again
        log.info("stopped (Ctrl+C)")


class Prediction(BaseModel):
    label: str | None = None
    probabilities: dict[str, float] | None = None
    value: float | None = None
    tasks: dict[str, dict[str, Any]] | None = None  # a multi-task model's answer per task
    words: list[str] | None = None  # a tagger's: the words, a tag per word, the entities
    tags: list[str] | None = None
    entities: list[dict[str, Any]] | None = None


class PredictResponse(BaseModel):
    predictions: list[Prediction]


def create_app(predictor: Predictor, *, limits: Limits | None = None, max_batch: int = 32,
               max_wait_ms: float = 5.0) -> FastAPI:
    """The application serving ``predictor``. Its micro-batcher starts with the application
    (``app.state.batcher``, from startup on) and stops with it."""
    limits = limits or Limits()
    MicroBatcher.check(max_batch, max_wait_ms)  # refused now, not at startup

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        run = (predictor.details if predictor.task in (TAGGING, MULTITASK) else
               predictor.predict_proba if predictor.task == "classification" else
               predictor.predict)
        app.state.batcher = MicroBatcher(run, max_batch=max_batch, max_wait_ms=max_wait_ms)
        try:
            yield
        finally:
            app.state.batcher.close()

    app = FastAPI(title="graftlab serve", version=__version__, lifespan=lifespan,
                  description=f"A {predictor.modality} {predictor.task} model "
                  f"({predictor.card.get('backbone')}) with dynamic micro-batching.",
                  docs_url=None, redoc_url=None)  # FastAPI's pages load scripts from a CDN
    app.state.predictor, app.state.limits = predictor, limits
    app.state.batching = {"max_batch": max_batch, "max_wait_ms": max_wait_ms}
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes, mb=limits.max_body_mb)
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(GraftlabError, _refused)
    _routes(app, predictor, limits)
    return app


def _routes(app: FastAPI, predictor: Predictor, limits: Limits) -> None:
    kind = payload.WORDS if predictor.task == TAGGING else predictor.modality  # what it takes
    refusals = {code: {"description": what} for code, what in [
        (400, "the body cannot be parsed"), (413, "a limit (named, with its value)"),
        (422, "an input of the wrong kind (named by its position)")]}

    @app.post("/predict", response_model=PredictResponse, response_model_exclude_none=True,
              responses=refusals, openapi_extra=_request_body(kind, limits))
    async def predict(request: Request) -> JSONResponse:
        """Predict every input of the request (answers in the order given)."""
        items = await _inputs(request, kind, limits)
        rows = await asyncio.wrap_future(request.app.state.batcher.submit(items))
        answers = rows if predictor.task in (TAGGING, MULTITASK) else _predictions(
            rows, predictor.labels)
        return JSONResponse({"predictions": answers})

    @app.get("/health")
    async def health(request: Request) -> dict:
        """Liveness, and the micro-batcher's counts so far."""
        batcher = request.app.state.batcher
        return {"status": "ok", "batches": batcher.batches, "inputs": batcher.items,
                "waiting": batcher.pending}

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        """The API as a self-contained page (no script from a CDN: it reads offline)."""
        return HTMLResponse(docs_page(request.app.openapi(), str(request.base_url)))

    @app.get("/info")
    async def info(request: Request) -> dict:
        """The model card, what /predict takes, and the limits."""
        return {**predictor.card, "modality": predictor.modality, "task": predictor.task,
                "labels": predictor.labels, "kind": predictor.kind,
                "accepts": payload.WORDS_FORM if kind == payload.WORDS else payload.TEXT_FORM
                if kind == "text" else payload.IMAGE_FORM,
                "limits": asdict(limits), "batching": request.app.state.batching}


def docs_page(schema: dict, base: str) -> str:
    """An HTML page of the OpenAPI ``schema``: each endpoint, what it takes and answers, and
    a request to try; no scripts, so it renders without a network."""
    import html
    import json

    info = schema.get("info", {})
    parts = [f"<h1>{html.escape(info.get('title', ''))} {html.escape(info.get('version', ''))}"
             f"</h1><p>{html.escape(info.get('description', ''))}</p>"
             f'<p>The machine-readable schema: <a href="/openapi.json">/openapi.json</a>.</p>']
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                         f"<p>{html.escape(op.get('summary', ''))}. "
                         f"{html.escape(op.get('description', ''))}</p>")
            body = op.get("requestBody", {}).get("content", {})
            for kind, spec in body.items():
                example = spec.get("example") or next(
                    (e.get("value") for e in spec.get("examples", {}).values()), None)
                shown = json.dumps(example, indent=1)[:600] if example is not None else ""
                parts.append(f"<p>Takes <code>{html.escape(kind)}</code>"
                             + (f":</p><pre>{html.escape(shown)}</pre>" if shown else ".</p>"))
            answers = ", ".join(f"{code} ({html.escape(r.get('description', ''))})"
                                for code, r in op.get("responses", {}).items())
            parts.append(f"<p>Answers: {answers}.</p>")
            if method == "get":
                parts.append(f"<pre>curl {html.escape(base.rstrip('/') + path)}</pre>")
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
             "pre{background:#f4f4f4;padding:.6em;overflow:auto}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(info.get('title', 'API'))}</title><style>{style}</style></head>"
            f"<body>{''.join(parts)}</body></html>")


async def _inputs(request: Request, modality: str, limits: Limits) -> list:
    """The request's inputs, decoded in the thread pool (multipart, or else JSON)."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        files = await _files(request, limits)
        return await run_in_threadpool(payload.file_inputs, files, modality, limits)
    body = await request.body()
    if len(body) <= INLINE_BYTES:  # a thread hop costs more than parsing it
        return payload.json_inputs(body, modality, limits)
    return await run_in_threadpool(payload.json_inputs, body, modality, limits)


async def _files(request: Request, limits: Limits) -> list[bytes]:
    """The bytes of each file part, in order; a text part is refused."""
    try:
        form = await request.form(max_files=limits.max_items + 1,
                                  max_fields=limits.max_items + 1)
    except HTTPException as exc:  # Starlette's multipart parser: too many parts, or broken
        if "Too many" in str(exc.detail):
            raise payload.too_large(f"the request holds more than {limits.max_items + 1} "
                                    "parts", "--max-items", limits.max_items) from None
        raise Refused(400, f"the multipart body cannot be parsed ({exc.detail}).",
                      hint="send one image file per part (curl -F file=@photo.jpg).") from None
    try:
        files = []
        for name, value in form.multi_items():
            if isinstance(value, str):
                raise Refused(422, f"multipart field {name!r} is text, not a file.",
                              hint="send each image as a file part (curl -F file=@photo.jpg).")
            files.append(await value.read())
        return files
    finally:
        await form.close()


def _predictions(rows: np.ndarray, labels: list[str] | None) -> list[dict[str, Any]]:
    if labels is None:
        return [{"value": float(v)} for v in rows]
    return [{"label": labels[int(np.argmax(p))], "probabilities": dict(zip(labels, p.tolist(),
                                                                          strict=True))}
            for p in rows]


async def _refused(request: Request, exc: GraftlabError) -> JSONResponse:
    """A :class:`Refused` with its status; any other graftlab error about the inputs, 422."""
    if isinstance(exc, Refused):
        return JSONResponse(exc.body(), status_code=exc.status)
    return JSONResponse({"detail": exc.message, **({"hint": exc.hint} if exc.hint else {})},
                        status_code=422)


def _request_body(modality: str, limits: Limits) -> dict:
    """/predict's request body in the OpenAPI schema (the endpoint reads it itself)."""
    item = ({"type": "string", "maxLength": limits.max_text_chars} if modality != "image"
            else {"type": "string", "contentEncoding": "base64",
                  "description": "an image file (PNG, JPEG, ...) in base64"})
    if modality == payload.WORDS:  # a tagger: a text, or its words
        item = {"anyOf": [item, {"type": "array", "items": {"type": "string"}}]}
    inputs = {"type": "array", "items": item, "minItems": 1, "maxItems": limits.max_items}
    content = {"application/json": {"schema": {
        "type": "object", "properties": {"inputs": inputs}, "required": ["inputs"],
        "additionalProperties": False}}}
    if modality == "image":
        content["multipart/form-data"] = {"schema": {"type": "object", "properties": {"file": {
            "type": "array", "items": {"type": "string", "format": "binary"},
            "maxItems": limits.max_items}}}}
    return {"requestBody": {"required": True, "content": content}}


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 (read and
    discarded to its end, up to :data:`DRAIN_CAP`); a body within it is passed on whole."""

    def __init__(self, app: Any, *, limit: int, mb: float) -> None:
        self.app, self.limit, self.mb = app, limit, mb
        self.cap = max(DRAIN_CAP, 2 * limit)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        chunks, size, more = [], 0, declared is None or declared <= self.cap
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.limit:
                chunks.append(chunk)
            more = message.get("more_body", False) and size <= self.cap
        size = max(size, declared or 0)
        if size > self.limit:
            refused = payload.too_large(f"the request body is {size / 2**20:,.1f} MiB",
                                        "--max-body-mb", self.mb)
            await JSONResponse(refused.body(), status_code=413)(scope, receive, send)
            return
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _content_length(scope: dict) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
