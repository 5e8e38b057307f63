"""Loading a configuration: YAML, dotted overrides, errors that name the key and its range."""

from __future__ import annotations

import math
import re
from numbers import Integral, Real
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from graftlab.config.schema import FitConfig
from graftlab.errors import ConfigError, closest



# what a missing required key looks like, for its hint
EXAMPLES = {"path": "mnist", "source": "mnist", "target": "mnist_m", "pool":
            "mnist+fashion_mnist+digits", "space": "space.yaml", "tasks": "..."}

def _section(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    annotation = model.model_fields[key].annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) \
        else None


def _fields(model: type[BaseModel], path: list[str]) -> list[str]:
    """The valid keys at ``path`` (for 'did you mean' hints)."""
    for key in path:
        sub = _section(model, key) if key in model.model_fields else None
        if sub is None:
            return []
        model = sub
    return list(model.model_fields)


def _field(model: type[BaseModel], path: list[str]):
    for key in path[:-1]:
        model = _section(model, key)
    return model.model_fields[path[-1]]


def dotted_fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every value field of ``model``, sections opened: ``data.path``, ``train.epochs`` ..."""
    found = []
    for name in model.model_fields:
        section = _section(model, name)
        found += dotted_fields(section, f"{prefix}{name}.") if section else [prefix + name]
    return found


def _unknown_key(path: list[str], schema: type[BaseModel] = FitConfig) -> ConfigError:
    """Names the valid keys where ``path`` points and the likely one: the key of that name in
    another section (``text_column``, ``train.backbone``: ``data.text_column``,
    ``model.backbone``), else the closest there (``train.epoch``: ``train.epochs``)."""
    known = _fields(schema, path[:-1])
    dotted = ".".join(path)
    guess = closest(path[-1], known)
    where = ".".join(path[:-1]) or "the top level"
    elsewhere = [k for k in dotted_fields(schema) if k.rsplit(".", 1)[-1] == path[-1]]
    hint = (f" Did you mean {' or '.join(repr(k) for k in elsewhere)}?" if elsewhere else
            f" Did you mean {'.'.join([*path[:-1], guess])!r}?" if guess else "")
    return ConfigError(
        f"config key {dotted!r} does not exist. Valid keys in {where}: {', '.join(known)}."
        + hint)


def _set(raw: dict, key: str, value: Any, schema: type[BaseModel]) -> None:
    path = key.strip().split(".")
    node = raw
    for depth, part in enumerate(path[:-1]):
        if part not in _fields(schema, path[:depth]):
            raise _unknown_key(path[:depth + 1], schema)
        if "dict" in str(_field(schema, path[:depth + 1]).annotation):
            # a mapping setting (model.head_options): the rest of the key is its own keys
            if node.get(part) is None:  # "head_options:" left empty in the file
                node[part] = {}
            inner = node[part]
            for sub in path[depth + 1:-1]:
                inner = inner.setdefault(sub, {})
            inner[path[-1]] = value
            return
        if node.get(part) is None:  # a section whose keys are all commented out
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"config key {'.'.join(path[:depth + 1])!r} is a section; "
                              "give it a mapping, not a value.")
    if path[-1] not in _fields(schema, path[:-1]):
        raise _unknown_key(path, schema)
    node[path[-1]] = value


def apply_override(raw: dict, override: str, schema: type[BaseModel] = FitConfig) -> None:
    """``a.b=value`` (value parsed as YAML) into the nested dict ``raw``."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} is not KEY=VALUE.",
                          hint="write e.g. train.epochs=3 or model.backbone=minilm_l6.")
    key, value = override.split("=", 1)
    _set(raw, key, yaml.safe_load(value) if value else None, schema)


def _constraints(field) -> list:
    """The constraint objects of a field, also inside ``X | None``."""
    found = list(field.metadata)
    for arg in get_args(field.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            found += list(getattr(meta, "metadata", [meta]))
    return found


def _bounds(field) -> str:
    """A field's allowed range in words: 'an integer >= 1', 'a number > 0 and < 1'."""
    parts = []
    for item in _constraints(field):
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(item, attr, None) is not None:
                parts.append(f"{sign} {getattr(item, attr)}")
    kind = "an integer" if "int" in str(field.annotation) else "a number"
    return f"{kind} {' and '.join(parts)}" if parts else kind


def check_ranges(section: type[BaseModel], values: dict[str, Any]) -> None:
    """Each of ``values`` that ``section`` gives a range (its fields' types: ``Positive``,
    ``Rate`` ...), checked against that range, for settings that arrive without the schema
    (an estimator's parameters in Python): the first outside it is a ConfigError naming it,
    worded as the command line words it ('lr must be a number > 0, got 0.0.')."""
    for name, value in values.items():
        field = section.model_fields.get(name)
        limits = _constraints(field) if field is not None else []
        if not limits or value is None:
            continue
        integer = "int" in str(field.annotation)
        ok = not isinstance(value, bool) and (
            isinstance(value, Integral) if integer else
            isinstance(value, Real) and math.isfinite(value))
        for item in limits if ok else ():
            for attr, holds in (("gt", value.__gt__), ("ge", value.__ge__),
                                ("lt", value.__lt__), ("le", value.__le__)):
                bound = getattr(item, attr, None)
                ok = ok and (bound is None or bool(holds(bound)))
        if not ok:
            raise ConfigError(f"{name} must be {_bounds(field)}, got {value!r}.")


class _UniqueKeys(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last silently:
    a second ``path:`` would train on the wrong file)."""


def _unique_mapping(loader: _UniqueKeys, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice (lines {seen[key] + 1} and "
                f"{key_node.start_mark.line + 1}); keep one", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml_file(path: str | Path, what: str, hint: str) -> Any:
    """A YAML file's content ({} when empty); a missing file, invalid YAML or a key given
    twice is a ConfigError naming it as ``what`` (e.g. "config file"), with ``hint`` for a
    missing one."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist.", hint=hint)
    try:
        return yaml.load(path.read_text(), Loader=_UniqueKeys) or {}  # noqa: S506 (safe)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None


def _read_yaml(path: str | Path) -> dict:
    raw = read_yaml_file(path, "config file", "write one (see the command's --help) or pass "
                         "options and overrides only, e.g. data.path=vader:movies.")
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping (sections data, model, "
                          "train).")
    return raw


def _empty_is_empty(raw: dict, schema: type[BaseModel]) -> None:
    """A section or mapping setting left empty in the file ("train:" with every key commented
    out, "head_options:") is an empty mapping, not None; in place, sections opened."""
    for key, value in list(raw.items()):
        if key not in schema.model_fields:
            continue
        section = _section(schema, key)
        if value is None and (section is not None or
                              "dict" in str(schema.model_fields[key].annotation)):
            raw[key] = {}
        elif section is not None and isinstance(value, dict):
            _empty_is_empty(value, section)


def load_config(path: str | Path | None, overrides: list[str] = (), *,
                schema: type[BaseModel] = FitConfig, options: dict[str, Any] | None = None,
                flags: dict[str, str] | None = None) -> Any:
    """Read YAML (if given), then ``options`` (dotted key -> value: the command-line options
    given), then ``overrides`` (``key=value``), and validate against ``schema``. Errors name
    the key (and ``flags[key]``, the option that set it), what is allowed, and the fix."""
    raw: dict = _read_yaml(path) if path is not None else {}
    _empty_is_empty(raw, schema)
    given: set[str] = set()
    for key, value in (options or {}).items():
        _set(raw, key, value, schema)
        given.add(key)
    for override in overrides:
        apply_override(raw, override, schema)
        given.discard(override.split("=", 1)[0].strip())
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = [str(p) for p in error["loc"] if not isinstance(p, int)]
        if error["type"] == "extra_forbidden":
            raise _unknown_key(loc, schema) from None
        while len(loc) > 1 and loc[-1] not in _fields(schema, loc[:-1]):
            loc.pop()  # a union's member name, not a key
        dotted = ".".join(loc)
        flag = (flags or {}).get(dotted) if dotted in given else None
        name = f"{flag} ({dotted})" if flag else f"config key {dotted!r}"
        if error["type"] == "missing":
            section = dotted if _fields(schema, loc) else None
            while _fields(schema, loc):  # a whole section: name its first required key
                model = schema
                for key in loc:
                    model = _section(model, key)
                loc = [*loc, next(k for k, f in model.model_fields.items() if f.is_required())]
            dotted = ".".join(loc)
            flag = (flags or {}).get(dotted)
            raise ConfigError((f"config section {section!r} is required, with at least "
                               if section else "") + f"config key {dotted!r}"
                              + ("." if section else " is required."),
                              hint=(f"give {flag}, or " if flag else "") +
                              f"add it to the config or as an override, e.g. {dotted}="
                              f"{EXAMPLES.get(loc[-1], '...')}."
                              ) from None
        if error["type"] in ("greater_than", "greater_than_equal", "less_than",
                             "less_than_equal"):
            raise ConfigError(f"{name} must be {_bounds(_field(schema, loc))}, got "
                              f"{error.get('input')!r}.") from None
        guess = None
        if error["type"] == "literal_error" and isinstance(error.get("input"), str):
            guess = closest(error["input"], re.findall(r"'([^']*)'", error["ctx"]["expected"]))
        raise ConfigError(f"{name}: {error['msg']} (got {error.get('input')!r})."
                          + (f" Did you mean {guess!r}?" if guess else "")) from None
