"""Where capture files live: a content-addressed store of their own, beside the model artifacts.

Model artifacts are public by hash (``/api/v1/blobs``); frames of a plant's parts are not, so they
are kept under another folder (or S3 prefix) that only the datasets API reads.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from cloud.config import CloudSettings
from cloud.registry.store import ArtifactStore, make_store

CAPTURES_FOLDER = "captures"


def make_capture_store(settings: CloudSettings) -> ArtifactStore:
    """The capture store: ``<artifact_dir>/captures``, or ``<s3_prefix>captures/`` in the bucket."""
    return make_store(
        settings.model_copy(
            update={
                "artifact_dir": str(Path(settings.artifact_dir) / CAPTURES_FOLDER),
                "s3_prefix": f"{settings.s3_prefix}{CAPTURES_FOLDER}/",
            }
        )
    )


def capture_store(request: Request) -> ArtifactStore:
    """The app's capture store."""
    store: ArtifactStore = request.app.state.capture_store
    return store
