"""The MQTT link: birth/will on the retained state topic, ack subscription, QoS 1 publishes with PUBACK wait."""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.config import MqttConfig
from protocol.messages import Ack, GatewayState, WireError, decode, encode
from protocol.topics import Channel, TopicSpace

log = logging.getLogger(__name__)

# CONNACK refusals that retrying cannot fix: MQTT 3.1.1 codes 4 and 5 (as v5 reason codes).
_FATAL_REFUSALS = {"Bad user name or password", "Not authorized"}


class MqttLink:
    """One paho client for the gateway; safe to publish from any thread."""

    def __init__(
        self,
        config: MqttConfig,
        gateway_id: str,
        topics: TopicSpace,
        birth: Callable[[], GatewayState],
        death: GatewayState,
        on_ack: Callable[[Ack], None],
        on_connection: Callable[[bool], None] | None = None,
        on_desired: Callable[[bytes], None] | None = None,
        on_captures: Callable[[bytes], None] | None = None,
    ) -> None:
        self.config = config
        self.gateway_id = gateway_id
        self._birth = birth
        self._death = death
        self._on_ack = on_ack
        self._on_connection = on_connection
        self._on_desired = on_desired
        self._on_captures = on_captures
        self.state_topic = topics.topic(gateway_id, Channel.STATE)
        self.ack_topic = topics.topic(gateway_id, Channel.ACK)
        self.desired_topic = topics.topic(gateway_id, Channel.DESIRED)
        self.captures_topic = topics.topic(gateway_id, Channel.CAPTURES)
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self.epoch = 0  # bumps on every successful (re)connect, so the publisher knows to rewind
        self.fatal_error: str | None = None
        self._stopping = False
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=config.client_id or gateway_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        if config.username is not None:
            client.username_pw_set(config.username, config.password())
        if config.use_tls:
            tls = config.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        # The will carries this run's session, so the cloud can tell a stale death from a fresh one.
        client.will_set(self.state_topic, encode(death), qos=1, retain=True)
        client.reconnect_delay_set(
            config.reconnect_min_s, max(config.reconnect_min_s, config.reconnect_max_s)
        )
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        self._client = client

    @property
    def connected(self) -> bool:
        """True between an accepted CONNACK and the next disconnect."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until connected or ``timeout``."""
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Connect in the background; paho reconnects with backoff after any drop."""
        log.info("mqtt: connecting to %s:%d as %s", self.config.host, self.config.port, self._client_id)
        self._client.connect_async(self.config.host, self.config.port, keepalive=self.config.keepalive_s)
        self._client.loop_start()

    @property
    def _client_id(self) -> str:
        return self.config.client_id or self.gateway_id

    def stop(self, death: GatewayState | None = None, timeout: float = 5.0) -> None:
        """Publish the retained death state (a clean disconnect never fires the will), then disconnect."""
        self._stopping = True
        if self.connected:
            ok = self.publish(
                self.state_topic, encode(death or self._death), qos=1, retain=True, timeout=timeout
            )
            if not ok:
                log.warning(
                    "mqtt: death state not acknowledged; the broker may still show this gateway online"
                )
        self._client.disconnect()
        self._client.loop_stop()
        # paho leaves its socket and wake-up socket pair to its finaliser; closed here, a stopped
        # link holds no descriptor, and a long-running process that restarts links leaks none.
        self._client._reset_sockets()
        self._set_connected(False)

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, timeout: float | None = None
    ) -> bool:
        """Publish; with QoS 1 wait for the PUBACK up to ``timeout``. Return whether it was confirmed."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.debug("mqtt: publish to %s not sent: %s", topic, mqtt.error_string(info.rc))
            return False
        if qos == 0:
            return True
        try:
            info.wait_for_publish(timeout if timeout is not None else self.config.publish_timeout_s)
        except (RuntimeError, ValueError) as exc:
            log.debug("mqtt: publish to %s failed: %s", topic, exc)
            return False
        return info.is_published()

    def _set_connected(self, value: bool) -> None:
        if value:
            self._connected.set()
        else:
            self._connected.clear()
        if self._on_connection is not None:
            self._on_connection(value)

    def _handle_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        if reason_code.is_failure:
            # Never mark a refused CONNACK as connected.
            self._set_connected(False)
            if str(reason_code) in _FATAL_REFUSALS:
                self.fatal_error = f"broker refused the credentials: {reason_code}"
                log.error("mqtt: %s; not retrying (fix the gateway's credentials)", self.fatal_error)
                client.disconnect()
            else:
                log.warning("mqtt: connection refused: %s; retrying", reason_code)
            return
        client.subscribe(self.ack_topic, qos=1)  # resubscribed on every connect: the session is clean
        if self._on_desired is not None:
            client.subscribe(self.desired_topic, qos=1)  # retained: the broker re-delivers the latest
        if self._on_captures is not None:
            client.subscribe(self.captures_topic, qos=1)  # retained too: orders wait for a gateway
        client.publish(self.state_topic, encode(self._birth()), qos=1, retain=True)
        with self._lock:
            self.epoch += 1
        self._set_connected(True)
        log.info("mqtt: connected to %s:%d (epoch %d)", self.config.host, self.config.port, self.epoch)

    def _handle_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        was = self.connected
        self._set_connected(False)
        if was and not self._stopping:
            log.warning("mqtt: disconnected (%s); paho reconnects with backoff", reason_code)

    def republish_birth(self) -> bool:
        """Publish the birth again (after a model swap, so the retained state lists the active models)."""
        if not self.connected:
            return False  # the next connect publishes a fresh birth anyway
        return self.publish(self.state_topic, encode(self._birth()), qos=1, retain=True, timeout=0)

    def _handle_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        # An exception escaping a callback ends paho's network thread for good: no reconnect, no
        # PUBACK, the gateway cut off while it runs (seen with a full disk under the outbox, whose
        # ack could not commit). Whatever a handler raises is logged and the link carries on; a
        # missed ack is covered by the next one, which is cumulative.
        try:
            self._dispatch(message)
        except Exception:
            log.exception("mqtt: handling a message on %s failed; the link carries on", message.topic)

    def _dispatch(self, message: mqtt.MQTTMessage) -> None:
        if message.topic == self.desired_topic and self._on_desired is not None:
            self._on_desired(bytes(message.payload))
            return
        if message.topic == self.captures_topic and self._on_captures is not None:
            self._on_captures(bytes(message.payload))
            return
        if message.topic != self.ack_topic:
            log.debug("mqtt: ignoring message on %s", message.topic)
            return
        try:
            ack = decode(Ack, bytes(message.payload))
        except WireError as exc:
            log.warning("mqtt: bad ack on %s: %s", message.topic, exc.reason)
            return
        if ack.gateway_id != self.gateway_id:
            log.warning("mqtt: ack for gateway %s on my topic %s ignored", ack.gateway_id, message.topic)
            return
        self._on_ack(ack)
