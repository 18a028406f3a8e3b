"""``ELID_*``: the eligibility fake's settings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator

from simulator import BaseUrl, PluginSettings, SettingsConfigDict, check_folder

# Status groups of the bundled examples; a mix key may also name one scenario, e.g. "example_5000000014".
DEFAULT_MIX = {"Actionable": 50.0, "NotActionable": 30.0, "NotEligible": 20.0}
MAX_WEIGHT = 1e9  # weights are relative: any mix fits, and their sum stays a finite float
MAX_MIX_KEYS = 1000
Weight = Annotated[float, Field(ge=0, le=MAX_WEIGHT, allow_inf_nan=False)]


class EligibilitySettings(PluginSettings):
    """Besides ``ELID_DELAY_SECONDS``/``ELID_DELAY`` from the base class:

    Attributes:
        nbs_url: base of the National Booking Service links (``@@NBS_URL@@`` in scenario files); the
            original fake's ``NBS_URL`` is accepted too. The default points at this simulator's ``/nbs``.
        scenarios_dir: a folder of ``<nhs_number>.json`` 200 bodies and an optional ``mapping.json``,
            read at start-up; its patients override the bundled ones.
        unknown_patients: what a valid NHS number without a scenario gets: ``synthetic`` (a deterministic
            pick weighted by ``synthetic_mix``) or ``not_found`` (the real API's 404).
        synthetic_mix: JSON object of weights; keys are status groups (``Actionable``, ``NotActionable``,
            ``NotEligible``: a group's weight is shared by its bundled examples) or scenario names.
    """

    model_config = SettingsConfigDict(env_prefix="ELID_")

    nbs_url: BaseUrl = Field(
        "http://localhost:9123/nbs", validation_alias=AliasChoices("ELID_NBS_URL", "NBS_URL")
    )
    scenarios_dir: Path | None = None
    unknown_patients: Literal["synthetic", "not_found"] = "synthetic"
    synthetic_mix: dict[str, Weight] = Field(
        default_factory=lambda: dict(DEFAULT_MIX), min_length=1, max_length=MAX_MIX_KEYS
    )

    @field_validator("scenarios_dir")
    @classmethod
    def _folder(cls, value: Path | None) -> Path | None:
        return None if value is None else check_folder(value)

    @field_validator("synthetic_mix")
    @classmethod
    def _weights(cls, value: dict[str, float]) -> dict[str, float]:
        total = math.fsum(value.values())
        if not (math.isfinite(total) and total > 0):
            raise ValueError(f"weights must be 0 to {MAX_WEIGHT:g} with a positive total")
        return value
