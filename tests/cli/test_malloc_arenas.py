"""The CLI caps glibc's malloc arenas at start (the views build's peak memory), unless the user set them."""

from __future__ import annotations

from typing import Any

import pytest

import dynmix.cli as cli


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return 1


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(cli.ctypes, "CDLL", lambda _name: fake)
    for var in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES"):
        monkeypatch.delenv(var, raising=False)
    return fake


def test_two_arenas_by_default(libc: FakeLibc) -> None:
    cli._few_malloc_arenas()
    assert libc.calls == [(cli.M_ARENA_MAX, 2)]


@pytest.mark.parametrize("var", ["MALLOC_ARENA_MAX", "GLIBC_TUNABLES"])
def test_the_users_setting_wins(libc: FakeLibc, monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.setenv(var, "8")
    cli._few_malloc_arenas()
    assert libc.calls == []


def test_without_glibc_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_mallopt(_name: Any) -> object:
        return object()  # a C library without mallopt (macOS)

    monkeypatch.setattr(cli.ctypes, "CDLL", no_mallopt)
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    cli._few_malloc_arenas()  # no error
