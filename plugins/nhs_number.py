"""NHS numbers: 10 digits, the last a Modulus 11 check digit over the first nine.

Shared by the built-in NHS fakes (eligibility, NHS login): one definition of a valid number.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d{10}", re.ASCII)
_WEIGHTS = range(10, 1, -1)


def check_digit(first_nine: str) -> int | None:
    """The check digit of nine digits; None where no valid NHS number starts with them (remainder 10)."""
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, _WEIGHTS, strict=True))
    check = (11 - total % 11) % 11
    return None if check == 10 else check


def problem(value: str) -> str | None:
    """Why ``value`` is not a valid NHS number, or None."""
    if not _DIGITS.fullmatch(value):
        return "an NHS number is exactly 10 digits"
    if check_digit(value[:9]) != int(value[9]):
        return "its last digit fails the Modulus 11 check"
    return None
