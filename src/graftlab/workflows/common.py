"""Plumbing the workflows share: loading user data with the column options a table takes."""

from __future__ import annotations

from pathlib import Path

from graftlab.data import load_data
from graftlab.data.domain import Domain


def load_with_columns(data: str | Path, *, text_column: str = "text",
                      label_column: str | None = "label", target_column: str | None = None,
                      labelled: bool | None = True, skip_corrupt: bool = False) -> Domain:
    """load_data, with the column options only for a table (folders and bundled data sets take
    no such options and would refuse them). ``labelled`` and ``skip_corrupt`` as in
    :func:`graftlab.data.load_data`."""
    if Path(data).expanduser().is_file() or str(data).endswith((".csv", ".jsonl")):
        return load_data(str(data), text_column=text_column, label_column=label_column,
                         target_column=target_column, labelled=labelled)
    return load_data(str(data), labelled=labelled, skip_corrupt=skip_corrupt)
