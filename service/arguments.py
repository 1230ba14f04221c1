"""Argument types the commands share, so a bad number reads the same everywhere."""

from __future__ import annotations

import argparse


def whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def count(text: str) -> int:
    """A whole number, 0 or more."""
    return _at_least(whole_number(text), 0)


def positive(text: str) -> int:
    """A whole number, 1 or more."""
    return _at_least(whole_number(text), 1)


def _at_least(value: int, minimum: int) -> int:
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value
