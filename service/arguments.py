"""Argument types the commands share, so a bad number reads the same everywhere."""

from __future__ import annotations

import argparse
from collections.abc import Callable


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


def number_list(lowest: int, highest: int, what: str) -> Callable[[str], list[int]]:
    """An argument type for comma-separated whole numbers, each within [lowest, highest] ``what``."""

    def parse(text: str) -> list[int]:
        try:
            numbers = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
        if not numbers or any(n < lowest or n > highest for n in numbers):
            raise argparse.ArgumentTypeError(f"each must be between {lowest} and {highest} {what}, got {text!r}")
        return numbers

    return parse
