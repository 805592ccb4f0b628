"""Field types for request bodies whose JSON Schema must say exactly what the API accepts."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Strict


def whole_number(value: object) -> object:
    # JSON Schema counts 140.0 as an integer, so a client may send it; Python counts True as 1,
    # which no client means: take the one, refuse the other (strict mode then refuses strings).
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The validator last: pydantic then still writes the field's bounds into its JSON Schema, also
# inside an optional field's anyOf (an optional field's bounds go inside: see AlertRuleUpdate).
JsonInt = Annotated[int, Strict(), BeforeValidator(whole_number)]
