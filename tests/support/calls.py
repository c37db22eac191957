"""Noting the calls of a function while the real one still runs (a spy, never a stand-in for MongoDB)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def noted_calls(monkeypatch, owner: Any, name: str, note: Callable[..., Any]) -> list:
    """Replace the function `owner.name` (a coroutine function or a plain one) for the test by one that appends
    `note(*args)` to the list returned, then calls the real one."""
    calls: list = []
    real = getattr(owner, name)

    async def noting_async(*args, **kwargs):
        calls.append(note(*args))
        return await real(*args, **kwargs)

    def noting(*args, **kwargs):
        calls.append(note(*args))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, noting_async if inspect.iscoroutinefunction(real) else noting)
    return calls
