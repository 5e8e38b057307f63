"""Every registry keeps one contract: names listed, unknown names refused with the closest
suggestion, and each entry declares what the engine reads from it (no if/elif on names)."""

from __future__ import annotations

import pytest

from graftlab.backbones.registry import BACKBONES
from graftlab.data.bundled import DATASETS
from graftlab.errors import NotFoundError
from graftlab.evaluate.validators import VALIDATORS
from graftlab.heads.heads import HEADS, Head
from graftlab.methods import METHODS, Adaptation
from graftlab.train.strategies import STRATEGIES, Strategy

REGISTRIES = {"backbone": BACKBONES, "data set": DATASETS, "validator": VALIDATORS,
              "head": HEADS, "adaptation method": METHODS, "strategy": STRATEGIES}


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_unknown_names_are_refused_with_the_closest_one(kind):
    registry = REGISTRIES[kind]
    names = registry.names()
    assert names and len(set(names)) == len(names)
    name = max(names, key=len)
    typo = name[0] + name[2:]  # one letter dropped
    with pytest.raises(NotFoundError, match=f"(?s)unknown {kind} '{typo}'.*Did you mean "
                                            f"'{name}'"):
        registry.get(typo)


@pytest.mark.parametrize("name", STRATEGIES.names())
def test_each_strategy_declares_what_it_does(name):
    cls = STRATEGIES.get(name)
    assert issubclass(cls, Strategy) and cls.name == name and cls.trains
    assert isinstance(cls.options, dict) and isinstance(cls.moves_backbone, bool)
    assert not (cls.solved and cls.moves_backbone)  # a solved head reads frozen features
    cls(**cls.options)  # its declared defaults are accepted


@pytest.mark.parametrize("name", METHODS.names())
def test_each_method_declares_whether_it_aligns_features(name):
    cls = METHODS.get(name)
    assert issubclass(cls, Adaptation) and cls.name == name and isinstance(cls.aligns, bool)


@pytest.mark.parametrize("name", HEADS.names())
def test_each_head_declares_its_input(name):
    cls = HEADS.get(name)
    assert issubclass(cls, Head) and cls.input_kind in Head.expected_ndim
    assert isinstance(cls.linear, bool) and (not cls.linear or cls.input_kind == "pooled")
    assert cls.task in ("sample", "tokens") and (cls.task == "sample" or cls.input_kind == "tokens")


@pytest.mark.parametrize("name", VALIDATORS.names())
def test_each_validator_declares_what_it_needs(name):
    v = VALIDATORS.get(name)
    assert v.needs and v.description and (v.score is not None or v.needs == ("ensemble",))


@pytest.mark.parametrize("name", BACKBONES.names())
def test_each_backbone_spec_declares_fine_tuning_defaults(name):
    spec, builder = BACKBONES.get(name)
    assert spec.name == name and callable(builder)
    assert spec.lora_targets and 0 < spec.lr_backbone < 1 and spec.sha256


def test_validators_score_by_their_declarations():
    import numpy as np

    from graftlab.evaluate.validators import validate

    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), 20)
    out = validate(probs, rng.normal(size=(20, 4)))
    assert set(out) == {"entropy", "info_max", "snd"}  # no held-out source: no iwv
