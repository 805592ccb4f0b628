"""Shared pieces of the agent's configuration models: strict models and path resolution."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationInfo


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file, the key path and the reason."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute():
        return value
    return Path(base) / value
