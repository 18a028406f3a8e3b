"""``eligibility``: NHS England's Eligibility Signposting API, answered from its published examples.

Routes and their behaviour are in ``routes.py``, scenario data in ``scenarios.py`` and ``data/``,
settings (``ELID_*``) in ``settings.py``, load-test targets in ``targets.py``.
"""

from collections.abc import Iterable
from functools import cache

from plugins.eligibility import outcomes, scenarios, targets
from plugins.eligibility.routes import router
from plugins.eligibility.settings import EligibilitySettings
from simulator import ErrorResponse, PluginContext, PluginSettings, Router, Targets, hookimpl


@hookimpl
def simulator_settings_class() -> type[PluginSettings]:
    return EligibilitySettings


@hookimpl
def simulator_register_routes(settings: EligibilitySettings, context: PluginContext) -> Router:
    return router(scenarios.load(settings, context.core.seed))


@hookimpl
def simulator_register_targets(settings: EligibilitySettings, context: PluginContext) -> Iterable[Targets]:
    return targets.targets(cache(lambda: scenarios.load(settings, context.core.seed)))


@hookimpl
def simulator_error_response() -> ErrorResponse:
    return outcomes.injected
