"""Shadow runs on the wire: how a challenger compared with the champion of its slot, per window.

A challenger is a release a gateway runs beside the model serving a slot (the champion), on the
same frames, after the champion; its outputs drive nothing. The gateway sums the comparison up
per window into a :class:`ShadowComparison` and sends it as a gateway event of kind
:data:`SHADOW_EVENT_KIND` through its durable outbox, with the record flattened into the event's
details (:meth:`ShadowComparison.details`, read back by :meth:`ShadowComparison.from_details`).

Why an event and not a message of its own: events already ride the outbox's acknowledged event
stream, are stored once by id and listed by the cloud, and a cloud that predates shadow runs
stores an unknown kind like any other event; a new message would need a channel, an outbox
stream and an ingest path on both sides before the first record could travel. Flat details also
let an alert rule read ``agreement`` as it reads any event's details.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, Field, model_validator

from protocol.captures import CaptureId
from protocol.messages import MAX_WIRE_INT, EventValue, Finite, ModelRef, Name, WireModel

# Gateway event kind of one window's comparison; details are ShadowComparison.details():
#   slot; champion_name, champion_version, champion_sha256 and the same for challenger_;
#   started_at, ended_at (ISO 8601); compared (frames both models ran), skipped (frames the
#   challenger did not run: over its time budget or the slot behind), challenger_errors (frames
#   of batches the challenger raised on), agreement (share of compared frames with the same
#   verdict; null when none was compared), disagreements; matrix ("good>good=8;good>scratch=4":
#   champion verdict > challenger verdict = frames); champion_scores, challenger_scores (frames
#   per score bin, SCORE_BINS equal bins over [0, 1], comma-separated); champion_p50_ms,
#   champion_p95_ms, challenger_p50_ms, challenger_p95_ms (per-frame latency: a micro-batch's
#   wall time over its frames); capture_id (the capture of the disagreeing frames, or null),
#   captured (frames offered to it).
SHADOW_EVENT_KIND = "shadow_comparison"
# Gateway event kind of a challenger's steps (install, verification, shadowing, removal, refusal).
# Details: slot, phase (protocol.ota.ChallengerPhase, or "removed"), revision, challenger_version,
# active_version. Starts with "ota" so the cloud lists it in the gateway's OTA history.
CHALLENGER_EVENT_KIND = "ota_challenger"
# A verdict per frame: a defect model's is_defect as these two words, other tasks' label.
VERDICT_DEFECT = "defect"
VERDICT_GOOD = "good"
SCORE_BINS = 10
Count = Annotated[int, Field(ge=0, le=MAX_WIRE_INT)]


class AgreementCell(WireModel):
    """Frames where the champion said ``champion`` and the challenger said ``challenger``."""

    champion: Name
    challenger: Name
    frames: Count


class ShadowComparison(WireModel):
    """One window of a shadow run on one slot."""

    slot: Name
    champion: ModelRef
    challenger: ModelRef
    started_at: AwareDatetime
    ended_at: AwareDatetime
    compared: Count
    skipped: Count
    challenger_errors: Count = 0
    matrix: tuple[AgreementCell, ...] = ()
    champion_scores: tuple[Count, ...] = Field(min_length=SCORE_BINS, max_length=SCORE_BINS)
    challenger_scores: tuple[Count, ...] = Field(min_length=SCORE_BINS, max_length=SCORE_BINS)
    champion_p50_ms: Finite | None = Field(default=None, ge=0)
    champion_p95_ms: Finite | None = Field(default=None, ge=0)
    challenger_p50_ms: Finite | None = Field(default=None, ge=0)
    challenger_p95_ms: Finite | None = Field(default=None, ge=0)
    capture_id: CaptureId | None = None
    captured: Count = 0

    @model_validator(mode="after")
    def _consistent(self) -> ShadowComparison:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        for name, total in (
            ("matrix", sum(c.frames for c in self.matrix)),
            ("champion_scores", sum(self.champion_scores)),
            ("challenger_scores", sum(self.challenger_scores)),
        ):
            if total != self.compared:
                raise ValueError(f"{name} counts {total} frames, compared is {self.compared}")
        pairs = [(c.champion, c.challenger) for c in self.matrix]
        if len(set(pairs)) != len(pairs):
            raise ValueError("matrix: each (champion, challenger) pair may appear once")
        return self

    @property
    def disagreements(self) -> int:
        """Compared frames whose verdicts differ."""
        return sum(c.frames for c in self.matrix if c.champion != c.challenger)

    @property
    def agreement(self) -> float | None:
        """Share of compared frames with the same verdict; None when nothing was compared."""
        return None if self.compared == 0 else 1.0 - self.disagreements / self.compared

    def details(self) -> dict[str, EventValue]:
        """The record as an event's flat details (see :data:`SHADOW_EVENT_KIND`)."""
        return {
            "slot": self.slot,
            **_ref_details("champion", self.champion),
            **_ref_details("challenger", self.challenger),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "compared": self.compared,
            "skipped": self.skipped,
            "challenger_errors": self.challenger_errors,
            "agreement": self.agreement,
            "disagreements": self.disagreements,
            "matrix": ";".join(f"{c.champion}>{c.challenger}={c.frames}" for c in self.matrix),
            "champion_scores": ",".join(str(n) for n in self.champion_scores),
            "challenger_scores": ",".join(str(n) for n in self.challenger_scores),
            "champion_p50_ms": self.champion_p50_ms,
            "champion_p95_ms": self.champion_p95_ms,
            "challenger_p50_ms": self.challenger_p50_ms,
            "challenger_p95_ms": self.challenger_p95_ms,
            "capture_id": self.capture_id,
            "captured": self.captured,
        }

    @classmethod
    def from_details(cls, details: dict[str, EventValue]) -> ShadowComparison:
        """Read a record back from an event's details (raises ValueError naming what is wrong)."""
        data: dict[str, object] = {k: v for k, v in details.items() if k not in _DERIVED}
        for role in ("champion", "challenger"):
            data[role] = {f: data.pop(f"{role}_{f}", None) for f in ("name", "version", "sha256")}
            data[f"{role}_scores"] = _ints(details.get(f"{role}_scores"), f"{role}_scores")
        data["matrix"] = [_cell(text) for text in str(details.get("matrix") or "").split(";") if text]
        return cls.model_validate(data)


_DERIVED = ("agreement", "disagreements")


def _ref_details(role: str, ref: ModelRef) -> dict[str, EventValue]:
    return {f"{role}_name": ref.name, f"{role}_version": ref.version, f"{role}_sha256": ref.sha256}


def _ints(value: EventValue, key: str) -> list[int]:
    try:
        return [int(n) for n in str(value).split(",")] if value not in (None, "") else []
    except ValueError:
        raise ValueError(f"{key}: expected comma-separated counts, got {value!r}") from None


def _cell(text: str) -> dict[str, object]:
    pair, _, frames = text.partition("=")
    champion, _, challenger = pair.partition(">")
    if not (champion and challenger and frames.isdigit()):
        raise ValueError(f"matrix: expected champion>challenger=frames, got {text!r}")
    return {"champion": champion, "challenger": challenger, "frames": int(frames)}
