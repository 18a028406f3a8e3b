"""``eligibility``: NHS England's Eligibility Signposting API, answered from its published examples.

Routes and their behaviour are in ``routes.py``, scenario data in ``scenarios.py`` and ``data/``,
settings (``ELID_*``) in ``settings.py``.
"""

from collections.abc import Iterable

from plugins.eligibility import scenarios
from plugins.eligibility.routes import routes
from plugins.eligibility.settings import EligibilitySettings
from simulator import PluginSettings, Route, hookimpl
from simulator.records import PluginContext


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return EligibilitySettings


@hookimpl
def simulator_register_routes(settings: PluginSettings | None, context: PluginContext) -> Iterable[Route]:
    if not isinstance(settings, EligibilitySettings):
        raise TypeError("the eligibility plugin needs its own settings")
    return routes(scenarios.load(settings, context.core.seed))
