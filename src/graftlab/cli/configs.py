"""Every command reads its configuration the same way: a YAML file (optional), then the
command-line options that were given, then dotted overrides (``train.epochs=3``), validated by
the command's model in :mod:`graftlab.config` (unknown keys get a did-you-mean)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from graftlab.config import load_config
from graftlab.config.loading import dotted_fields
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


def option_keys(schema: type[BaseModel], names: list[str],
                renames: dict[str, str] | None = None) -> dict[str, str]:
    """Option parameter name -> the dotted config key it sets: ``renames[name]`` where given,
    else the one field of ``schema`` (at any depth) of the same name, e.g. ``epochs`` ->
    ``train.epochs``. A name that matches no field, or several, must be renamed."""
    fields: dict[str, list[str]] = {}
    for dotted in dotted_fields(schema):
        fields.setdefault(dotted.rsplit(".", 1)[-1], []).append(dotted)
    keys = {}
    for name in names:
        found = [renames[name]] if renames and name in renames else fields.get(name, [])
        if len(found) != 1:
            raise TypeError(f"option {name!r} sets {' or '.join(found) or 'no config key'} of "
                            f"{schema.__name__}; name its key in renames=")
        keys[name] = found[0]
    return keys


def configured(ctx: Any, schema: type[BaseModel], words: list[str] | None, *,
               renames: dict[str, str] | None = None, positional: str | None = None,
               convert: dict[str, Callable[[Any], Any]] | None = None) -> Any:
    """The command's validated configuration. Each option sets the config key of its name
    (see :func:`option_keys`; ``renames``: option parameter -> dotted key where they differ);
    only the options given on the command line override the YAML file. ``positional``: the
    dotted key a plain positional word (not YAML, not an override) sets, e.g. ``data.path``."""
    config, overrides, rest = split_words(list(words or []))
    given: dict[str, Any] = {}
    options = [param for param in ctx.command.params if param.param_type_name == "option"]
    keys = option_keys(schema, [param.name for param in options], renames)
    flags = {keys[param.name]: param.opts[0] for param in options}
    if rest:
        if positional is None or len(rest) > 1:
            data = (flags.get("data.path") or flags.get("data.source")
                    if positional is None and len(rest) == 1 else None)
            raise ConfigError(f"unexpected argument(s) {' '.join(rest)}: give a YAML config "
                              "(.yaml), dotted overrides (key=value) and options.",
                              hint=f"for the data, write `{data} {rest[0]}`." if data else
                              f"see `graftlab {ctx.info_name} --help`.")
        given[positional] = rest[0]
    for name, value in given_options(ctx).items():
        given[keys[name]] = convert[name](value) if convert and name in convert else value
    return load_config(config, overrides, schema=schema, options=given, flags=flags)


def given_options(ctx: Any) -> dict[str, Any]:
    """The command's options given on the command line (parameter name -> value; a path as
    text): the others leave the file's value (or the model's default) standing."""
    given = {}
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.param_type_name != "option" or source is None or \
                source.name in ("DEFAULT", "DEFAULT_MAP"):
            continue
        value = ctx.params[param.name]
        given[param.name] = str(value) if isinstance(value, Path) else value
    return given
