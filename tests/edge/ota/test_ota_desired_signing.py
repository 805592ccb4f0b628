"""Attacks on the desired-state channel, against a real agent on the real Mosquitto: anyone who can
publish on the broker replays, edits, holds back or forges desired states. Each attack is refused
and reported (the retained report's ``refused`` and an ``ota_refused`` event), and the model the
gateway served before keeps serving."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from edge_agent.agent import Agent
from protocol.messages import encode, utcnow
from protocol.ota import DesiredState
from protocol.signing import key_id
from protocol.topics import TopicSpace
from tests.support.ota_kit import GW, Rig, Signer, signed_desired
from tests.support.waiting import wait_for


def _installed(rig: Rig, version: str) -> None:
    wait_for(
        lambda: rig.cloud.phase() == "committed" and rig.agent.runners[0].manifest.version == version,
        30,
        f"{version} committed",
    )


def _assert_refused(rig: Rig, reason: str, revision: int, serving: str) -> None:
    """The statement of ``revision`` was refused for ``reason``, said so twice, and ``serving`` serves."""
    wait_for(
        lambda: any(
            e["details"]["reason"] == reason and e["details"]["revision"] == revision
            for e in rig.cloud.events_of("ota_refused")
        ),
        15,
        f"an ota_refused event ({reason}, revision {revision})",
    )
    wait_for(
        lambda: (refused := rig.cloud.reported[-1].refused) is not None and refused.revision == revision,
        10,
        "the refusal in the retained report",
    )
    report = rig.cloud.reported[-1]
    assert report.refused is not None
    assert report.refused.reason == reason, report.refused
    assert rig.agent.runners[0].manifest.version == serving
    mark = utcnow()
    wait_for(lambda: len(rig.cloud.fresh(mark)) >= 5, 10, "results after the refusal")
    assert rig.cloud.versions_since(mark) == {serving}


def test_a_replayed_rollback_statement_does_not_take_the_gateway_back(rig: Rig) -> None:
    """The attack: an old, validly signed statement (a rollback to 1.1.0, allow_downgrade set) is
    published again after the gateway moved on to 1.2.0. Refused as replayed; 1.2.0 serves."""
    rig.start()
    older = rig.signer.offer(rig.release("1.1.0"), rig.server, allow_downgrade=True)
    replayable = rig.cloud.desire(older)
    _installed(rig, "1.1.0")
    rig.cloud.desire(rig.signer.offer(rig.release("1.2.0"), rig.server))
    _installed(rig, "1.2.0")
    rig.cloud.publish_desired(encode(replayable))
    _assert_refused(rig, "replayed", replayable.revision, "1.2.0")
    assert rig.cloud.reported[-1].desired_revision == 2


def test_a_forged_allow_downgrade_breaks_the_signature(rig: Rig) -> None:
    """The attack: a signed statement offering an older release is edited to allow the downgrade
    and given a higher revision. Refused as forged; 1.0.0 serves."""
    rig.start()
    honest = signed_desired(
        rig.cloud_signer, GW, 1, {"defect": rig.signer.offer(rig.release("0.9.0"), rig.server)}
    )
    forged_offer = honest.slots["defect"].model_copy(update={"allow_downgrade": True})
    forged = honest.model_copy(update={"slots": {"defect": forged_offer}, "revision": 7})
    rig.cloud.publish_desired(encode(forged))
    _assert_refused(rig, "forged", 7, "1.0.0")
    assert "does not match desired revision 7" in rig.cloud.reported[-1].refused.message  # type: ignore[union-attr]


def test_an_expired_statement_is_reported_stale_not_applied(rig: Rig) -> None:
    """The attack (freeze): a statement held back past its expiry is delivered late. Reported
    stale; 1.0.0 serves, and a fresh statement of the same content is then acted on."""
    rig.start()
    offer = rig.signer.offer(rig.release("1.1.0"), rig.server)
    held_back = signed_desired(rig.cloud_signer, GW, 1, {"defect": offer}, valid_for=timedelta(seconds=-1))
    rig.cloud.publish_desired(encode(held_back))
    _assert_refused(rig, "stale", 1, "1.0.0")
    rig.cloud.revision = 1
    rig.cloud.desire(offer)
    _installed(rig, "1.1.0")
    assert rig.cloud.reported[-1].refused is None


def test_an_unsigned_statement_is_refused(rig: Rig) -> None:
    """The attack: a desired state without a signature, as the cloud published before signing."""
    rig.start()
    offer = rig.signer.offer(rig.release("1.1.0"), rig.server)
    bare = DesiredState(gateway_id=GW, revision=3, slots={"defect": offer}, issued_at=utcnow())
    rig.cloud.publish_desired(encode(bare))
    _assert_refused(rig, "unsigned", 3, "1.0.0")


def test_the_revision_acted_on_survives_a_restart_so_a_replay_after_it_is_refused(rig: Rig) -> None:
    """The fault, then the attack: the agent restarts (its revision counter used to start again at
    0), and a statement older than the one it acted on is replayed. Refused; 1.1.0 serves."""
    rig.start()
    rollback = rig.cloud.desire(rig.signer.offer(rig.release("0.9.0"), rig.server, allow_downgrade=True))
    _installed(rig, "0.9.0")
    rig.cloud.desire(rig.signer.offer(rig.release("1.1.0"), rig.server))
    _installed(rig, "1.1.0")
    rig.agent.stop()
    rig.cloud.clear_desired()
    rig.agent = Agent(rig.config)
    rig.agent.start()
    wait_for(lambda: rig.cloud.reported[-1].desired_revision == 2, 15, "the restarted agent's report")
    rig.cloud.publish_desired(encode(rollback))
    _assert_refused(rig, "replayed", 1, "1.1.0")


def test_a_rotated_desired_key_is_accepted_and_the_revoked_one_refused(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    """Rotation: the gateway pins the old and the new cloud key and revokes the old one. A
    statement by the new key is acted on; one by the revoked key, and one by a key it never
    pinned, are refused as forged, and the release installed under the new key serves."""
    old = Signer(tmp_path / "keys", "cloud-old")
    rig = Rig(tmp_path, mosquitto, topic_space, desired_revoked_keys=[key_id(old.key.public_key())])
    rig.config.ota.desired_keys.append(old.pem)
    rig.agent = Agent(rig.config)
    try:
        rig.start()
        rig.cloud.desire(rig.signer.offer(rig.release("1.1.0"), rig.server))  # the new key (rig's own)
        _installed(rig, "1.1.0")
        newer = {"defect": rig.signer.offer(rig.release("1.2.0"), rig.server)}
        rig.cloud.publish_desired(encode(signed_desired(old, GW, 2, newer)))
        _assert_refused(rig, "forged", 2, "1.1.0")
        assert "is revoked" in rig.cloud.reported[-1].refused.message  # type: ignore[union-attr]
        stranger = Signer(tmp_path / "keys", "stranger")
        rig.cloud.publish_desired(encode(signed_desired(stranger, GW, 3, newer)))
        _assert_refused(rig, "forged", 3, "1.1.0")
        assert "is not trusted" in rig.cloud.reported[-1].refused.message  # type: ignore[union-attr]
    finally:
        rig.close()
