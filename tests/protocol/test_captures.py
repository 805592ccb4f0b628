"""The capture wire contract: a manifest says what it holds consistently, or is refused naming why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from protocol.captures import CaptureManifest, CaptureOrders
from protocol.messages import WireError, decode, encode
from tests.support.captures import manifest, order, png_files


def test_a_manifest_and_an_orders_document_round_trip_on_the_wire() -> None:
    found = manifest("cap-0123456789ab", "gw-1", [f for f, _ in png_files(2)])
    assert decode(CaptureManifest, encode(found)) == found
    document = CaptureOrders(gateway_id="gw-1", revision=3, orders=(order("cap-0123456789ab"),),
                             issued_at=found.started_at)  # fmt: skip
    assert decode(CaptureOrders, encode(document)) == document


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"requested": 3, "status": "complete"}, "status complete with 2 of 3 frames"),
        ({"requested": 1}, "files: 2 files, more than the 1 requested"),
        ({"status": "refused", "reason": "no slot"}, "a refused capture holds no files"),
        ({"requested": 3, "status": "stopped", "reason": None}, "status stopped: a reason is required"),
        ({"capture_id": "cap-XYZ"}, "String should match pattern"),
    ],
)
def test_an_inconsistent_manifest_is_refused_naming_why(change: dict[str, object], reason: str) -> None:
    files = [f for f, _ in png_files(2)]
    capture_id = str(change.pop("capture_id", "cap-0123456789ab"))
    requested = change.pop("requested", None)
    with pytest.raises(ValidationError, match=reason):
        manifest(capture_id, "gw-1", files, requested=requested, **change)  # type: ignore[arg-type]


def test_the_same_file_name_twice_is_refused() -> None:
    [(file, _)] = png_files(1)
    with pytest.raises(ValidationError, match="each name may appear once"):
        manifest("cap-0123456789ab", "gw-1", [file, file], requested=2)


def test_an_orders_document_of_revision_0_is_a_wire_error_naming_the_field() -> None:
    payload = b'{"schema_version": 1, "gateway_id": "gw-1", "revision": 0, "orders": [], "issued_at": "2026-01-01T00:00:00Z"}'
    with pytest.raises(WireError, match="revision"):
        decode(CaptureOrders, payload)
