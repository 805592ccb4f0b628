"""Result drafts for the outbox's tests."""

from __future__ import annotations

import uuid

from edge_agent.outbox import ResultDraft
from protocol.messages import DefectOutput, ModelRef, utcnow

MODEL = ModelRef(name="m", version="1.0.0", sha256="0" * 64)


def result_drafts(n: int, frame_prefix: str = "f") -> list[ResultDraft]:
    now = utcnow()
    return [
        ResultDraft(
            id=uuid.uuid4(),
            captured_at=now,
            inferred_at=now,
            line="line-1",
            station="main",
            source="cam",
            frame=f"{frame_prefix}{i}",
            model=MODEL,
            output=DefectOutput(label="good", is_defect=False, score=0.9),
            latency_ms=1.0,
        )
        for i in range(n)
    ]
