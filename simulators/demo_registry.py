"""Registers the bundled models the demo's gateways run, so the console's Models page is not empty.

Pushed the way an ML engineer would (``factoryctl models push``, signed with the demo key, with the
model card), so the registry, the blobs and the audit log hold what a real push leaves behind.
Pushing a version that is already registered changes nothing, so a restarted demo on the same
database is fine.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from simulators.fleet import bundled_manifest
from simulators.net import console_script

log = logging.getLogger(__name__)

# The bundles the demo's three gateways load (anomaly + notes on gw-1, CNN on gw-2, parcels on gw-3).
DEMO_MODELS = ("anomaly", "notes", "defect-cnn", "parcels")
PUSH_TIMEOUT_S = 120.0


class RegistryError(RuntimeError):
    """A bundled model could not be registered; the message names it and quotes factoryctl."""


def push_bundled(
    api_url: str, token: str, signing_key: Path, models: Sequence[str] = DEMO_MODELS
) -> list[str]:
    """Push each bundled model with its card; return ``name version`` of each one pushed."""
    factoryctl = console_script("factoryctl")
    env = os.environ | {"FACTORY_API_URL": api_url, "FACTORY_API_TOKEN": token}
    pushed = []
    for model in models:
        manifest = bundled_manifest(model)
        fields = json.loads(manifest.read_text(encoding="utf-8"))
        argv = [factoryctl, "models", "push", str(manifest.parent / fields["artifact"])]
        argv += ["--manifest", str(manifest), "--key", str(signing_key)]
        card = manifest.parent / "MODEL_CARD.md"
        if card.exists():
            argv += ["--card", str(card)]
        done = subprocess.run(  # noqa: S603 - our own console script
            argv, env=env, capture_output=True, text=True, timeout=PUSH_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip()
            raise RegistryError(f"registering the bundled {model} model ({manifest.name}) failed:\n{detail}")
        pushed.append(f"{fields['name']} {fields['version']}")
    return pushed
