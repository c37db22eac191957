"""Noting the calls of a coroutine function while the real one still runs (a spy, never a stand-in for MongoDB)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def noted_calls(monkeypatch, owner: Any, name: str, note: Callable[..., Any]) -> list:
    """Replace the coroutine function `owner.name` for the test by one that appends `note(*args)` to the list
    returned, then awaits the real one."""
    calls: list = []
    real = getattr(owner, name)

    async def noting(*args, **kwargs):
        calls.append(note(*args))
        return await real(*args, **kwargs)

    monkeypatch.setattr(owner, name, noting)
    return calls
