"""Captures on the wire: bounded, named sets of frames a gateway keeps and uploads as a dataset.

Two documents:

- :class:`CaptureOrders` (cloud -> gateway, retained on ``<gw>/captures``): every capture the cloud
  asked of this gateway that it has not registered yet. Retained like the desired state, so a
  gateway offline when the operator asked finds the order when it returns. It has a channel of
  its own rather than a section of :class:`protocol.ota.DesiredState`: the desired revision is
  the OTA client's retry key (a release refused at revision N is tried again at N + 1), so
  bumping it for a capture would retry refused models, and an agent that predates captures
  refuses a desired state with unknown keys, which would stop its OTA updates.
- :class:`CaptureManifest` (gateway -> cloud, HTTP): what the gateway captured, with the SHA-256 of
  every file; the gateway writes it beside the frames and registers it once the cloud holds every
  file. The dataset the cloud keeps is this manifest plus labels.

Frames are PNG: a re-fit learns what a normal part looks like pixel by pixel, and JPEG's 8x8 blocks
and chroma subsampling move exactly the texture and colour statistics an anomaly model compares
(a JPEG camera path alone moves the simulator's colour tint by half an interquartile range,
``edge_agent/runtime/drift.py``). A camera's own compression happened once already; a second,
lossy one would be added by the capture itself.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, model_validator

from protocol.messages import SCHEMA_VERSION, GatewayId, ModelRef, Name, Sha256Hex, Text, WireModel

CAPTURE_ID_PATTERN = r"^cap-[0-9a-f]{12,32}$"
CaptureId = Annotated[str, Field(pattern=CAPTURE_ID_PATTERN, description="cap- and 12-32 lower-case hex")]
# A frame file inside a capture: its 1-based number, zero-padded, and the format's suffix.
FileName = Annotated[str, Field(pattern=r"^[0-9]{6}\.png$", description="NNNNNN.png")]
CAPTURE_FORMAT: Literal["png"] = "png"
MAX_CAPTURE_FRAMES = 1000
# What a label may be on a dataset's file: good, skip, or a defect kind (a model label's shape).
LABEL_GOOD = "good"
LABEL_SKIP = "skip"
# Gateway event kind of a capture's steps. Details: capture_id, slot, step (one of CAPTURE_STEPS),
# frames (captured so far), bytes, and on refusal or stop, reason. 'rejected': the cloud refused the
# registration for good (the capture stays on the gateway's disk).
CAPTURE_EVENT_KIND = "capture"
CAPTURE_STEPS: tuple[str, ...] = ("started", "complete", "stopped", "refused", "uploaded", "rejected")
# shadow: a shadow run's window, the frames where champion and challenger disagree (protocol/shadow.py).
CaptureOrigin = Literal["operator", "drift", "shadow"]
# complete: every requested frame; stopped: fewer, and ``reason`` says why (the byte cap, the
# store full, the agent's model slot gone); refused: none at all, ``reason`` says why.
CaptureStatus = Literal["complete", "stopped", "refused"]


class CaptureOrder(WireModel):
    """One capture the cloud asks of a gateway: the next ``frames`` frames of ``slot``."""

    capture_id: CaptureId
    slot: Name
    frames: int = Field(ge=1, le=MAX_CAPTURE_FRAMES)
    label: Name | None = Field(default=None, description="What the operator says the parts are, e.g. good")
    note: Text | None = Field(default=None, max_length=500, description="Why: 'the line runs good parts'")
    max_bytes: int = Field(ge=1, description="Bytes of frames at most; the capture stops there")
    requested_by: Text = Field(max_length=128)
    requested_at: AwareDatetime


class CaptureOrders(WireModel):
    """Every open capture order of one gateway. ``revision`` only ever grows."""

    schema_version: Literal[1] = SCHEMA_VERSION
    gateway_id: GatewayId
    revision: int = Field(ge=1)
    orders: tuple[CaptureOrder, ...] = Field(max_length=100)
    issued_at: AwareDatetime


class CaptureFile(WireModel):
    """One captured frame: its file, hash and size, and what the model said of it."""

    name: FileName
    sha256: Sha256Hex
    size_bytes: int = Field(ge=1)
    captured_at: AwareDatetime
    source: Name
    frame: Text = Field(max_length=256, description="The source's reference of the frame")
    model_label: Name | None = None
    score: float | None = None


class CaptureManifest(WireModel):
    """A finished capture: the dataset's facts and the hash of every file."""

    schema_version: Literal[1] = SCHEMA_VERSION
    capture_id: CaptureId
    gateway_id: GatewayId
    line: Name
    station: Name
    slot: Name
    origin: CaptureOrigin
    label: Name | None = None
    note: Text | None = Field(default=None, max_length=500)
    requested_by: Text = Field(max_length=128)
    requested_frames: int = Field(ge=1, le=MAX_CAPTURE_FRAMES)
    max_bytes: int = Field(ge=1)
    status: CaptureStatus
    reason: Text | None = Field(default=None, max_length=2000)
    started_at: AwareDatetime
    ended_at: AwareDatetime
    model: ModelRef | None = Field(default=None, description="What served the slot when the capture began")
    format: Literal["png"] = CAPTURE_FORMAT
    files: tuple[CaptureFile, ...] = Field(max_length=MAX_CAPTURE_FRAMES)

    @model_validator(mode="after")
    def _consistent(self) -> CaptureManifest:
        names = [f.name for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError("files: each name may appear once")
        if len(self.files) > self.requested_frames:
            raise ValueError(
                f"files: {len(self.files)} files, more than the {self.requested_frames} requested"
            )
        if self.status == "complete" and len(self.files) != self.requested_frames:
            raise ValueError(
                f"status complete with {len(self.files)} of {self.requested_frames} frames; "
                "a capture with fewer is 'stopped'"
            )
        if self.status == "refused" and self.files:
            raise ValueError("status refused: a refused capture holds no files")
        if self.status != "complete" and not self.reason:
            raise ValueError(f"status {self.status}: a reason is required")
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        return self

    @property
    def bytes(self) -> int:
        """Bytes of all files."""
        return sum(f.size_bytes for f in self.files)
