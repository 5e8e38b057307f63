"""The average of several adapted models: one prediction from the mean of their class
probabilities (an ensemble of the adaptation methods of one run).

Over the stored benchmark runs (BENCHMARKS.md, "selection over subsets"), the average of the
five adapted models never lost to source-only, where any single label-free pick sometimes
does; it costs one forward pass of the trained part per member. ``graftlab adapt --keep
average`` keeps it instead of the selected method.

Saved as a folder: ``members/<method>/`` (each a saved Grafter) and ``average.json``, written
last, so a folder without it is an unfinished save.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from graftlab import _atomic
from graftlab.errors import ConfigError

FORMAT = "graftlab.average/1"


class AveragedModel:
    """Predict with the mean of the members' class probabilities (members share classes)."""

    def __init__(self, members: dict[str, Any]) -> None:
        if len(members) < 2:
            raise ConfigError(f"an average needs two models or more, got {len(members)}.",
                              hint="adapt with several methods, or keep the selected one.")
        classes = [np.asarray(m.classes_) for m in members.values()]
        if any(not np.array_equal(classes[0], c) for c in classes[1:]):
            raise ConfigError("the models to average predict different classes.",
                              hint="average models trained on the same source labels.")
        self.members, self.classes_ = dict(members), classes[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.mean([m.predict_proba(X) for m in self.members.values()], axis=0)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(-1)]

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        for name, model in self.members.items():
            model.save(folder / "members" / name)
        _atomic.write_json(folder / "average.json",
                           {"format": FORMAT, "members": list(self.members)})

    @classmethod
    def load(cls, folder: str | Path) -> AveragedModel:
        from graftlab.grafter import Grafter
        from graftlab.integrity import read_json
        from graftlab.saving import check_format

        folder = Path(folder)
        manifest = folder / "average.json"
        if not manifest.is_file():
            raise ConfigError(f"{folder} is not a saved average of models (no average.json).",
                              hint="a single saved model loads with graftlab.Grafter.load.")
        spec = read_json(manifest)
        check_format(spec, manifest, FORMAT)
        return cls({name: Grafter.load(folder / "members" / name) for name in spec["members"]})
