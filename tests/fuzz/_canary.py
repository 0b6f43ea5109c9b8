"""A target whose invariant breaks on one of its seeds: the test that a finding fails the run."""

from __future__ import annotations

MAX_LEN = 64


def seeds() -> list[bytes]:
    return [b"fine", b"boom"]


def one_input(data: bytes) -> None:
    if data.startswith(b"boom"):
        raise ValueError("the canary's invariant broke")
