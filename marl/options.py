"""Checks of option values; each raises an :class:`OptionError` naming the option.

The same checks serve the command line (where the key gets its group's prefix,
``algo.td_lambda``) and Python (``td_lambda``), so a rule reads the same wherever
the user meets it.
"""

from __future__ import annotations

from typing import Any


class OptionError(ValueError):
    """An option's value is invalid: ``key`` names it, ``problem`` says what is wrong."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem

    def within(self, prefix: str) -> OptionError:
        """The same error with its key under ``prefix`` (``algo`` -> ``algo.gamma``)."""
        return OptionError(f"{prefix}.{self.key}", self.problem)


def check_at_least_one(options: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(options, name) < 1:
            raise OptionError(name, f"must be at least 1, got {getattr(options, name)}")


def check_unit_interval(options: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if not 0.0 <= getattr(options, name) <= 1.0:
            raise OptionError(name, f"must lie in [0, 1], got {getattr(options, name)}")


def check_positive(options: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(options, name) <= 0:
            raise OptionError(name, f"must be positive, got {getattr(options, name)}")


def check_non_negative(options: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(options, name) < 0:
            raise OptionError(name, f"must not be negative, got {getattr(options, name)}")


def check_choice(options: Any, name: str, valid: tuple[str, ...]) -> None:
    value = getattr(options, name)
    if value not in valid:
        raise OptionError(name, f"'{value}' is unknown; valid: {', '.join(valid)}")
