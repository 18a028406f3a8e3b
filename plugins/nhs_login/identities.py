"""Who signs in: the named test users of ``data/users.json``, and a synthetic identity for any other number.

Named users are the eligibility fake's test patients (the 18 load-test patients, the render-test and error
patients) and APIM's mock users 9912003071/2/3 (P9, P5, P0). Their ages are kept consistent with their
eligibility answers: an ``"age": [75, 79]`` entry becomes a birthdate that makes the patient 75 to 79 *today*
(a fixed point in the range, from a hash of the number), a ``"birthdate"`` entry is taken as it is (the RSV
catch-up cohort is defined by dates). Any other valid NHS number gets a deterministic synthetic identity,
the same on every worker and task: names and age from a hash of the number.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from hashlib import blake2b
from pathlib import Path
from typing import Any, Final

from plugins.nhs_number import problem
from simulator import StartupError

USERS: Final = Path(__file__).resolve().parent / "data" / "users.json"
LEVELS: Final = ("P0", "P5", "P9")
_SUB_NAMESPACE: Final = uuid.UUID("6f1b6c7e-3c3a-4f7e-9a59-2f0c9a8d1e01")
_NUMBER: Final = re.compile(r"\d{10,11}", re.ASCII)
_SYNTHETIC_AGES: Final = (18, 95)
_GIVEN: Final = (
    "Amelia", "Oliver", "Isla", "George", "Ava", "Harry", "Mia", "Noah", "Ivy", "Jack", "Freya", "Leo",
    "Grace", "Arthur", "Lily", "Oscar", "Evie", "Charlie", "Sophia", "Thomas", "Ruby", "Alfie", "Ella",
    "Henry", "Rosie", "Jacob", "Poppy", "Archie", "Daisy", "Joshua", "Alice", "William",
)  # fmt: skip
_FAMILY: Final = (
    "SMITH", "JONES", "WILLIAMS", "TAYLOR", "BROWN", "DAVIES", "EVANS", "WILSON", "THOMAS", "JOHNSON",
    "ROBERTS", "ROBINSON", "THOMPSON", "WRIGHT", "WALKER", "WHITE", "EDWARDS", "HUGHES", "GREEN", "HALL",
    "LEWIS", "HARRIS", "CLARKE", "PATEL", "JACKSON", "WOOD", "TURNER", "MARTIN", "COOPER", "HILL",
    "WARD", "MORRIS",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Identity:
    """A user as NHS login knows them; claims are released from here by scope and proofing level."""

    nhs_number: str
    sub: str
    given_name: str
    family_name: str
    birthdate: str
    level: str
    email: str
    phone_number: str
    gp_ods_code: str


@dataclass(frozen=True, slots=True)
class _Entry:
    given_name: str
    family_name: str
    ages: tuple[int, int] | None
    birthdate: date | None
    level: str
    load_test: bool


class Directory:
    """Looks users up by NHS number; ``load_test`` lists the numbers a load test signs in as."""

    def __init__(self, path: Path = USERS) -> None:
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StartupError(f"cannot read NHS login users {path}: {exc}") from None
        if not isinstance(raw, dict):
            raise StartupError(f"{path}: expected a JSON object of NHS number -> user")
        self._entries = {number: _entry(path, number, value) for number, value in raw.items()}
        self.load_test = tuple(n for n, e in self._entries.items() if e.load_test)
        self._by_sub = {subject(number): number for number in self._entries}

    def find(self, nhs_number: str, today: date | None = None) -> Identity | None:
        """The named user, or a synthetic one for a valid NHS number; None for anything else."""
        entry = self._entries.get(nhs_number)
        today = today or date.today()
        digest = blake2b(nhs_number.encode(), digest_size=16, person=b"nhs_login").digest()
        if entry is None:
            if problem(nhs_number) is not None:
                return None
            given, family = _GIVEN[digest[0] % len(_GIVEN)], _FAMILY[digest[1] % len(_FAMILY)]
            entry = _Entry(given, family, _SYNTHETIC_AGES, None, "P9", False)
        pick = int.from_bytes(digest[2:6], "big")
        born = entry.birthdate or _born(entry.ages or _SYNTHETIC_AGES, today, pick)
        mailbox = f"{entry.given_name}.{entry.family_name}.{nhs_number[-4:]}".lower().replace("'", "")
        return Identity(
            nhs_number=nhs_number,
            sub=subject(nhs_number),
            given_name=entry.given_name,
            family_name=entry.family_name,
            birthdate=born.isoformat(),
            level=entry.level,
            email=f"{mailbox}@example.com",
            # Ofcom's drama range: numbers that are never anyone's.
            phone_number=f"+447700900{digest[6] % 1000:03d}",
            gp_ods_code=f"A{81000 + digest[7] % 1000:05d}",
        )

    def find_by_sub(self, sub: str) -> Identity | None:
        """A named user by their ``sub`` (P0 users' tokens carry no NHS number)."""
        number = self._by_sub.get(sub)
        return self.find(number) if number is not None else None


def subject(nhs_number: str) -> str:
    """The user's ``sub``: a UUID, the same for a number on every worker and task."""
    return str(uuid.uuid5(_SUB_NAMESPACE, nhs_number))


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year - years, day=28)


def _born(ages: tuple[int, int], today: date, pick: int) -> date:
    """A birthdate that makes someone between ``ages[0]`` and ``ages[1]`` years old today."""
    latest = _years_before(today, ages[0])
    earliest = _years_before(today, ages[1] + 1) + timedelta(days=1)
    return earliest + timedelta(days=pick % ((latest - earliest).days + 1))


def _entry(path: Path, number: str, value: Any) -> _Entry:
    where = f"{path}: user {number!r}"
    if not _NUMBER.fullmatch(number) or not isinstance(value, dict):
        raise StartupError(f"{where}: expected a 10- or 11-digit number mapped to an object")
    unknown = value.keys() - {
        "given_name",
        "family_name",
        "age",
        "birthdate",
        "identity_proofing_level",
        "load_test",
    }
    if unknown:
        raise StartupError(f"{where} has unknown key(s) {', '.join(sorted(unknown))}")
    names = value.get("given_name"), value.get("family_name")
    if not all(isinstance(name, str) and 0 < len(name) <= 100 for name in names):
        raise StartupError(f"{where} needs a given_name and a family_name")
    level = value.get("identity_proofing_level", "P9")
    if level not in LEVELS:
        raise StartupError(f"{where}: identity_proofing_level must be one of {', '.join(LEVELS)}")
    ages, born = value.get("age"), value.get("birthdate")
    if (ages is None) == (born is None):
        raise StartupError(f'{where} needs exactly one of "age" ([min, max]) or "birthdate" (YYYY-MM-DD)')
    if ages is not None and not (
        isinstance(ages, list)
        and len(ages) == 2
        and all(isinstance(a, int) for a in ages)
        and 0 <= ages[0] <= ages[1] <= 120
    ):
        raise StartupError(f"{where}: age must be [min, max] years, 0 to 120")
    birthdate = None
    if born is not None:
        try:
            birthdate = date.fromisoformat(born)
        except (TypeError, ValueError):
            raise StartupError(f"{where}: birthdate must be YYYY-MM-DD") from None
    return _Entry(
        str(names[0]),
        str(names[1]),
        (ages[0], ages[1]) if ages is not None else None,
        birthdate,
        level,
        value.get("load_test") is True,
    )
