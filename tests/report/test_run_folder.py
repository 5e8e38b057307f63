"""is_graftlab_run / not_a_run_error: --overwrite may only replace graftlab's own run folders."""

from __future__ import annotations

import json

import pytest

from graftlab.errors import ConfigError
from graftlab.report import is_graftlab_run, not_a_run_error


def _folder(tmp_path, content):
    folder = tmp_path / "run"
    folder.mkdir()
    if content is not None:
        text = content if isinstance(content, str) else json.dumps(content)
        (folder / "results.json").write_text(text)
    return folder


@pytest.mark.parametrize("fmt,kind", [("graftlab.compare/1", "compare"),
                                      ("graftlab.adapt/1", "adapt"),
                                      ("graftlab.adapt/2", None)])
def test_a_folder_graftlab_wrote_is_a_run(tmp_path, fmt, kind):
    folder = _folder(tmp_path, {"format": fmt, "status": "complete", "runs": []})
    assert is_graftlab_run(folder) and is_graftlab_run(str(folder), kind)


@pytest.mark.parametrize("content,why", [
    (None, "holds no results.json"),
    ("{not json", "cannot be read as JSON"),
    ([1, 2], 'no graftlab "format" field'),
    ({"accuracy": 0.9}, 'no graftlab "format" field'),
    ({"format": "mlflow/1"}, "format 'mlflow/1'"),
    ({"format": "graftlab.compare"}, "format 'graftlab.compare'"),
    ({"format": "graftlab.manifest/1x"}, "format 'graftlab.manifest/1x'"),
])
def test_any_other_results_json_is_refused_and_the_error_says_why(tmp_path, content, why):
    folder = _folder(tmp_path, content)
    assert not is_graftlab_run(folder)
    err = not_a_run_error(folder)
    assert isinstance(err, ConfigError)
    message = str(err)
    assert f"--overwrite refuses {folder}: it" in message and why in message
    assert "only replaces a run folder it wrote itself" in message
    assert "HINT: point --out at an empty or new folder" in message


def test_a_run_of_another_kind_is_refused_when_a_kind_is_asked(tmp_path):
    folder = _folder(tmp_path, {"format": "graftlab.adapt/1"})
    assert is_graftlab_run(folder) and not is_graftlab_run(folder, "compare")
    assert "holds a graftlab adapt run, not a compare run" in str(not_a_run_error(folder,
                                                                                  "compare"))


def test_a_missing_folder_is_not_a_run(tmp_path):
    assert not is_graftlab_run(tmp_path / "absent")


def test_overwrite_replaces_only_a_run_of_the_same_command(tmp_path):
    import json

    import pytest

    from graftlab.errors import ConfigError
    from graftlab.workflows.common import check_out_folder

    (tmp_path / "results.json").write_text(json.dumps({"format": "graftlab.advise/1"}))
    check_out_folder(tmp_path, tmp_path, True, "advise")  # an earlier advise: replaceable
    with pytest.raises(ConfigError, match="it holds a graftlab advise run, not a compare run"):
        check_out_folder(tmp_path, tmp_path, True, "compare")
