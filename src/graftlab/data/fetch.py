"""Fetch data that ships inside a PyPI sdist into ``data_dir()``, checksummed, once.

VADER's human-rated ground truth (Hutto & Gilbert, ICWSM 2014) is inside the vaderSentiment
3.3.2 sdist: ``additional_resources/hutto_ICWSM_2014.tar.gz``. Fetching downloads the sdist with
pip, checks both archives against pinned sha256 sums and writes the four ``*_GroundTruth.txt``
files plus a manifest atomically. Loading reads only that folder and never the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from graftlab.integrity import sha256_file
from graftlab.errors import DataError
from graftlab.paths import data_dir

logger = logging.getLogger(__name__)

VADER_REQUIREMENT = "vaderSentiment==3.3.2"
VADER_SDIST_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_INNER_SHA256 = "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa"
VADER_FILES = {
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
    "tweets": "tweets_GroundTruth.txt",
}
MANIFEST = "manifest.json"


def sha256_of(data: bytes | Path) -> str:
    """Hex sha256 of bytes or of a file's contents."""
    return hashlib.sha256(data).hexdigest() if isinstance(data, bytes) else sha256_file(data)


def vader_dir() -> Path:
    """Where the fetched VADER ground truth lives."""
    return data_dir() / "vader"


def _refetch() -> str:
    return f"delete {str(vader_dir())!r} and re-run `graftlab fetch vader` (or `make data`)."


def _check(what: str, actual: str, expected: str | None) -> None:
    if expected is not None and actual != expected:
        raise DataError(
            f"{what} failed its checksum: expected sha256 {expected}, got {actual}.",
            hint=f"the download is corrupt or not the pinned release; {_refetch()}",
        )


def _is_valid(folder: Path, expected_sha256: str | None) -> bool:
    """True when ``folder`` holds every file with the checksum its manifest records."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if expected_sha256 is not None and manifest["sdist_sha256"] != expected_sha256:
            return False
        # the sdist is kept beside the files it held (tests rebuild from it offline); a folder
        # without it is fetched again
        sdist = folder / manifest["sdist"]
        return sha256_of(sdist) == manifest["sdist_sha256"] and all(
            sha256_of(folder / f) == manifest["files"][f] for f in VADER_FILES.values())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _download_sdist(folder: Path) -> Path:
    """``pip download`` the vaderSentiment sdist into ``folder``; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           VADER_REQUIREMENT, "-d", str(folder)]
    logger.info("downloading %s from PyPI", VADER_REQUIREMENT)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    except subprocess.TimeoutExpired:
        done = subprocess.CompletedProcess(cmd, 1, "", "pip download timed out after 900 s")
    found = sorted(folder.glob("vaderSentiment-3.3.2.tar.gz"))
    if done.returncode != 0 or not found:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise DataError(
            f"could not download the {VADER_REQUIREMENT} sdist with pip:\n{tail}",
            hint="check the connection to PyPI, or download vaderSentiment-3.3.2.tar.gz "
            "yourself and pass it: fetch_vader(sdist='path/to/vaderSentiment-3.3.2.tar.gz').",
        )
    return found[0]


def _member(archive: tarfile.TarFile, name: str, source: str) -> bytes:
    try:
        handle = archive.extractfile(name)
    except KeyError:
        handle = None
    if handle is None:
        raise DataError(f"{source} does not contain {name!r}.",
                        hint=f"it is not the vaderSentiment 3.3.2 sdist; {_refetch()}")
    return handle.read()


def _extract(sdist: Path, out: Path, inner_sha256: str | None) -> dict[str, str]:
    """Write the ground-truth files from ``sdist`` into ``out``; return name -> sha256."""
    try:
        with tarfile.open(sdist, "r:gz") as outer:
            inner = _member(outer, VADER_INNER, str(sdist))
        _check(f"{VADER_INNER} in {sdist}", sha256_of(inner), inner_sha256)
        sums = {}
        with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as archive:
            for file in VADER_FILES.values():
                data = _member(archive, f"hutto_ICWSM_2014/{file}", VADER_INNER)
                (out / file).write_bytes(data)
                sums[file] = sha256_of(data)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"cannot extract the VADER files from {str(sdist)!r}: {e}.",
                        hint=_refetch()) from None
    return sums


def _install(staged: Path, target: Path) -> None:
    """Swap ``staged`` in as ``target`` (an existing ``target`` is replaced)."""
    old = target.with_name(f".{target.name}-old-{os.getpid()}")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def fetch_vader(
    force: bool = False,
    *,
    sdist: str | Path | None = None,
    expected_sha256: str | None = VADER_SDIST_SHA256,
    expected_inner_sha256: str | None = VADER_INNER_SHA256,
) -> Path:
    """Fetch VADER's four ground-truth files into ``data_dir()/"vader"``; return that folder.

    Does nothing when the folder already holds valid files (unless ``force``). ``sdist`` uses a
    local copy of the sdist instead of ``pip download``. The expected checksums pin the release;
    tests of a hand-made archive pass its own sums (None skips a check).
    """
    target = vader_dir()
    if not force and _is_valid(target, expected_sha256):
        logger.info("VADER data already fetched in %s", target)
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=".vader-", dir=target.parent))
    except OSError as e:
        raise DataError(f"cannot write to the data folder {str(target.parent)!r}: {e}.",
                        hint="set GRAFTLAB_DATA (or GRAFTLAB_HOME) to a writable folder.") from None
    try:
        if sdist is None:
            sdist_path = _download_sdist(staged / "download")
        else:
            sdist_path = Path(sdist).expanduser()
            if not sdist_path.is_file():
                raise DataError(f"no such sdist file: {str(sdist_path)!r}.",
                                hint="pass the path of vaderSentiment-3.3.2.tar.gz, or leave "
                                "sdist=None to download it from PyPI.")
        actual = sha256_of(sdist_path)
        _check(f"the sdist {sdist_path.name}", actual, expected_sha256)
        out = staged / "vader"
        out.mkdir()
        sums = _extract(sdist_path, out, expected_inner_sha256)
        shutil.copyfile(sdist_path, out / sdist_path.name)
        manifest = {"source": VADER_REQUIREMENT, "sdist": sdist_path.name,
                    "sdist_sha256": actual, "files": sums}
        (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _install(out, target)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    logger.info("fetched VADER ground truth into %s", target)
    return target


def vader_file(domain: str) -> Path:
    """The fetched ground-truth file of ``domain``, checked against the manifest (no network)."""
    folder = vader_dir()
    path = folder / VADER_FILES[domain]
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        expected = manifest["files"][path.name]
    except (OSError, ValueError, KeyError, TypeError):
        raise DataError(
            f"the VADER data set is not fetched: no valid {str(folder / MANIFEST)!r}.",
            hint="run `graftlab fetch vader` (or `make data`) once; it downloads the "
            "vaderSentiment 3.3.2 sdist from PyPI. Loading never uses the network.",
        ) from None
    if not path.is_file():
        raise DataError(f"VADER file {str(path)!r} is missing.", hint=_refetch())
    _check(f"VADER file {str(path)!r}", sha256_of(path), expected)
    return path
