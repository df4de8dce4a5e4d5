"""Building the frozen, slotted row dataclasses quickly, for reads that return many rows.

A frozen dataclass's ``__init__`` stores each field through ``object.__setattr__`` to get past its
own ``__setattr__``; for an eight-field row that is about four times the cost of a plain slotted
dataclass, and it dominated "latest 50 messages" once the SQL itself was an index range read.
A :class:`Builder` fills a plain slotted twin with the same slot layout and then re-labels the
object with the frozen class (``__class__`` assignment, which CPython allows between classes with
identical slots). The result is an ordinary instance of the frozen class: equality, repr, hashing,
``dataclasses.replace`` and the refusal to assign all behave as usual.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Builder(Generic[T]):
    """A positional constructor for a frozen, slotted dataclass (field values in field order).

    Hot loops may use the two halves directly: ``row = builder.draft(*values)`` then
    ``row.__class__ = builder.cls``.
    """

    __slots__ = ("cls", "draft")

    def __init__(self, cls: type[T]) -> None:
        names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
        params = getattr(cls, "__dataclass_params__", None)
        if params is None or not params.frozen or getattr(cls, "__slots__", None) != names:
            raise TypeError(f"{cls.__name__} must be a frozen dataclass with slots=True and no inherited fields")
        self.cls = cls
        self.draft: Any = dataclasses.make_dataclass(f"_{cls.__name__}Draft", names, slots=True)
        # Fail here, once, rather than on the first read, if the layouts ever stop matching.
        probe = self.draft(*(None for _ in names))
        probe.__class__ = cls

    def __call__(self, *values: Any) -> T:
        row = self.draft(*values)
        row.__class__ = self.cls
        return row  # type: ignore[no-any-return]
