"""One registry helper for every kind of registered part: backbones, heads, methods,
strategies, validators, data sets.

    HEADS = Registry("head")

    @HEADS.register("linear")
    class LinearHead(Head): ...

    HEADS.create("linear", in_features=8, num_outputs=2)   # or HEADS.get("linear")
    HEADS.names()                                          # ['linear', ...]
    HEADS.get("lienar")  # NotFoundError: unknown head 'lienar'. Known heads: ...
                         # Did you mean 'linear'?

A registered class gets its name as ``cls.name``; a part declares what it does in class
attributes, and the engine reads those declarations instead of comparing names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from graftlab.errors import ConfigError, unknown_name

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry, with did-you-mean errors. ``load`` imports the modules that register
    themselves (called once, before the first look-up), so a registry can be filled lazily."""

    def __init__(self, kind: str, *, hint: str | None = None,
                 load: Callable[[], None] | None = None, sort: bool = False) -> None:
        self.kind, self.hint, self._load, self._sort = kind, hint, load, sort
        self._entries: dict[str, T] = {}

    def _ready(self) -> None:
        if self._load is not None:
            load, self._load = self._load, None
            load()

    def register(self, name: str, entry: T | None = None) -> Any:
        """``@registry.register(name)`` on a class or function, or ``register(name, entry)``."""

        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ConfigError(f"{self.kind} {name!r} is registered twice.",
                                  hint="give the new one another name.")
            self._entries[name] = obj
            if isinstance(obj, type):
                obj.name = name
            return obj

        return add if entry is None else add(entry)

    def get(self, name: str) -> T:
        self._ready()
        if not isinstance(name, str) or name not in self._entries:
            raise unknown_name(self.kind, str(name), self._entries, hint=self.hint)
        return self._entries[name]

    def create(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call the entry (a class or a factory) registered as ``name``."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        self._ready()
        return sorted(self._entries) if self._sort else list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: object) -> bool:
        self._ready()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())
