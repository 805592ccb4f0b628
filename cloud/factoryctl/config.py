"""Where factoryctl keeps the API URL and token: a JSON file readable by its owner only."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_URL = "http://127.0.0.1:8000"


class CtlConfig(BaseModel):
    """What ``factoryctl login`` saves."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(DEFAULT_URL, description="API base URL")
    token: str | None = Field(None, description="API token (secret)")


def config_path(env: Mapping[str, str]) -> Path:
    """``$FACTORYCTL_CONFIG``, else ``$XDG_CONFIG_HOME/factoryctl/config.json``, else ~/.config/..."""
    if env.get("FACTORYCTL_CONFIG"):
        return Path(env["FACTORYCTL_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "factoryctl" / "config.json"


def load_config(path: Path) -> CtlConfig:
    """The saved config, or defaults when there is none; ValueError naming the file if it is bad."""
    if not path.exists():
        return CtlConfig()
    try:
        return CtlConfig.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise ValueError(
            f"{path}: not a factoryctl config ({exc.errors()[0]['msg']}); run 'factoryctl login' again"
        ) from None


def save_config(path: Path, config: CtlConfig) -> None:
    """Write the config with 0600 permissions from the first byte (the token is a secret)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(config.model_dump(), indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
