"""Bounds of the numbers and times the API takes, stated in the schema so clients see them.

The database stores numeric ids as 32-bit integers and pages with a 64-bit OFFSET; a number past
those limits used to reach it and fail there (a 500). Here it is a 422 naming the parameter.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path
from pydantic import AwareDatetime, BeforeValidator

MAX_ROW_ID = 2**31 - 1  # PostgreSQL INTEGER, the type of every numeric id
# No list is paged this deep by offset (a cursor pages any depth); a bound below PostgreSQL's
# BIGINT keeps an absurd offset a 422 instead of a database error.
MAX_OFFSET = 10**9
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _date_time_text(value: Any) -> Any:
    """pydantic reads a bare number as seconds since 1970; the API documents ISO 8601 only."""
    if isinstance(value, str) and not _DATE_TIME.match(value):
        raise ValueError(
            f"{value[:40]!r} is not an ISO 8601 date-time with a zone, e.g. 2026-01-05T08:00:00Z"
        )
    return value


RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A numeric id")]
Instant = Annotated[AwareDatetime, BeforeValidator(_date_time_text)]
