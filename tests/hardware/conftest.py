"""pytester for the plugin's own tests, and the gbcs_hil plugin until its entry point is installed.

``pytest_plugins`` is not allowed in a conftest below the top level, so both
are registered from ``pytest_addoption``, which gets the plugin manager. The
gbcs_hil plugin is registered only when neither its ``pytest11`` entry point
nor ``-p hardware.pytest_plugin`` has done so already.
"""

from __future__ import annotations

from typing import Any

import hardware.pytest_plugin as gbcs_hil


def pytest_addoption(parser: Any, pluginmanager: Any) -> None:
    if not pluginmanager.has_plugin("pytester"):
        pluginmanager.import_plugin("pytester")
    if not pluginmanager.is_registered(gbcs_hil):
        pluginmanager.register(gbcs_hil, "gbcs_hil")
