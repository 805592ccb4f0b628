"""A parcel line's own facts: the sort-lane rule table and the camera calibration.

They belong to the line and its camera, not to the model: a detector update must not move the
counting line, and two lines with different cameras run the same release. The gateway config
gives them per slot (:class:`ParcelLineSettings`); the release's manifest values are the fallback.
This module holds only pydantic models, so the config can validate them without the runner.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.runtime.model import ModelLoadError
from protocol.inference import COUNT_LINE_X_KEY, MM_PER_PX_KEY, ROUTES_FILE
from protocol.manifest import ModelManifest
from protocol.messages import Name


class RouteRule(BaseModel):
    """One row of the sort table; unset conditions match anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    lane: Name = Field(description="Sort lane (the ParcelOutput label) when every condition holds")
    damaged: bool | None = Field(default=None, description="Match only damaged (true) or intact (false)")
    has_barcode: bool | None = Field(
        default=None, description="Match only read (true) or unread (false) labels"
    )
    prefixes: tuple[str, ...] = Field(default=(), description="Barcode starts with one of these")
    min_length_mm: float | None = Field(default=None, ge=0, description="Footprint length at least this")
    max_length_mm: float | None = Field(default=None, ge=0, description="Footprint length at most this")

    def matches(self, barcode: str | None, length_mm: float, damaged: bool) -> bool:
        """Whether a parcel with these facts takes this rule's lane."""
        return (
            (self.damaged is None or self.damaged == damaged)
            and (self.has_barcode is None or self.has_barcode == (barcode is not None))
            and (not self.prefixes or (barcode is not None and barcode.startswith(self.prefixes)))
            and (self.min_length_mm is None or length_mm >= self.min_length_mm)
            and (self.max_length_mm is None or length_mm <= self.max_length_mm)
        )


class RouteTable(BaseModel):
    """The sort-lane rule table: first matching rule wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: tuple[RouteRule, ...] = Field(default=(), description="Rules in priority order")
    default: Name = Field(description="Lane when no rule matches")

    def route(self, barcode: str | None, length_mm: float, damaged: bool) -> str:
        """The lane of one parcel."""
        return next((r.lane for r in self.rules if r.matches(barcode, length_mm, damaged)), self.default)


def load_route_table(path: Path) -> RouteTable:
    """A route table from a JSON or YAML file; ValueError naming the file and the bad key's path."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{path}: cannot read route table: {exc.strerror or exc}") from None
    try:
        # YAML is a superset of JSON, but JSON's own parser gives the better message for a .json file.
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(
            f"{path}: route table is not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}"
        ) from None
    try:
        return RouteTable.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ValueError(f"{path}: not a valid route table: {problems}") from None


class ParcelLineSettings(BaseModel):
    """A parcel slot's line settings from the gateway config; unset values fall back to the manifest."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mm_per_px: float | None = Field(
        default=None, gt=0, le=100, description="Camera calibration at belt height, mm per pixel"
    )
    count_line_x: float | None = Field(
        default=None, gt=0, lt=1, description="Counting line as a fraction of the frame width"
    )
    routes: RouteTable | None = Field(
        default=None, description="Sort-lane rule table (first match wins), inline or a JSON/YAML file path"
    )

    def is_empty(self) -> bool:
        """Whether nothing is overridden (the release's own values serve)."""
        return self.mm_per_px is None and self.count_line_x is None and self.routes is None


@dataclass(frozen=True)
class LineFacts:
    """The calibration and sort table a parcel runner uses, and where each came from."""

    mm_per_px: float
    count_line_x: float
    routes: RouteTable
    origin: dict[str, str]  # value name -> "config" or "manifest"

    def describe(self) -> str:
        """One log line: each value and its source."""
        return (
            f"mm_per_px {self.mm_per_px} ({self.origin['mm_per_px']}), "
            f"count_line_x {self.count_line_x} ({self.origin['count_line_x']}), "
            f"routes {len(self.routes.rules)} rule(s) + default {self.routes.default} ({self.origin['routes']})"
        )


def line_facts(manifest_path: Path, manifest: ModelManifest, line: ParcelLineSettings | None) -> LineFacts:
    """The config's values where given, else the release's; ModelLoadError naming what is missing."""
    where, given = str(manifest_path), line or ParcelLineSettings()
    values: dict[str, float] = {}
    origin: dict[str, str] = {}
    # The settings' fields are named after the manifest keys they override.
    for key in (MM_PER_PX_KEY, COUNT_LINE_X_KEY):
        value: float | None = getattr(given, key)
        if value is not None:
            values[key], origin[key] = value, "config"
        elif key in manifest.thresholds:
            values[key], origin[key] = manifest.thresholds[key], "manifest"
    missing = [k for k in (MM_PER_PX_KEY, COUNT_LINE_X_KEY) if k not in values]
    if missing:
        raise ModelLoadError(
            f"{where}: {missing} are required for a parcel line: set them in the slot's parcels "
            "section of the gateway config, or in the manifest's thresholds"
        )
    if given.routes is not None:
        routes, origin["routes"] = given.routes, "config"
    elif ROUTES_FILE in manifest.files:
        try:
            routes = RouteTable.model_validate_json((manifest_path.parent / ROUTES_FILE).read_bytes())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{where}: {ROUTES_FILE} is not a valid route table: {exc}") from None
        origin["routes"] = "manifest"
    else:
        raise ModelLoadError(
            f"{where}: no sort table: give routes in the slot's parcels section of the gateway config, "
            f"or list {ROUTES_FILE} in the manifest's files"
        )
    return LineFacts(values[MM_PER_PX_KEY], values[COUNT_LINE_X_KEY], routes, origin)
