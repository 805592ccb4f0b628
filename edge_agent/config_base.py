"""Shared pieces of the agent's configuration models: strict models and path resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the file, the key path and the reason."""


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """``value`` relative to the config file's folder (the ``base_dir`` validation context)."""
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute():
        return value
    return Path(base) / value


# A path written in the config file: a relative one is relative to the file's folder, so a config
# means the same files whatever directory the agent is started from.
ConfigPath = Annotated[Path, AfterValidator(resolve_path)]
