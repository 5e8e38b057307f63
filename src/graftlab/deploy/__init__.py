"""Deploy: a trained model outside the run that made it.

- :class:`graftlab.deploy.predictor.Predictor`: the one interface to a trained model, however
  it was saved (a saved Grafter, an average of adapted models, a run folder, an exported
  folder); ``graftlab predict`` uses it, and a server can.
- :func:`graftlab.deploy.export.export`: the model as one ONNX graph with its preprocessing
  contract, checked against eager PyTorch before it is written (``graftlab export``); with
  ``quantize="int8"`` or ``"auto"`` its int8 variant (:mod:`graftlab.deploy.quantize`).
- :mod:`graftlab.deploy.batch`: prediction over a folder, a table or stdin, streamed in
  chunks to CSV or JSONL (``graftlab predict``).
- :mod:`graftlab.deploy.serve`: the model behind HTTP (FastAPI + uvicorn), concurrent requests
  batched by :mod:`graftlab.deploy.batcher`, every request checked by
  :mod:`graftlab.deploy.payload` first (``graftlab serve``).
"""

from typing import Any

__all__ = ["Predictor"]


def __getattr__(name: str) -> Any:  # lazy: importing the package loads neither torch nor onnx
    if name == "Predictor":
        from graftlab.deploy.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'graftlab.deploy' has no attribute {name!r}")
