"""``Remote``: a proxy of an object that lives in a worker process.

Attribute access, calls, iteration and indexing on a proxy become requests to the
worker that owns the object; the answer is data or another proxy. The proxy holds
nothing of the student's but an id and a type name.
"""
from __future__ import annotations

from typing import Any


class Remote:
    __slots__ = ("_session", "_ref", "_type_name", "_label", "_device")

    def __init__(self, session: Any, ref: int, type_name: str, label: str, device: str | None = None):
        object.__setattr__(self, "_device", device)   # where tensor arguments go (None: grading device)
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type_name", type_name)
        object.__setattr__(self, "_label", label)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._session.request("getattr", self, name=name, label=f"{self._label}.{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        self._session.request("setattr", self, name=name, value=value, label=f"{self._label}.{name} = ...")

    def __call__(self, *args, **kwargs):
        return self._session.call(self, args, kwargs)

    def __getitem__(self, key):
        return self._session.request("getitem", self, key=key, label=f"{self._label}[{key!r}]")

    def __iter__(self):
        return iter(self._session.request("iter", self, label=f"iterating over {self._label}"))

    def __len__(self) -> int:
        n = self._session.request("len", self, label=f"len({self._label})")
        if type(n) is not int or n < 0:
            raise TypeError(f"len({self._label}) did not return a non-negative int")
        return n

    def __repr__(self) -> str:
        return f"<student {self._type_name} {self._label}>"

    def __bool__(self) -> bool:
        return True
