"""Commands that take a trained model out of its run: export, predict, serve."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from graftlab.cli.app import (SkipCorrupt, _errors, _progress, _terminate, app, console,
                              err)

# graftlab.deploy (numpy, torch, onnxruntime) loads inside each command, so `graftlab --help`
# and every other command start without it.
Model = Annotated[str, typer.Argument(
    help="A saved model folder, an average of adapted models, a run folder of graftlab fit, "
    "compare or adapt (its model/), or (predict) a folder from graftlab export.",
    show_default=False)]
TextColumn = Annotated[str, typer.Option(help="CSV/JSONL text column.")]


@app.command()
def export(
    model: Model,
    out: Annotated[Path, typer.Option(help="The new folder to write (model.onnx, "
                                           "contract.json, manifest.json).")],
    sample: Annotated[str | None, typer.Option(
        help="Data (image folder or .csv/.jsonl) whose first inputs check the export; default "
        "a fixed synthetic sample.")] = None,
    text_column: TextColumn = "text",
    quantize: Annotated[str, typer.Option(
        help="none; int8 (images: static, calibrated; text: dynamic), checked by prediction "
        "agreement with fp32; auto: int8 only where it is faster on this CPU.")] = "none",
    calibration: Annotated[str | None, typer.Option(
        help="Images (a folder) that calibrate an image model's int8 ranges; default the "
        "--sample data.")] = None,
) -> None:
    """Export a model to ONNX with its preprocessing contract, checked against PyTorch (max
    |difference| 1e-4, every prediction the same) before anything is written."""
    from graftlab.deploy.export import TOLERANCE, export as run_export

    with _errors():
        done = run_export(model, out, sample=sample, text_column=text_column,
                          quantize=quantize, calibration=calibration)
    int8 = bool(done.quantize and done.quantize.get("kept") == "int8")
    console.print(f"exported {model} to [bold]{done.folder}[/] ({'int8 ' if int8 else ''}"
                  f"model.onnx {done.bytes / 2**20:.1f} MiB); the fp32 graph's parity on "
                  f"{done.samples} inputs of {done.sample}: max |difference| "
                  f"{done.max_abs_diff:.1e} (limit {TOLERANCE:.0e}), every prediction the same.",
                  highlight=False, soft_wrap=True)
    if done.quantize:  # what --quantize did: asked, kept, why, the int8 check
        q, check = done.quantize, done.quantize.get("check")
        agreed = (f"; int8 predicts the fp32 class on {check['prediction_agreement']:.1%} of "
                  f"{check['samples']} inputs of {check['sample']} (max |difference| "
                  f"{check['max_abs_diff']:.2g})") if check else ""
        console.print(f"kept {q['kept']}: {q['reason']}{agreed}.", highlight=False,
                      soft_wrap=True)


@app.command()
def predict(
    model: Model,
    data: Annotated[str, typer.Argument(
        help="A folder of images (read recursively; no labels needed), a .csv/.jsonl table of "
        "texts, a .txt file or - for stdin (one text, or one image path, a line); for a tagger "
        "also a .conll/.bio file (one word a line, sentences split by blank lines).",
        show_default=False)],
    out: Annotated[Path | None, typer.Option(
        help="Write here (.csv or .jsonl, by the suffix; written whole at the end). Default: "
        "JSONL on stdout.")] = None,
    batch_size: Annotated[int, typer.Option(help="Inputs predicted (and held) at a time.")]
    = 32,
    text_column: TextColumn = "text",
    skip_corrupt: SkipCorrupt = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out file.")] = False,
) -> None:
    """Predict a label and its probabilities (or a value) for every input, streamed in
    batches: one row per input, with its id (file path or row number). A tagger writes the
    tags and entities, a multi-task model a column per task."""
    from graftlab.deploy.batch import check_out, open_source, predict_to
    from graftlab.deploy.predictor import Predictor
    from graftlab.errors import ConfigError

    with _errors():
        if batch_size < 1:
            raise ConfigError(f"--batch-size must be an integer >= 1, got {batch_size}.")
        path = check_out(out, data, overwrite)
        predictor = Predictor.load(model, batch_size=batch_size)
        source = open_source(data, predictor.modality, text_column=text_column,
                             skip_corrupt=skip_corrupt, task=predictor.task)
        stdout = sys.stdout  # the real one: a progress bar redirects sys.stdout to itself
        with _progress() as update:
            count = predict_to(predictor, source, path, batch_size=batch_size, stdout=stdout,
                               progress=lambda d, t: update(f"predict {source.name}", d, t))
    if source.skipped:
        shown = ", ".join(source.skipped[:5]) + (
            f" and {len(source.skipped) - 5} more" if len(source.skipped) > 5 else "")
        err.print(f"skipped {len(source.skipped)} unreadable file(s) (--skip-corrupt): {shown}",
                  highlight=False, markup=False, soft_wrap=True)
    if path is not None:
        console.print(f"{count} predictions written to {path}", highlight=False, soft_wrap=True)
    else:
        err.print(f"{count} predictions", highlight=False, soft_wrap=True)


@app.command()
def serve(
    model: Model,
    host: Annotated[str, typer.Option(help="Address to listen on: 127.0.0.1 is this machine "
                                           "only, 0.0.0.0 every network interface.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8000,
    max_batch: Annotated[int, typer.Option(
        help="Inputs the model runs at once, gathered across concurrent requests.")] = 32,
    max_wait_ms: Annotated[float, typer.Option(
        help="How long a batch waits for more requests after its first.")] = 5.0,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, MiB.")] = 16.0,
    max_pixels: Annotated[int, typer.Option(help="Largest image, height x width.")]
    = 16_000_000,
    max_text_chars: Annotated[int, typer.Option(help="Longest text, characters.")] = 10_000,
    max_items: Annotated[int, typer.Option(help="Most inputs in one request.")] = 256,
    max_request_pixels: Annotated[int, typer.Option(
        help="Most pixels in all the images of one request, height x width summed.")]
    = 64_000_000,
    threads: Annotated[int | None, typer.Option(
        help="Threads the model runs on (PyTorch, ONNX Runtime); default all cores. On a "
        "shared or busy machine 1 often answers more requests per second.",
        show_default=False)] = None,
) -> None:
    """Serve a model over HTTP: POST /predict (JSON texts, base64 or multipart images), GET
    /health, GET /info, /docs; concurrent requests are batched together."""
    from graftlab.deploy.payload import Limits
    from graftlab.deploy.predictor import Predictor
    from graftlab.deploy.serve import MicroBatcher, create_app, open_socket, run, warm_up
    from graftlab.errors import ConfigError

    with _errors():
        limits = Limits(max_body_mb=max_body_mb, max_pixels=max_pixels,
                        max_text_chars=max_text_chars, max_items=max_items,
                        max_request_pixels=max_request_pixels)
        MicroBatcher.check(max_batch, max_wait_ms)
        if threads is not None and threads < 1:
            raise ConfigError(f"--threads must be an integer >= 1, got {threads}.",
                              hint="leave it out to use every core.")
        sock = open_socket(host, port)
        try:
            if threads is not None:
                import torch

                torch.set_num_threads(threads)
            predictor = Predictor.load(model, batch_size=max_batch, threads=threads)
            warm_up(predictor)
        except BaseException:
            sock.close()
            raise
    app_ = create_app(predictor, limits=limits, max_batch=max_batch, max_wait_ms=max_wait_ms)
    if signal.getsignal(signal.SIGTERM) is _terminate:  # uvicorn shuts down on SIGTERM itself,
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # then re-raises it: exit as killed, 143
    run(app_, sock, ready=lambda url: err.print(
        f"serving {model} ({predictor.modality} {predictor.task}) on {url} (POST /predict, "
        "GET /health, /info, /docs); Ctrl+C stops", highlight=False, soft_wrap=True))
