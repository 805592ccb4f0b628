"""The publisher sends the event stream before results, and each stream's ack reaches its stream."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from edge_agent.agent import Agent
from edge_agent.outbox import EventDraft, Outbox
from protocol.topics import Channel, TopicSpace
from tests.support.agent import agent_config, build_model, write_frames
from tests.support.fake_cloud import FakeCloud
from tests.support.outbox import result_drafts
from tests.support.waiting import wait_for


class OrderedCloud(FakeCloud):
    """A fake cloud that also records the channel of every results/events message, in order."""

    def __init__(self, broker: tuple[str, int], topics: TopicSpace, gateway_id: str) -> None:
        self.order: list[Channel] = []
        self._order_lock = threading.Lock()
        super().__init__(broker, topics, gateway_id, ack=True)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        channel = self.topics.parse(msg.topic).channel
        if channel in (Channel.RESULTS, Channel.EVENTS):
            with self._order_lock:
                self.order.append(channel)
        super()._on_message(client, userdata, msg)


def test_held_events_go_out_before_held_results_and_both_streams_are_acked(
    tmp_path: Path, mosquitto: tuple[str, int], topic_space: TopicSpace
) -> None:
    manifest = build_model(tmp_path / "model")
    frames = tmp_path / "frames"
    write_frames(frames, [10])  # one frame: a tenth result, sent after the held ones
    config = agent_config(tmp_path, mosquitto, topic_space, manifest, frames)
    # What a gateway holds after an outage: results first in time, then two alarms.
    box = Outbox(config.state_dir / "outbox.db", config.outbox.max_bytes)
    box.append(result_drafts(9))
    box.append_events([EventDraft(kind="ota", level="error", message=f"alarm {i}") for i in range(4)])
    box.close()
    cloud = OrderedCloud(mosquitto, topic_space, "gw-test")
    agent = Agent(config)
    try:
        agent.start()
        wait_for(lambda: agent.outbox.acked_seq == 10, 15, "every result acked")
        wait_for(lambda: agent.outbox.total_stats() == (0, 0), 15, "both streams acked and emptied")
        # batch_items is 3: four events make two batches, nine results three.
        assert cloud.order[:2] == [Channel.EVENTS, Channel.EVENTS]
        assert cloud.order[2:5] == [Channel.RESULTS] * 3
        assert agent.outbox.events.acked_seq == 4
        assert [json.loads(e)["message"] for e in cloud.events] == [f"alarm {i}" for i in range(4)]
    finally:
        agent.stop()
        cloud.close()
