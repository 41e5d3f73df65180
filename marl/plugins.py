"""Plugins: algorithms, environments and their configs from other installed packages.

A package extends marl-lab by declaring entry points (in its ``pyproject.toml``)::

    [project.entry-points."marl_lab.algorithms"]
    vdn_s = "my_package.vdn_s"            # a module that registers when imported

    [project.entry-points."marl_lab.envs"]
    climbing = "my_package.envs:register" # or a function, called with no arguments

    [project.entry-points."marl_lab.configs"]
    my_package = "my_package.conf"        # a package holding algo/, env/, tuned/ YAMLs

The registries load these the first time a name is looked up, after marl-lab's own
learners and envs; ``marl-train`` adds every ``marl_lab.configs`` package to Hydra's
config search path, so ``marl-train algo=vdn_s env=coordination/climbing`` works
once the package is installed. ``docs/plugins.md`` is a worked example.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.resources
import pathlib
import types

ALGORITHM_GROUP = "marl_lab.algorithms"
ENV_GROUP = "marl_lab.envs"
CONFIG_GROUP = "marl_lab.configs"

_loaded: set[str] = set()


class PluginError(RuntimeError):
    """An installed plugin that cannot be loaded; the message names it and its package."""


def _entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
    return sorted(importlib.metadata.entry_points(group=group), key=lambda point: point.name)


def _describe(point: importlib.metadata.EntryPoint) -> str:
    package = f" of package '{point.dist.name}'" if point.dist is not None else ""
    return f"plugin '{point.name}' ({point.group} = {point.value}){package}"


def load_plugins(group: str) -> None:
    """Imports (and, for a function, calls) every entry point of ``group``, once.

    Raises :class:`PluginError` naming the plugin when one fails.
    """
    if group in _loaded:
        return
    # Marked first: a plugin that looks a name up while registering must not recurse.
    _loaded.add(group)
    for point in _entry_points(group):
        try:
            loaded = point.load()
            if callable(loaded) and not isinstance(loaded, types.ModuleType):
                loaded()
        except Exception as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise PluginError(
                f"{_describe(point)} failed to load: {type(error).__name__}: {message}"
            ) from error


def config_packages() -> list[str]:
    """The packages the ``marl_lab.configs`` entry points name, in name order."""
    return [point.value for point in _entry_points(CONFIG_GROUP)]


def config_search_path() -> list[str]:
    """Hydra search-path entries (``pkg://...``) for the plugins' config packages."""
    return [f"pkg://{package}" for package in config_packages()]


def config_dirs() -> list[pathlib.Path]:
    """The plugins' config packages as directories (for listing the valid options).

    Raises :class:`PluginError` for a package that cannot be imported.
    """
    directories = []
    for point in _entry_points(CONFIG_GROUP):
        try:
            directories.append(pathlib.Path(str(importlib.resources.files(point.value))))
        except Exception as error:
            raise PluginError(
                f"{_describe(point)}: its config package cannot be found: {error}"
            ) from error
    return directories
