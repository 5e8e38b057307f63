"""The client side of benchmarks/serve.py: a bounded async httpx load (``concurrency``
workers sharing one client of as many connections, each sending its next request when its
answer came) and the
malformed-request storm. httpx rather than locust: it runs in the benchmark's own process with
no extra tool, and locust's workers would take more of the same two shared cores."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import time
from collections import Counter

BODY_MB = 1.0  # --max-body-mb of the served models, so the storm's huge bodies stay small


def png64(image) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def malformed(modality: str) -> list[tuple[str, bytes]]:
    """One body of each malformed kind the storm mixes in."""
    import numpy as np

    huge = json.dumps({"inputs": ["a" * int(BODY_MB * 2**20 * 1.5)]}).encode()
    kinds = [("wrong type", json.dumps({"inputs": [123, None]}).encode()),
             ("not a list", json.dumps({"inputs": "one"}).encode()),
             ("empty list", b'{"inputs": []}'), ("not JSON", b'{"inputs": [oops'),
             ("huge body", huge)]
    if modality == "text":
        return kinds + [("text over the limit", json.dumps({"inputs": ["x" * 20_000]}).encode())]
    bomb = png64(np.zeros((5000, 5000, 3), np.uint8))  # 25 Mpx, tens of KiB compressed
    return kinds + [("broken image", json.dumps({"inputs": [base64.b64encode(
        os.urandom(600)).decode()]}).encode()),
                    ("broken base64", b'{"inputs": ["iVBORw0KGgo%%%"]}'),
                    ("pixel bomb", json.dumps({"inputs": [bomb]}).encode())]


def rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


async def load(url: str, bodies: list[bytes], concurrency: int, seconds: float) -> dict:
    """``concurrency`` workers post one-input bodies for ``seconds``; latency of each 200."""
    import httpx

    latencies, errors = [], Counter()
    headers = {"content-type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    stop = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        async def worker(i: int) -> None:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    answer = await client.post("/predict", content=bodies[i % len(bodies)],
                                               headers=headers)
                    code = answer.status_code
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                if code == 200:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors[str(code)] += 1
                i += concurrency

        start = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        wall = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "wall": wall}


async def storm(url: str, pid: int, model: dict, n: int, concurrency: int = 32) -> dict:
    """``n`` requests, every fifth malformed; counts answers, checks good ones, samples RSS."""
    import httpx

    good = [json.dumps({"inputs": [x]}).encode() for x in model["pool"]]
    bad = malformed(model["modality"])
    counts, rss, sent, done = Counter(), [(0, rss_mib(pid))], 0, 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        async def worker() -> None:
            nonlocal sent, done
            while sent < n:
                i, sent = sent, sent + 1
                kind = "bad" if i % 5 == 4 else "good"
                body = bad[(i // 5) % len(bad)][1] if kind == "bad" else good[i % len(good)]
                try:
                    answer = await client.post("/predict", content=body,
                                               headers={"content-type": "application/json"})
                    counts[_verdict(kind, answer, model, i % len(good))] += 1
                except httpx.HTTPError as exc:
                    counts[f"{kind} {type(exc).__name__}"] += 1
                done += 1
                if done % max(1, n // 10) == 0:
                    rss.append((done, rss_mib(pid)))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"counts": counts, "rss": rss, "kinds": [k for k, _ in bad]}


def _verdict(kind: str, answer, model: dict, index: int) -> str:
    """``"good 2xx"`` / ``"bad 4xx"`` (what should happen), else what did; a good answer
    whose probabilities differ from Predictor.predict_proba's by over 1e-4 is wrong."""
    import numpy as np

    verdict = f"{kind} {answer.status_code // 100}xx"
    if verdict == "good 2xx":
        got = answer.json()["predictions"][0]["probabilities"]
        want = model["expected"][index]
        if np.abs(np.asarray([got[k] for k in model["labels"]]) - want).max() > 1e-4:
            return "good wrong answer"
    return verdict
