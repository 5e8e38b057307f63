"""The on-disk feature cache: hits cost no forward pass, corruption is caught, runs resume."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from graftlab.errors import ConfigError
from graftlab.features import FeatureCache, extract_features, extract_layers
from graftlab.paths import feature_cache_dir


@pytest.fixture
def count_forward(monkeypatch):
    """Count (and optionally break) a backbone's forward_layers calls, on that instance only.

    Installing again on the same backbone starts a fresh count over the original method.
    """
    originals = {}

    def install(backbone, fail_on: int | None = None):
        calls = {"n": 0}
        original = originals.setdefault(id(backbone), backbone.forward_layers)

        def counted(batch, layers):
            calls["n"] += 1
            if fail_on is not None and calls["n"] == fail_on:
                raise KeyboardInterrupt("simulated interruption")
            return original(batch, layers)

        monkeypatch.setattr(backbone, "forward_layers", counted)
        return calls

    return install


def test_second_extraction_is_a_memory_mapped_hit(tiny_backbone, images, count_forward):
    data = images(10)
    calls = count_forward(tiny_backbone)
    first = extract_features(tiny_backbone, data, batch_size=4)
    assert calls["n"] == 3
    second = extract_features(tiny_backbone, data, batch_size=4)
    assert calls["n"] == 3  # no forward pass on a hit
    np.testing.assert_array_equal(first, second)
    assert isinstance(second, np.memmap) and not second.flags.writeable
    uncached = extract_features(tiny_backbone, data, cache=False)
    np.testing.assert_allclose(second, uncached, rtol=1e-6, atol=1e-6)


def test_hit_with_the_real_efficientnet(lite0, images, count_forward):
    data = images(6, size=28, seed=3)
    calls = count_forward(lite0)
    first = np.array(extract_features(lite0, data))
    n = calls["n"]
    assert n >= 1 and first.shape == (6, 1280)
    np.testing.assert_array_equal(extract_features(lite0, data), first)
    assert calls["n"] == n


def test_hit_with_the_real_text_encoder(minilm, count_forward):
    texts = ["good film", "bad film", "a film"]
    calls = count_forward(minilm)
    first = np.array(extract_features(minilm, texts, layer="layer.3"))
    n = calls["n"]  # the batch, and one sample's forward that sizes batches to the budget
    assert 1 <= n <= 2
    np.testing.assert_array_equal(extract_features(minilm, texts, layer="layer.3"), first)
    assert calls["n"] == n  # no forward pass on a hit
    other = extract_features(minilm, texts[:2] + ["a movie"], layer="layer.3")
    assert calls["n"] > n and not np.allclose(other[2], first[2])
    assert len(FeatureCache().entries()) == 2


def test_cache_lives_under_graftlab_cache(tiny_backbone, images, tmp_path):
    extract_features(tiny_backbone, images(3))
    assert feature_cache_dir() == tmp_path / "graftlab-cache"
    assert len(FeatureCache().entries()) == 1
    explicit = tmp_path / "elsewhere"
    extract_features(tiny_backbone, images(3), cache_dir=str(explicit))
    assert len(FeatureCache(explicit).entries()) == 1


def test_no_cache_writes_nothing(tiny_backbone, images, tmp_path):
    feats = extract_features(tiny_backbone, images(3), cache=False)
    assert not isinstance(feats, np.memmap) and feats.shape == (3, 16)
    assert not (tmp_path / "graftlab-cache").exists()


def test_corrupt_features_are_detected_and_rebuilt(tiny_backbone, images, count_forward, caplog):
    data = images(8)
    good = np.array(extract_features(tiny_backbone, data))
    (entry,) = FeatureCache().entries()
    path = FeatureCache().root / entry["id"] / "features.npy"
    raw = bytearray(path.read_bytes())
    raw[-16:] = bytes(b ^ 0xFF for b in raw[-16:])  # flip the last float values
    path.write_bytes(bytes(raw))
    assert not np.array_equal(np.load(path), good)
    calls = count_forward(tiny_backbone)
    with caplog.at_level(logging.WARNING, logger="graftlab"):
        rebuilt = extract_features(tiny_backbone, data)
    assert "corrupt" in caplog.text and entry["id"] in caplog.text
    assert calls["n"] >= 1
    np.testing.assert_array_equal(rebuilt, good)
    np.testing.assert_array_equal(np.load(path), good)  # the entry on disk is good again


def test_truncated_features_file_is_rebuilt(tiny_backbone, images, caplog):
    data = images(8)
    good = np.array(extract_features(tiny_backbone, data))
    (entry,) = FeatureCache().entries()
    path = FeatureCache().root / entry["id"] / "features.npy"
    path.write_bytes(path.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="graftlab"):
        np.testing.assert_array_equal(extract_features(tiny_backbone, data), good)
    assert "corrupt" in caplog.text


def test_interrupted_run_resumes_at_the_first_missing_chunk(tiny_backbone, images,
                                                            count_forward):
    data = images(10)
    expected = extract_features(tiny_backbone, data, cache=False)
    calls = count_forward(tiny_backbone, fail_on=2)  # dies in the second of three chunks
    with pytest.raises(KeyboardInterrupt):
        extract_features(tiny_backbone, data, chunk_size=4, batch_size=4)
    assert FeatureCache().entries() == []  # a half-written entry is never listed
    (folder,) = [p for p in FeatureCache().root.iterdir() if p.is_dir()]
    assert sorted(p.name for p in (folder / "partial").iterdir()) == ["rows-000000000-000000004.npy"]
    assert not (folder / "meta.json").exists()

    calls = count_forward(tiny_backbone)
    resumed = extract_features(tiny_backbone, data, chunk_size=4, batch_size=4)
    assert calls["n"] == 2  # only chunks 1 and 2 were computed
    np.testing.assert_allclose(resumed, expected, rtol=1e-6, atol=1e-6)
    assert not (folder / "partial").exists()
    assert json.loads((folder / "meta.json").read_text())["shape"] == [10, 16]


def test_resume_with_another_chunk_size_gives_the_right_rows(tiny_backbone, images,
                                                             count_forward):
    data = images(10)
    expected = extract_features(tiny_backbone, data, cache=False)
    count_forward(tiny_backbone, fail_on=3)  # chunks 0 (rows 0-3) and 1 (rows 4-7) saved
    with pytest.raises(KeyboardInterrupt):
        extract_features(tiny_backbone, data, chunk_size=4, batch_size=4)
    count_forward(tiny_backbone)
    resumed = extract_features(tiny_backbone, data, chunk_size=6, batch_size=6)
    np.testing.assert_allclose(resumed, expected, rtol=1e-6, atol=1e-6)


def test_entries_and_clear(tiny_backbone, images):
    store = FeatureCache()
    assert store.entries() == [] and store.clear() == 0 and store.size_bytes() == 0
    out = extract_layers(tiny_backbone, images(5), layers=["0", "output"], pooling="max")
    entries = store.entries()
    assert sorted(e["layer"] for e in entries) == ["0", "output"]
    for e in entries:
        assert e["backbone"] == "tiny" and e["pooling"] == "max" and e["modality"] == "image"
        assert e["shape"] == list(out[e["layer"]].shape)
        assert len(e["sha256"]) == 64 and e["bytes"] > 0
    assert store.size_bytes() >= sum(e["bytes"] for e in entries)
    assert store.clear() == 2
    assert store.entries() == [] and store.size_bytes() == 0


def test_each_determinant_gets_its_own_entry(tiny_backbone, make_net, images):
    from graftlab.backbones import wrap_module

    data = images(4)
    base = np.array(extract_features(tiny_backbone, data, layer="2"))
    variants = [
        extract_features(tiny_backbone, data, layer="0"),
        extract_features(tiny_backbone, data, layer="2", pooling="max"),
        extract_features(tiny_backbone, images(4, seed=9), layer="2"),
        extract_features(wrap_module(make_net(seed=5), name="tiny"), data, layer="2"),
    ]
    assert len(FeatureCache().entries()) == 5
    for feats in variants:
        assert feats.shape != base.shape or not np.allclose(feats, base)
    np.testing.assert_array_equal(extract_features(tiny_backbone, data, layer="2"), base)
    assert len(FeatureCache().entries()) == 5


def test_several_layers_in_one_pass(tiny_backbone, images, count_forward):
    data = images(6)
    calls = count_forward(tiny_backbone)
    both = extract_layers(tiny_backbone, data, layers=["0", "2"], batch_size=3)
    assert calls["n"] == 2 and list(both) == ["0", "2"]
    assert both["0"].shape == (6, 8) and both["2"].shape == (6, 16)
    for layer in ("0", "2"):
        np.testing.assert_array_equal(extract_features(tiny_backbone, data, layer=layer),
                                      both[layer])
    assert calls["n"] == 2  # the single-layer requests were hits


def test_progress_reports_every_sample(tiny_backbone, images):
    seen = []
    extract_features(tiny_backbone, images(7), batch_size=3, progress=lambda d, t: seen.append(
        (d, t)))
    assert seen[-1] == (7, 7) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    seen.clear()
    extract_features(tiny_backbone, images(7), progress=lambda d, t: seen.append((d, t)))
    assert seen == [(7, 7)]  # a hit reports completion at once


def test_unwritable_cache_folder_fails_first_and_cleanly(tiny_backbone, images, tmp_path,
                                                          count_forward):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    target = blocker / "cache"
    calls = count_forward(tiny_backbone)
    with pytest.raises(ConfigError) as err:
        extract_features(tiny_backbone, images(3), cache_dir=str(target))
    message = str(err.value)
    assert f"feature cache folder {target} is not writable" in message
    assert "GRAFTLAB_CACHE" in message and "cache=False" in message and "--no-cache" in message
    assert calls["n"] == 0  # failed before any work
    assert blocker.read_text() == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_unwritable_cache_from_the_environment(tiny_backbone, images, tmp_path, monkeypatch):
    (tmp_path / "file.txt").write_text("x")
    monkeypatch.setenv("GRAFTLAB_CACHE", str(tmp_path / "file.txt" / "cache"))
    with pytest.raises(ConfigError, match=r"file.txt/cache is not writable"):
        extract_features(tiny_backbone, images(3))
    assert extract_features(tiny_backbone, images(3), cache=False).shape == (3, 16)


def test_a_hit_by_name_never_builds_the_model(images, monkeypatch):
    """A registered backbone's cache key comes from its spec: a hit loads no weights."""
    import graftlab.features.extract as extract_module

    data = images(6)
    first = np.asarray(extract_features("efficientnet_lite0", data,
                                        backbone_options={"image_size": 32}))

    def no_build(*args, **kwargs):
        raise AssertionError("the model was built on a cache hit")

    monkeypatch.setattr(extract_module, "create_backbone", no_build)
    again = extract_features("efficientnet_lite0", data, backbone_options={"image_size": 32})
    np.testing.assert_array_equal(np.asarray(again), first)


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1", "minilm_l6"])
def test_description_matches_the_built_backbone(name):
    from graftlab.backbones import create_backbone
    from graftlab.backbones.registry import describe_backbone

    options = {"image_size": 64} if "efficientnet" in name else {"max_length": 64}
    described = describe_backbone(name, **options)
    built = create_backbone(name, **options)
    assert described.key == built.cache_key()
    assert described.layers == built.layer_names()
    assert (described.modality, described.default_pooling) == (built.modality,
                                                               built.default_pooling)


def test_a_ragged_entry_keeps_each_samples_rows_and_refuses_a_mismatched_pair(caplog):
    """Text activations: rows of different counts per sample, saved by chunk, joined once."""
    entry = FeatureCache().ragged_entry({"test": "ragged"})
    assert entry.load() is None and entry.load_chunk(0, 2) is None
    chunks = {(0, 2): (np.arange(10, dtype=np.float32).reshape(5, 2), np.array([2, 3])),
              (2, 3): (np.full((4, 2), 7, np.float32), np.array([4]))}
    for (a, b), chunk in chunks.items():
        entry.save_chunk(a, b, chunk)
    rows, lengths = entry.load_chunk(0, 2)
    np.testing.assert_array_equal(rows, chunks[0, 2][0])
    rows, lengths = entry.finalize(list(chunks), {"what": "test"})
    assert rows.shape == (9, 2) and lengths.tolist() == [2, 3, 4] and entry.complete
    np.testing.assert_array_equal(rows[5:], 7)
    assert [e["shape"] for e in FeatureCache().entries()] == [[9, 2]]  # listed once
    rows, lengths = entry.load()
    assert lengths.flags.writeable and lengths.tolist() == [2, 3, 4]
    # Lengths that no longer add up to the rows (a stale pair): the entry goes.
    bad = FeatureCache().ragged_entry({"test": "ragged"})
    bad.lengths.meta_path.unlink()  # unpublished, so that finalize writes the stale lengths
    bad.lengths.save_chunk(0, 3, np.array([1, 1, 1]))
    bad.lengths.finalize([(0, 3)], {})
    with caplog.at_level(logging.WARNING):
        assert bad.load() is None
    assert "corrupt (9 rows for 3 tokens)" in caplog.text
    assert FeatureCache().entries() == []


def test_a_second_process_finalizing_an_entry_another_finished_takes_that_one():
    """Workers extracting the same features at once (tune's): the second to finish loads
    what the first published instead of writing over it (or returning nothing)."""
    first, second = (FeatureCache().entry({"test": "race"}) for _ in range(2))
    first.save_chunk(0, 3, np.full((3, 2), 1.0, np.float32))
    np.testing.assert_array_equal(first.finalize([(0, 3)], {}), 1.0)
    # the second worker's chunk lands after the first published (and removed partial/)
    second.save_chunk(0, 3, np.full((3, 2), 2.0, np.float32))
    np.testing.assert_array_equal(second.finalize([(0, 3)], {}), 1.0)  # the published one


def test_clear_removes_cache_entries_and_nothing_else(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GRAFTLAB_CACHE", str(tmp_path))
    entry = FeatureCache().entry({"test": "clear"})
    entry.save_chunk(0, 1, np.zeros((1, 2), np.float32))
    entry.finalize([(0, 1)], {})
    (tmp_path / "my_project").mkdir()
    (tmp_path / "my_project" / "thesis.tex").write_text("keep")
    assert FeatureCache().clear() == 1
    assert (tmp_path / "my_project" / "thesis.tex").read_text() == "keep"
    assert "not feature cache entries: my_project" in caplog.text


def test_random_weights_are_drawn_once_per_extraction_and_keyed_by_themselves(
        tmp_path, monkeypatch):
    """A split served from its whole data set is extracted by the network drawn for the
    call (one draw, one cache entry, keyed by those weights, never by "random-init")."""
    from graftlab.backbones import create_backbone
    from graftlab.data import Domain
    from graftlab.features import extract_features

    monkeypatch.setenv("GRAFTLAB_CACHE", str(tmp_path))
    rng = np.random.default_rng(0)
    whole = Domain("d", "image", rng.integers(0, 255, (20, 32, 32, 3), dtype=np.uint8))
    extract_features("efficientnet_lite0", whole.subset(np.arange(0, 15)),
                     backbone_options={"image_size": 32, "pretrained": False})
    (entry,) = FeatureCache().entries()
    assert entry["key"]["backbone"]["weights"].startswith("random:")
    net = create_backbone("efficientnet_lite0", image_size=32, pretrained=False)
    a = extract_features(net, whole.subset(np.arange(0, 15)))
    b = extract_features(net, whole.subset(np.arange(5, 20)))
    np.testing.assert_array_equal(a[5:], b[:10])  # one network object: the same features
