"""What a rollout request says: target, waves, bake time and abort thresholds."""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.machine import CPU_CLASSES
from protocol.ota import HEALTH_HISTORY


class Thresholds(BaseModel):
    """When a wave counts as gone wrong; the rollout then aborts and rolls the touched gateways back."""

    model_config = ConfigDict(extra="forbid")

    max_failure_ratio: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Largest share of a wave's gateways that may fail to install or be unhealthy",
    )
    max_error_rate: float | None = Field(
        0.05, ge=0, le=1, description="Largest errors/inferences of the new model"
    )
    max_p95_latency_ms: float | None = Field(None, gt=0, description="Largest reported p95 latency, ms")
    max_defect_rate_shift: float | None = Field(
        0.01,
        gt=0,
        le=1,
        description="Largest change of the defect rate versus before the update, either way (0.01 = 1 "
        "point); a change fails only once it is also beyond sampling noise",
    )
    max_confidence_drop: float | None = Field(
        None, gt=0, le=1, description="Largest drop of mean confidence versus before the update"
    )
    min_inferences: int = Field(
        0, ge=0, description="Health is judged once a gateway reports this many inferences"
    )
    min_defect_rate_parts: int = Field(
        5000,
        ge=50,
        le=HEALTH_HISTORY,
        description="Parts each side of the update must have seen before the defect-rate shift is "
        "judged; until the new model has, the gateway stays pending",
    )
    install_timeout_s: float = Field(
        600.0, gt=0, description="A gateway not installed after this counts as failed"
    )


class Target(BaseModel):
    """Which gateways: listed ids, plus those matching every given tag, line, site and CPU class filter."""

    model_config = ConfigDict(extra="forbid")

    gateways: list[str] = Field(default_factory=list, description="Gateway ids, always included")
    tags: list[str] = Field(default_factory=list, description="Gateways carrying all of these tags")
    line: str | None = Field(None, description="Gateways of this line")
    site: str | None = Field(None, description="Gateways of this site")
    cpu_class: list[str] = Field(
        default_factory=list,
        description="Gateways whose birth reports one of these CPU classes (exact names: "
        f"{', '.join(CPU_CLASSES)}; see protocol/machine.py)",
    )

    @field_validator("cpu_class")
    @classmethod
    def _known_cpu_classes(cls, value: list[str]) -> list[str]:
        # A misspelt class would match no gateway; saying so here names the right spellings.
        unknown = [name for name in value if name not in CPU_CLASSES]
        if unknown:
            raise ValueError(
                f"unknown CPU class {', '.join(map(repr, unknown))}; the classes are {', '.join(CPU_CLASSES)}"
            )
        return value

    @property
    def has_filters(self) -> bool:
        """Whether any tag/line/site/CPU class filter is set."""
        return bool(self.tags or self.line or self.site or self.cpu_class)


class ShadowGates(BaseModel):
    """What a promotion needs from the version's shadow run on every targeted gateway's slot.

    A rollout with gates is refused, naming each gate each gateway missed with its figures, unless
    the version shadowed the slot's serving model on every targeted gateway and its comparison
    records pass every gate that is on (a null limit turns a gate off).
    """

    model_config = ConfigDict(extra="forbid")

    min_frames: int = Field(500, ge=1, le=2**31 - 1, description="Least frames compared per gateway")
    max_flag_rate_shift: float | None = Field(
        0.05,
        ge=0,
        le=1,
        description="Defect models: largest difference between the share of frames each would flag",
    )
    min_agreement: float | None = Field(
        None, ge=0, le=1, description="Least share of compared frames with the same verdict"
    )
    max_p95_ratio: float | None = Field(
        2.0, gt=0, description="Largest challenger p95 latency over the champion's, on the same frames"
    )
    max_p95_ms: float | None = Field(None, gt=0, description="Largest challenger p95 latency, ms")
    max_error_rate: float | None = Field(
        0.0, ge=0, le=1, description="Largest share of frames the challenger raised on"
    )
    min_labelled_accuracy: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Defect models: least share of labelled disagreements the challenger got right",
    )
    min_labelled: int = Field(
        10, ge=1, le=100_000, description="Labelled disagreements min_labelled_accuracy needs per gateway"
    )


class RolloutCreate(BaseModel):
    """A request to roll ``model_name`` ``version`` out to ``target`` in ``waves``.

    Refused (422) when a targeted gateway's slot runs a version not below ``version`` of any model
    (gateways install only rising versions per slot; ``abort`` is how a rollout goes back).
    Gateways that already run ``version`` are accepted and named in a "notice" event of the
    rollout's log, which the response carries.
    """

    model_config = ConfigDict(extra="forbid")

    model_name: str = Field(description="Registered model name")
    version: str = Field(description="Registered version to roll out")
    slot: str | None = Field(
        None,
        min_length=1,
        description="Gateway model slot to update; left out: the slot where the targeted gateways "
        "run a model of this name, else the one slot running a model of its task",
    )
    target: Target
    waves: str = Field("1,10%,50%,100%", description="Cumulative wave sizes: counts or percentages")
    bake_s: float = Field(60.0, ge=0, description="How long a wave must stay healthy before the next starts")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    gates: ShadowGates | None = Field(
        None,
        description="A promotion: refused unless the version's shadow run on each targeted "
        "gateway passes these gates (the figures are in the rollout's log)",
    )

    @field_validator("waves")
    @classmethod
    def _check_waves(cls, value: str) -> str:
        wave_sizes(value, 100)
        return value


class GateValue(BaseModel):
    """One health gate of one gateway: what was measured next to the limit it is judged against."""

    gate: str = Field(description="Threshold name, e.g. 'max_error_rate'")
    measured: float | None = Field(description="Measured in the gateway's health window (None: not reported)")
    limit: float | None = Field(description="The rollout's threshold (None: this gate is off)")
    ok: bool | None = Field(description="Within the limit; None when not judged (yet)")
    now: float | None = Field(None, description="For shift gates: the new model's value")
    before: float | None = Field(None, description="For shift gates: the value before the update")
    note: str | None = Field(
        None, description="The defect-rate gate: what it judged on, or why it is not judged (yet)"
    )


class GatewayProgress(BaseModel):
    """Where one planned gateway of a rollout stands, with the measurements behind its status."""

    wave: int = Field(description="Wave number, from 1")
    status: str = Field(
        description="waiting, pending, installed, failed or unhealthy; for an ended rollout the frozen "
        "outcome, 'skipped' (its wave never started) or 'aborted' (ended before outcomes were kept); "
        "for an aborted one what the abort did: 'sent_back' (its previous version offered back), "
        "'left_as_is' (no previous version to offer), 'never_left' (it refused or failed the install) or "
        "'rolled_back' (its own health window had sent it back already)"
    )
    reason: str | None = Field(None, description="Why it failed or is unhealthy; what the abort did to it")
    at_abort: str | None = Field(
        None, description="Aborted rollouts: the status the gateway had when the rollout was aborted"
    )
    phase: str | None = Field(None, description="The slot's reported OTA phase")
    active_version: str | None = Field(None, description="Version the slot runs now")
    reported_at: datetime | None = Field(None, description="When the gateway last reported its state")
    gates: list[GateValue] = Field(
        default_factory=list, description="Health gates with measured values (started gateways only)"
    )


def wave_sizes(spec: str, total: int) -> list[int]:
    """Cumulative gateway counts per wave, e.g. '1,10%,100%' of 20 -> [1, 2, 20]; the last is all."""
    sizes: list[int] = []
    # The largest count and percentage so far: waves are cumulative, so a smaller one after a
    # larger one of the same kind is a mistake, not a wave (counts and percentages may mix).
    last = {"count": 0.0, "percentage": 0.0}
    for part in (p.strip() for p in spec.split(",")):
        kind = "percentage" if part.endswith("%") else "count"
        try:
            value = float(part[:-1]) if kind == "percentage" else int(part)
        except ValueError:
            raise ValueError(
                f"wave {part!r} in {spec!r} is neither a count nor a percentage like '10%'"
            ) from None
        if value <= 0:
            raise ValueError(f"wave {part!r} in {spec!r} must be positive")
        if value < last[kind]:
            raise ValueError(
                f"wave {part!r} in {spec!r} is smaller than an earlier {kind}: waves are cumulative "
                "(each says how many gateways run the new version by then), so they must grow"
            )
        last[kind] = value
        n = math.ceil(total * value / 100) if kind == "percentage" else int(value)
        n = min(n, total)
        if not sizes or n > sizes[-1]:
            sizes.append(n)
    if total and (not sizes or sizes[-1] < total):
        sizes.append(total)
    return sizes


class RolloutProgress(BaseModel):
    """How far a rollout got, counted over its planned gateways."""

    planned: int = Field(description="Gateways in the plan")
    started: int = Field(description="Gateways whose wave has started")
    installed: int | None = Field(
        None, description="Gateways running the new version healthily (None: aborted, rolled back)"
    )
    bad: int = Field(0, description="Gateways failed or unhealthy (ended rollouts: when they ended)")
    sent_back: int | None = Field(
        None, description="Aborted rollouts: gateways offered their previous version"
    )
    never_left: int | None = Field(
        None,
        description="Aborted rollouts: gateways that refused or failed the install, still on their version",
    )
    left_as_is: int | None = Field(
        None, description="Aborted rollouts: gateways with no previous version to offer back"
    )
    outcome: str | None = Field(None, description="Aborted rollouts: what the abort did, in a line")
