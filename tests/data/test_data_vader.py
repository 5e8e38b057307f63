"""VADER: fetching from an sdist (a small fake one, offline), checksums, and parsing."""

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from graftlab import paths
from graftlab.data import fetch as fetch_mod
from graftlab.data import fetch_vader, load_dataset
from graftlab.data.fetch import VADER_FILES, VADER_SDIST_SHA256, vader_dir
from graftlab.errors import DataError

# `make data` (graftlab fetch vader) keeps the sdist beside the files it extracted
REAL_SDIST = paths.data_dir() / "vader" / "vaderSentiment-3.3.2.tar.gz"
REAL_SIZES = {"movies": 10072, "amazon": 2985, "nyt": 2970, "tweets": 3432}
ROWS = [("1", "2.5", "Great film"), ("2", "-1.2", "Awful\tplot"), ("3", "0.1", "meh"),
        ("4", "0.5", "ok-ish caf\u00e9"), ("5", "-0.5", "slightly bad"), ("6", "0.49", "so-so")]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _targz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _fake_sdist(folder: Path, rows=ROWS, drop: str | None = None) -> tuple[Path, str, str]:
    """An sdist laid out like vaderSentiment 3.3.2; returns (path, its sha256, inner sha256)."""
    text = "\r\n".join("\t".join(r) for r in rows).encode("utf-8")
    inner = _targz({f"hutto_ICWSM_2014/{f}": text for f in VADER_FILES.values() if f != drop})
    path = folder / "vaderSentiment-3.3.2.tar.gz"
    path.write_bytes(_targz({fetch_mod.VADER_INNER: inner, "vaderSentiment-3.3.2/setup.py": b""}))
    return path, _sha(path.read_bytes()), _sha(inner)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFTLAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRAFTLAB_DATA", str(tmp_path / "home" / "data"))
    return tmp_path / "home" / "data"


def _fetch_fake(tmp_path, **kw):
    sdist, sha, inner = _fake_sdist(tmp_path, **kw)
    return fetch_vader(sdist=sdist, expected_sha256=sha, expected_inner_sha256=inner)


def test_fetch_writes_files_and_manifest(home, tmp_path):
    folder = _fetch_fake(tmp_path)
    assert folder == home / "vader" == vader_dir()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(p.name for p in folder.iterdir()) == sorted([*VADER_FILES.values(),
                                                               "manifest.json", manifest["sdist"]])
    assert fetch_mod.sha256_of(folder / manifest["sdist"]) == manifest["sdist_sha256"]
    assert set(manifest["files"]) == set(VADER_FILES.values())
    assert [p.name for p in home.iterdir()] == ["vader"]  # no staging folders left behind


def test_fetch_again_is_a_no_op_unless_forced(home, tmp_path, monkeypatch):
    sdist, sha, inner = _fake_sdist(tmp_path)
    fetch_vader(sdist=sdist, expected_sha256=sha, expected_inner_sha256=inner)

    def boom(*a, **k):
        raise AssertionError("re-extracted")

    monkeypatch.setattr(fetch_mod, "_extract", boom)
    monkeypatch.setattr(subprocess, "run", boom)
    fetch_vader(expected_sha256=sha)  # valid already: no download, no extraction
    with pytest.raises(AssertionError, match="re-extracted"):
        fetch_vader(force=True, sdist=sdist, expected_sha256=sha, expected_inner_sha256=inner)
    assert fetch_mod._is_valid(vader_dir(), sha)  # a failed refetch leaves the old data
    assert [p.name for p in home.iterdir()] == ["vader"]


def test_fetch_refreshes_damaged_data(home, tmp_path):
    sdist, sha, inner = _fake_sdist(tmp_path)
    folder = fetch_vader(sdist=sdist, expected_sha256=sha, expected_inner_sha256=inner)
    (folder / VADER_FILES["nyt"]).write_text("tampered")
    fetch_vader(sdist=sdist, expected_sha256=sha, expected_inner_sha256=inner)
    assert len(load_dataset("vader:nyt")) == 4
    assert sorted(p.name for p in home.iterdir()) == ["vader"]


def test_sdist_checksum_mismatch_names_both_sums_and_the_fix(home, tmp_path):
    sdist, sha, _ = _fake_sdist(tmp_path)
    with pytest.raises(DataError, match=rf"expected sha256 {VADER_SDIST_SHA256}, got {sha}"
                                        r"(.|\n)*re-run `graftlab fetch vader`") as err:
        fetch_vader(sdist=sdist)
    assert "delete" in str(err.value)
    assert not vader_dir().exists() and list(home.iterdir()) == []


def test_inner_checksum_mismatch(home, tmp_path):
    sdist, sha, inner = _fake_sdist(tmp_path)
    with pytest.raises(DataError, match=rf"hutto_ICWSM_2014.tar.gz in .* failed its checksum: "
                                        rf"expected sha256 {fetch_mod.VADER_INNER_SHA256}, "
                                        rf"got {inner}"):
        fetch_vader(sdist=sdist, expected_sha256=sha)


def test_sdist_missing_a_file(home, tmp_path):
    sdist, sha, inner = _fake_sdist(tmp_path, drop=VADER_FILES["tweets"])
    with pytest.raises(DataError, match=r"does not contain 'hutto_ICWSM_2014/tweets_GroundTruth"):
        fetch_vader(sdist=sdist, expected_sha256=sha, expected_inner_sha256=inner)
    assert not vader_dir().exists()


def test_not_an_archive(home, tmp_path):
    bad = tmp_path / "vaderSentiment-3.3.2.tar.gz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(DataError, match=r"cannot extract the VADER files from .*vaderSentiment"):
        fetch_vader(sdist=bad, expected_sha256=None)


def test_unwritable_data_folder(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("GRAFTLAB_DATA", str(tmp_path / "file" / "data"))
    with pytest.raises(DataError, match=r"cannot write to the data folder(.|\n)*GRAFTLAB_DATA"):
        fetch_vader(sdist=tmp_path / "whatever.tar.gz")


def test_missing_sdist_path(home, tmp_path):
    with pytest.raises(DataError, match=r"no such sdist file: .*nope.tar.gz"):
        fetch_vader(sdist=tmp_path / "nope.tar.gz")


def test_download_runs_pinned_pip(home, tmp_path, monkeypatch):
    sdist, sha, inner = _fake_sdist(tmp_path)
    calls = []

    def fake_pip(cmd, **kw):
        calls.append(cmd)
        dest = Path(cmd[cmd.index("-d") + 1])
        dest.mkdir(parents=True)
        shutil.copy(sdist, dest)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    fetch_vader(expected_sha256=sha, expected_inner_sha256=inner)
    assert calls[0][1:9] == ["-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                             "vaderSentiment==3.3.2", "-d"]
    assert len(load_dataset("vader:movies")) == 4


def test_download_failure_explains(home, monkeypatch):
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 1, "", "ERROR: Could not find a version (network unreachable)"))
    with pytest.raises(DataError, match=r"could not download(.|\n)*network unreachable"
                                        r"(.|\n)*fetch_vader\(sdist="):
        fetch_vader()
    assert list(home.iterdir()) == []


def test_load_before_fetch_says_how(home):
    with pytest.raises(DataError, match=r"not fetched(.|\n)*`graftlab fetch vader` \(or "
                                        r"`make data`\)"):
        load_dataset("vader:tweets")


def test_load_binary_drops_the_middle_and_keeps_ratings(home, tmp_path):
    _fetch_fake(tmp_path)
    d = load_dataset("vader", domain="amazon")
    assert d.name == "vader:amazon" and d.modality == "text"
    assert d.inputs == ["Great film", "Awful\tplot", "ok-ish caf\u00e9", "slightly bad"]
    assert d.classes == ["negative", "positive"] and d.labels.tolist() == [1, 0, 1, 0]
    np.testing.assert_allclose(d.targets, [2.5, -1.2, 0.5, -0.5])
    assert d.meta["ids"] == ["1", "2", "4", "5"]


def test_load_all_rows_for_regression(home, tmp_path):
    _fetch_fake(tmp_path)
    d = load_dataset("vader:movies", binary=False)
    assert len(d) == 6 and d.labels is None and d.classes == []
    assert d.targets.shape == (6,)


def test_load_checks_the_file_checksum(home, tmp_path):
    folder = _fetch_fake(tmp_path)
    (folder / VADER_FILES["movies"]).write_text("1\t1.0\tchanged\r\n")
    with pytest.raises(DataError, match=r"movieReviewSnippets_GroundTruth.txt' failed its "
                                        r"checksum(.|\n)*graftlab fetch vader"):
        load_dataset("vader:movies")


def test_load_malformed_line_names_it(home, tmp_path):
    _fetch_fake(tmp_path, rows=[*ROWS[:2], ("7", "very good")])
    with pytest.raises(DataError, match=r"line 3 of .* is not 'id<TAB>rating<TAB>text'"):
        load_dataset("vader:nyt")


@pytest.mark.skipif(not REAL_SDIST.is_file(), reason=f"no {REAL_SDIST}: run `make data` "
                    "(graftlab fetch vader) first")
def test_fetch_from_local_copy_of_the_real_sdist(home):
    fetch_vader(sdist=REAL_SDIST)  # the real pins
    assert {d: len(load_dataset("vader", domain=d)) for d in REAL_SIZES} == REAL_SIZES


def test_real_fetched_data_sizes():
    """Over the data `make data` fetched (skipped when it has not been fetched)."""
    if not fetch_mod._is_valid(vader_dir(), VADER_SDIST_SHA256):
        pytest.skip(f"VADER not fetched into {vader_dir()} (run `graftlab fetch vader`)")
    for domain, size in REAL_SIZES.items():
        d = load_dataset(f"vader:{domain}")
        assert len(d) == size
        assert ((d.targets >= 0.5) == (d.labels == 1)).all() and (abs(d.targets) >= 0.5).all()
    assert len(load_dataset("vader:movies", binary=False)) == 10605
