"""How long tokens live: a login's session, an API token's stated lifetime (``--expires 30d``).

Every token expires; none lives for ever. A login (the console's, or ``POST /auth/login``) lasts
one shift plus slack. An API token lasts what its maker says, 90 days unless told, at most a year,
so a forgotten token in a script or on a laptop stops working by itself.
"""

from __future__ import annotations

import re
from datetime import timedelta

LOGIN_LIFETIME = timedelta(hours=12)
DEFAULT_API_TOKEN_LIFETIME = timedelta(days=90)
MAX_API_TOKEN_LIFETIME = timedelta(days=366)

_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_LIFETIME = re.compile(r"^(\d{1,6})([mhdw])$")


def parse_lifetime(text: str) -> timedelta:
    """``30m``, ``12h``, ``30d`` or ``8w`` as a timedelta; ValueError naming what is wrong."""
    match = _LIFETIME.match(text.strip().lower())
    if match is None:
        raise ValueError(
            f"token lifetime {text!r} is not a number and a unit: write e.g. 30m, 12h, 30d or 8w"
        )
    lifetime = int(match.group(1)) * _UNITS[match.group(2)]
    check_lifetime(lifetime, text)
    return lifetime


def check_lifetime(lifetime: timedelta, shown: str | None = None) -> None:
    """ValueError unless ``lifetime`` is above zero and at most :data:`MAX_API_TOKEN_LIFETIME`."""
    what = shown if shown is not None else str(lifetime)
    if lifetime <= timedelta(0):
        raise ValueError(f"token lifetime {what!r} must be longer than zero")
    if lifetime > MAX_API_TOKEN_LIFETIME:
        raise ValueError(
            f"token lifetime {what!r} is over the longest allowed, {MAX_API_TOKEN_LIFETIME.days}d"
        )
