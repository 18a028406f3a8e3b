"""api-simulator: a plugin-based multi-API simulator.

The host discovers plugins through the ``simulator`` entry-point group; each plugin is one fake API.
The public surface for plugin authors is re-exported here.
"""

from simulator.delays import DelayPolicy, DelayPolicyType
from simulator.hookspecs import hookimpl
from simulator.http import Request, RequestBodyTooLarge, Response, Route
from simulator.records import ResponseGenerator
from simulator.settings import PluginSettings

__version__ = "0.1.0"

__all__ = [
    "DelayPolicy",
    "DelayPolicyType",
    "PluginSettings",
    "Request",
    "RequestBodyTooLarge",
    "Response",
    "ResponseGenerator",
    "Route",
    "hookimpl",
]
