"""API shapes of dispositions: what an operator sends, what the API answers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from protocol.messages import Name, Text

MAX_NOTE_CHARS = 1000


class DispositionKind(StrEnum):
    """An operator's verdict on a result."""

    CONFIRMED_DEFECT = "confirmed_defect"
    FALSE_REJECT = "false_reject"
    NEEDS_REVIEW = "needs_review"
    # The operator names the right label (a note's category), whether the model's was right or not:
    # these are the labelled examples a model's next training run learns from.
    LABELLED = "labelled"


# Verdicts on the model's flag: they say whether it was right, so only a flagged result takes one.
VERDICTS = frozenset({DispositionKind.CONFIRMED_DEFECT, DispositionKind.FALSE_REJECT})


class DispositionSet(BaseModel):
    """The disposition to give a result (replacing its current one, if any)."""

    model_config = ConfigDict(extra="forbid")

    disposition: DispositionKind = Field(
        description="confirmed_defect or false_reject (flagged results only), needs_review (any "
        "result), or labelled (a note, with true_label its right category)"
    )
    true_label: Name | None = Field(
        default=None, description="With labelled (and only then): the result's right label, a note's category"
    )
    note: Text | None = Field(
        default=None, max_length=MAX_NOTE_CHARS, description="Optional words of the operator"
    )

    @field_validator("note")
    @classmethod
    def _blank_is_none(cls, note: str | None) -> str | None:
        return note.strip() or None if note is not None else None


class DispositionBrief(BaseModel):
    """A result's current disposition, as results carry it."""

    model_config = ConfigDict(from_attributes=True)

    disposition: DispositionKind
    true_label: str | None = Field(None, description="The operator's label (labelled only)")
    note: str | None
    actor: str = Field(description="Who set it: 'user:<name>' for a user's token, 'token:<name>' for others")
    at: datetime = Field(description="When it was set")


class DispositionPublic(DispositionBrief):
    """A disposition with what re-teaching a model needs of its result."""

    result_id: UUID
    line: str
    gateway_id: str
    model_name: str
    model_version: str
    task: str = Field(
        description="The result's task (its output kind): defect, classification, parcel, notes"
    )
    label: str = Field(description="The label the model gave")
    captured_at: datetime = Field(description="When the result's input was captured")


class ReviewCounts(BaseModel):
    """Dispositions of a line's results captured in a range, and the false-reject rate they give."""

    reviewed: int = Field(0, description="Flagged results judged confirmed_defect or false_reject")
    false_rejects: int = Field(0, description="Of those, judged false_reject")
    false_reject_rate: float | None = Field(
        None, description="false_rejects / reviewed; null when none was reviewed"
    )
    needs_review: int = Field(0, description="Results marked needs_review (not in the rate)")
