"""Every command reads its configuration the same way: a YAML file (optional), then the
command-line options that were given, then dotted overrides (``train.epochs=3``), validated by
the command's model in :mod:`graftlab.config` (unknown keys get a did-you-mean)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


from graftlab.config import load_config
from graftlab.errors import ConfigError


def split_words(words: list[str]) -> tuple[str | None, list[str], list[str]]:
    """Positional words -> (YAML config, ``key=value`` overrides, the rest)."""
    config, overrides, rest = None, [], []
    for word in words:
        if config is None and word.endswith((".yaml", ".yml")) and "=" not in word:
            config = word
        elif "=" in word and not Path(word).exists():
            overrides.append(word)
        else:
            rest.append(word)
    return config, overrides, rest


def configured(ctx: Any, schema: type, words: list[str] | None,
               keys: dict[str, str], *, positional: str | None = None,
               convert: dict[str, Callable[[Any], Any]] | None = None) -> Any:
    """The command's validated configuration. ``keys``: option parameter -> dotted key; only
    the options given on the command line override the YAML file. ``positional``: the dotted
    key a plain positional word (not YAML, not an override) sets, e.g. ``data.path``."""
    config, overrides, rest = split_words(list(words or []))
    given: dict[str, Any] = {}
    if rest:
        if positional is None or len(rest) > 1:
            raise ConfigError(f"unexpected argument(s) {' '.join(rest)}: give a YAML config "
                              "(.yaml), dotted overrides (key=value) and options.",
                              hint=f"see `graftlab {ctx.info_name} --help`.")
        given[positional] = rest[0]
    flags = {}
    for param in ctx.command.params:
        if param.name not in keys:
            continue
        flags[keys[param.name]] = param.opts[0]
        source = ctx.get_parameter_source(param.name)
        if source is None or source.name in ("DEFAULT", "DEFAULT_MAP"):
            continue  # not given: the file's value (or the model's default) stands
        value = ctx.params[param.name]
        value = str(value) if isinstance(value, Path) else value
        if convert and param.name in convert:
            value = convert[param.name](value)
        given[keys[param.name]] = value
    return load_config(config, overrides, schema=schema, options=given, flags=flags)
