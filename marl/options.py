"""Checks shared by the learners' option dataclasses; each raises a one-line ``ValueError``."""

from __future__ import annotations

import dataclasses
from typing import Any


def check_at_least_one(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(config, name)}")


def check_unit_interval(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {getattr(config, name)}")


def check_positive(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise ValueError(f"{name} must be positive, got {getattr(config, name)}")


def check_non_negative(config: Any, names: tuple[str, ...]) -> None:
    for name in names:
        if getattr(config, name) < 0:
            raise ValueError(f"{name} must not be negative, got {getattr(config, name)}")


def parse_options(config_class: type, options: dict[str, Any]) -> Any:
    """``config_class(**options)``, checked; an unknown option is named with the valid ones."""
    valid = sorted(f.name for f in dataclasses.fields(config_class))
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown {config_class.__name__} option(s) {unknown}; valid: {valid}")
    config = config_class(**options)
    config.check()
    return config
