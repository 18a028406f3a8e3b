"""api-simulator: a plugin-based multi-API simulator.

The host discovers plugins through the ``simulator`` entry-point group; each plugin is one fake API. This
module is the stable surface for plugin authors: everything in ``__all__`` (and the ``simulator.testing``
module) keeps its meaning across minor releases; every other module is private and may change.
"""

from simulator.delays import DelayKind, DelayPolicy
from simulator.errors import StartupError
from simulator.faults import ErrorResponse
from simulator.hookspecs import hookimpl
from simulator.http import (
    APPLICATION_JSON,
    FORM_URLENCODED,
    TEXT_PLAIN,
    InvalidBody,
    Params,
    Request,
    RequestBodyTooLarge,
    Response,
)
from simulator.records import PluginContext, Service
from simulator.routing import Parameter, ParameterProblem, Route, Router
from simulator.settings import (
    BaseUrl,
    CommaSet,
    CoreSettings,
    PluginSettings,
    SettingsConfigDict,
    check_folder,
    check_url,
    read_setting_file,
    shown_setting,
)
from simulator.shared import SharedState
from simulator.stores import ExpiringSet
from simulator.targets import HttpTarget, TargetOption, TargetRequest, Targets

__version__ = "0.1.0"
#: The distribution this package is installed from (``pip install`` takes this name).
DISTRIBUTION = "nhs-api-simulator"

__all__ = [
    "APPLICATION_JSON",
    "FORM_URLENCODED",
    "TEXT_PLAIN",
    "BaseUrl",
    "CommaSet",
    "CoreSettings",
    "DelayKind",
    "DelayPolicy",
    "ErrorResponse",
    "ExpiringSet",
    "HttpTarget",
    "InvalidBody",
    "Parameter",
    "ParameterProblem",
    "Params",
    "PluginContext",
    "PluginSettings",
    "Request",
    "RequestBodyTooLarge",
    "Response",
    "Route",
    "Router",
    "Service",
    "SettingsConfigDict",
    "SharedState",
    "StartupError",
    "TargetOption",
    "TargetRequest",
    "Targets",
    "check_folder",
    "check_url",
    "hookimpl",
    "read_setting_file",
    "shown_setting",
]
