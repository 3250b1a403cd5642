"""Wrapping a method wherever a family of classes implements it, now and later.

Some frameworks call an abstract method that every provider class implements
on its own (AutoGen's ``ChatCompletionClient.create``, ``BaseTool.run``): the
base class has nothing worth wrapping. :class:`SubclassMethods` wraps the
method in every subclass that defines it, the ones already imported and, via
a temporary ``__init_subclass__`` on the base class, the ones defined after
``instrument()`` (a user who imports a model client after
``forktrace.instrument()``). ``restore()`` unwraps them all and removes the hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from forktrace.integrations._shared import report
from forktrace.integrations._wrapping import MethodPatches


def _subclasses(base: type) -> Iterator[type]:
    seen: set[type] = set()
    stack = [base]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
                yield sub


class SubclassMethods:
    """``wrappers`` (method name -> wrapt wrapper) on every concrete override below ``base``."""

    def __init__(self, base: type, wrappers: Mapping[str, Callable[..., Any]]) -> None:
        self.base = base
        self.wrappers = dict(wrappers)
        self._patches = MethodPatches()
        self._hook: Any = None
        self._previous_hook: Any = None

    def install(self) -> None:
        for cls in [self.base, *_subclasses(self.base)]:
            self._wrap(cls)
        self._install_hook()

    def _wrap(self, cls: type) -> None:
        for name, wrapper in self.wrappers.items():
            method = cls.__dict__.get(name)
            if method is None or getattr(method, "__isabstractmethod__", False):
                continue
            try:
                self._patches.wrap(cls, name, wrapper)
            except Exception as exc:
                report(f"wrap {cls.__qualname__}.{name}", exc)

    def _install_hook(self) -> None:
        base = self.base
        previous = base.__dict__.get("__init_subclass__")
        owner = self

        def init_subclass(cls: type, **kwargs: Any) -> None:
            if previous is not None:
                previous.__get__(None, cls)(**kwargs)
            else:
                super(base, cls).__init_subclass__(**kwargs)  # type: ignore[misc]
            owner._wrap(cls)

        self._previous_hook = previous
        self._hook = classmethod(init_subclass)
        base.__init_subclass__ = self._hook  # type: ignore[assignment]

    def restore(self) -> None:
        self._patches.restore()
        if self._hook is not None and self.base.__dict__.get("__init_subclass__") is self._hook:
            if self._previous_hook is None:
                del self.base.__init_subclass__
            else:
                self.base.__init_subclass__ = self._previous_hook  # type: ignore[assignment]
        self._hook = self._previous_hook = None
