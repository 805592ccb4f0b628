"""Settings of every cloud process: one pydantic model built in ``main()`` and passed down.

:func:`settings_from_environment` maps ``FACTORY_*`` variables (and the CLI's flags) onto the
model; it reads only the mapping it is given, so tests construct settings directly, with no
environment tricks. ``cloud.cli`` and the stock ``celery -A cloud.celery_app`` entry both use it.

A refused setting is reported without its value (``hide_input_in_errors``, and URLs shown
without their password), so a mistyped secret never lands in a terminal or a log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from protocol.signing import SignatureError, load_private_key
from protocol.topics import TOPIC_ROOT, TopicSpace

ENV_PREFIX = "FACTORY_"
# Settings given as comma-separated lists in the environment; the CLI has no flag for them.
LIST_FIELDS = frozenset({"trusted_keys"})
# Values copied from examples and templates; a production deployment must replace them.
PLACEHOLDER_SECRETS = frozenset({"", "changeme", "changethis", "password", "secret", "admin", "demo"})


def shown_url(url: str) -> str:
    """``url`` fit for a message: any password in it replaced by ``***``."""
    parts = urlsplit(url)
    try:
        password = parts.password
    except ValueError:
        password = None
    if password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the MQTT broker listens, parsed from ``broker_url``."""

    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://host[:port]`` or ``mqtts://host[:port]``; raise ValueError naming the problem
    (and showing the URL without any password in it)."""
    parts = urlsplit(url)
    shown = shown_url(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"broker URL {shown!r}: scheme must be mqtt:// or mqtts://, not {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError(f"broker URL {shown!r} has no host")
    if "@" in parts.netloc:
        raise ValueError(f"broker URL {shown!r}: pass credentials as broker_username/broker_password")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"broker URL {shown!r}: {exc}") from None
    return BrokerAddress(parts.hostname, port, tls)


class CloudSettings(BaseModel):
    """Configuration shared by the API, the ingest worker and the Celery worker."""

    # hide_input_in_errors: a refused value may be a secret (a password, a URL holding one).
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    profile: Literal["demo", "production"] = Field(
        "demo", description="'demo' allows insecure defaults; 'production' refuses placeholder secrets"
    )
    db_url: str = Field(
        "sqlite:///var/cloud.db", description="SQLAlchemy database URL (SQLite or PostgreSQL)"
    )
    db_wait_s: float = Field(
        30.0, ge=0, description="How long start-up waits for the database before giving up, seconds"
    )
    broker_url: str = Field("mqtt://127.0.0.1:1883", description="MQTT broker, mqtt:// or mqtts:// (TLS)")
    broker_username: str | None = Field(None, description="MQTT username of the cloud services")
    broker_password: SecretStr | None = Field(None, description="MQTT password of the cloud services")
    broker_ca_file: str | None = Field(None, description="CA bundle for mqtts://; system CAs when unset")
    topic_root: str = Field(TOPIC_ROOT, description="Topic root the gateways publish under")
    share_group: str | None = Field(
        "ingest",
        description="MQTT shared-subscription group splitting traffic between ingest workers; "
        "empty for a plain subscription (the embedded amqtt broker ignores $share)",
    )
    ingest_client_id: str | None = Field(
        None,
        description="MQTT client id of this ingest worker (persistent session); unique per worker. "
        "Defaults to factory-ingest-<hostname>",
    )
    ingest_session_expiry_s: int = Field(
        60,
        ge=0,
        le=7 * 24 * 3600,
        description="With a share group: how long the broker keeps a disconnected worker's session. "
        "Meanwhile it queues that worker's share of the traffic (a restart under the same client id "
        "gets it); after it the worker leaves the group and the others take its share",
    )
    ingest_batch_size: int = Field(
        500, ge=1, le=10_000, description="Most messages committed per transaction"
    )
    ingest_max_wait_ms: int = Field(
        10,
        ge=1,
        le=60_000,
        description="How long a drain waits for more messages once the queue runs dry, ms (under load "
        "batches fill from the queue without waiting, so this mostly bounds latency when idle)",
    )
    ingest_queue_size: int = Field(
        20_000, ge=1, description="Messages buffered between the MQTT callback and the DB writer"
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve the ingest worker's Prometheus /metrics on this port"
    )
    api_host: str = Field("127.0.0.1", description="Address the HTTP API binds to")
    api_port: int = Field(8000, ge=0, le=65535, description="Port the HTTP API listens on")
    api_docs: bool | None = Field(
        None,
        description="Serve the OpenAPI docs (/docs, /redoc, /openapi.json); unset: on in the demo "
        "profile, off in production",
    )
    api_metrics: bool | None = Field(
        None,
        description="Serve the API's Prometheus /metrics (no token: keep it off networks that should "
        "not see request counts); unset: on in the demo profile, off in production",
    )
    max_artifact_bytes: int = Field(
        4 << 30, ge=1, description="Largest model file the registry accepts for upload, bytes"
    )
    migrate_on_start: bool = Field(
        True, description="Wait for the database and apply migrations when the API or ingest starts"
    )
    celery_broker_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker URL")
    celery_queue_dir: str = Field(
        "var/celery-queue",
        description="Folder of the queue when celery_broker_url is filesystem:// (the embedded demo: "
        "a real worker and beat with no Redis)",
    )
    celery_result_backend: str | None = Field(None, description="Celery result backend URL; none when unset")
    retention_days: int = Field(90, ge=1, description="Results and dead letters older than this are deleted")
    artifact_store: Literal["local", "s3"] = Field(
        "local", description="Where model artifacts live: a local folder or an S3-compatible bucket"
    )
    artifact_dir: str = Field("var/artifacts", description="Folder of the local artifact store")
    s3_bucket: str | None = Field(None, description="Bucket of the S3 artifact store")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint (MinIO...); AWS when unset")
    s3_prefix: str = Field("artifacts/", description="Key prefix of artifacts in the bucket")
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL gateways reach the API at; artifact URLs in desired states start with it",
    )
    trusted_keys: list[str] = Field(
        default_factory=list,
        description="Public key PEM files the registry checks uploads against, to warn early "
        "(gateways enforce their own trust store; the cloud holds a private key only when "
        "training_signing_key is set)",
    )
    training_signing_key: str | None = Field(
        None,
        description="Ed25519 private key PEM the Celery worker signs console-taught candidates with, "
        "which then enter the registry; unset: a taught candidate awaits an engineer's signature "
        "(factoryctl runs download, then models push). Set only where the worker's disk is trusted",
    )
    rollout_tick_s: float = Field(5.0, gt=0, description="How often Celery beat advances rollouts, seconds")
    desired_signing_key: str | None = Field(
        None,
        description="Ed25519 private key PEM the cloud signs gateways' desired states with (gateways "
        "pin its public key, ota.desired_keys); API and worker need the same file. Unset: "
        "desired-signing.pem beside artifact_dir, made on first use",
    )
    desired_ttl_h: float = Field(
        168.0,
        gt=0,
        le=24 * 366,
        description="Hours a signed desired state stays valid; the rollout tick re-signs each one "
        "halfway through, so a statement held back longer than this is reported stale",
    )
    demo_control_url: str | None = Field(
        None,
        description="Demo profile only: the simulator control endpoint of `factory-sim demo`, which sets "
        "it; the Line page then offers admins a 'Demo: change look' control for the simulated cameras",
    )

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str) -> str:
        parse_broker_url(value)
        return value

    @field_validator("topic_root")
    @classmethod
    def _check_topic_root(cls, value: str) -> str:
        TopicSpace(value)
        return value

    @field_validator("share_group")
    @classmethod
    def _empty_means_none(cls, value: str | None) -> str | None:
        if value is not None and any(ch in value for ch in "/+#"):
            raise ValueError(f"share group {value!r} must be one plain topic level")
        return value or None

    @field_validator("training_signing_key", "desired_signing_key")
    @classmethod
    def _check_signing_key(cls, value: str | None, info: ValidationInfo) -> str | None:
        if not value:
            return None
        # Refused at start-up, not at the first signature: a key that cannot sign would
        # otherwise fail every run or rollout hours later.
        try:
            load_private_key(Path(value))
        except SignatureError as exc:
            raise ValueError(f"{info.field_name}: {exc}") from None
        return value

    @field_validator("demo_control_url")
    @classmethod
    def _check_demo_control_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"demo control URL {shown_url(value)!r} must be http://HOST:PORT")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _production_is_locked_down(self) -> CloudSettings:
        if self.profile != "production":
            return self
        problems = []
        if self.demo_control_url is not None:
            problems.append("demo_control_url is a demo-profile setting (it switches simulated cameras)")
        password = self.broker_password.get_secret_value() if self.broker_password else ""
        if not self.broker_username or password.lower() in PLACEHOLDER_SECRETS:
            problems.append("broker_username/broker_password must be set to real credentials")
        if not self.broker.tls:
            problems.append("broker_url must use mqtts:// (TLS)")
        db_password = urlsplit(self.db_url).password
        if db_password is not None and db_password.lower() in PLACEHOLDER_SECRETS:
            problems.append("db_url carries a placeholder password")
        if problems:
            raise ValueError("production profile: " + "; ".join(problems))
        return self

    @property
    def serves_docs(self) -> bool:
        """Whether the API serves its OpenAPI docs (``api_docs``, else the profile's default)."""
        return self.api_docs if self.api_docs is not None else self.profile == "demo"

    @property
    def serves_metrics(self) -> bool:
        """Whether the API serves ``/metrics`` (``api_metrics``, else the profile's default)."""
        return self.api_metrics if self.api_metrics is not None else self.profile == "demo"

    @property
    def broker(self) -> BrokerAddress:
        """The parsed broker address."""
        return parse_broker_url(self.broker_url)

    @property
    def topics(self) -> TopicSpace:
        """The topic space this deployment uses."""
        return TopicSpace(self.topic_root)


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return ENV_PREFIX + field.upper()


def settings_from_environment(
    environ: Mapping[str, str], flags: Mapping[str, Any] | None = None
) -> CloudSettings:
    """Build settings: explicit ``flags`` win over ``FACTORY_*`` variables, which win over defaults."""
    values: dict[str, Any] = {}
    for field in CloudSettings.model_fields:
        flag = (flags or {}).get(field)
        if flag is not None:
            values[field] = flag
        elif env_name(field) in environ:
            raw = environ[env_name(field)]
            values[field] = [v for v in raw.split(",") if v] if field in LIST_FIELDS else raw
    return CloudSettings.model_validate(values)
