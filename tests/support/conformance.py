"""Schemathesis over the API's own OpenAPI document, in-process, as one role.

Every phase a ``schemathesis run`` has (examples, coverage, fuzzing, and the stateful phase that
chains calls through the links it infers), every check, a fixed seed and a bounded number of
examples per operation, so a run is repeatable and takes a bounded time. What it finds comes back
as :class:`Finding` values, one per operation, check and kind of failure, each with a curl line
that repeats it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from fastapi import FastAPI
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

SEED = 20260714
# Examples per operation and phase: with every phase about 3,500 requests per role, about a
# minute each on a loaded 2-core machine.
MAX_EXAMPLES = 15
# Steps of one stateful scenario (a chain of calls that feed each other's answers).
MAX_STATEFUL_STEPS = 6
# A rule the code applies to a well-formed request (a range whose start is after its end, a
# disposition on an unflagged result) refuses it with a 422 whose detail says which rule: a
# string, or validation issues of type 'value_error' (raised by the models' own validators); a
# limit the plant configures (the registry's largest file) with a 413 saying so. Any other
# refusal of a request the schema allows means the schema promises what the code refuses.
RULE_ISSUE_TYPE = "value_error"


@dataclass(frozen=True)
class Finding:
    """One kind of failure of one check on one operation (``operation`` is "Stateful tests" for
    a failure of a chain of calls)."""

    operation: str
    check: str
    title: str
    message: str
    reproduce: str

    def __str__(self) -> str:
        return f"{self.operation} [{self.check}] {self.title}: {self.message}\n    {self.reproduce}"


@dataclass
class ConformanceRun:
    """How many requests a run sent and what it found."""

    cases: int = 0
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)

    def report(self) -> str:
        return "\n".join(str(found) for found in self.findings.values())


def is_rule_refusal(status: int, body: bytes) -> bool:
    """Whether a refusal names a rule of the code (a 422) or a limit the plant configured (a 413
    of a declared size), rather than a field the schema mis-describes."""
    if status not in (413, 422):
        return False
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return False
    if isinstance(detail, str):
        return True
    return status == 422 and (
        isinstance(detail, list)
        and bool(detail)
        and all(isinstance(issue, dict) and issue.get("type") == RULE_ISSUE_TYPE for issue in detail)
    )


@schemathesis.check
def positive_data_acceptance_beside_rules(ctx: Any, response: Any, case: Any) -> bool | None:
    """Schemathesis' ``positive_data_acceptance``, except that a request the schema allows may be
    refused by a rule the schema cannot state (see :data:`RULE_ISSUE_TYPE`)."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if is_rule_refusal(response.status_code, response.content):
            return None
        raise


def _config() -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "workers": 1,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "checks": {
                "enabled": True,
                # Replaced by positive_data_acceptance_beside_rules above.
                "positive_data_acceptance": {"enabled": False},
            },
            "phases": {"stateful": {"max-steps": MAX_STATEFUL_STEPS}},
        }
    )


def run_conformance(app: FastAPI, mint_token: Callable[[], str]) -> ConformanceRun:
    """Run every phase and check against ``app``; each request carries a fresh token from
    ``mint_token`` (a run calls logout, which revokes the token it was sent with)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=_config())

    class FreshToken:
        def get(self, case: Any, context: Any) -> str:
            return mint_token()

        def set(self, case: Any, token: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}

    schema.auth.auth(refresh_interval=None)(FreshToken)
    run = ConformanceRun()
    try:
        for event in from_schema(schema).execute():
            _collect(run, event)
    finally:
        # Schemathesis keeps the app's lifespan and its event loop thread for the whole process
        # (it stops them at exit); the test's database goes away now, so stop them now.
        asgi._shutdown()
    return run


def _collect(run: ConformanceRun, event: events.EngineEvent) -> None:
    if isinstance(event, events.ScenarioFinished):
        run.cases += len(event.recorder.cases)
        for case_id, nodes in event.recorder.checks.items():
            for node in nodes:
                if node.failure_info is None:
                    continue
                failure = node.failure_info.failure
                key = (event.recorder.label, node.name, failure.title)
                reproduce = node.failure_info.code_sample.replace("\n", " ")
                response = event.recorder.interactions.get(case_id)
                answer = "" if response is None or response.response is None else response.response.content
                message = f"{failure.message} -> {answer[:300]!r}".replace("\n", " ")
                run.findings.setdefault(key, Finding(key[0], key[1], key[2], message, reproduce))
    elif isinstance(event, events.NonFatalError):
        first_line = event.info.message.splitlines()[0] if event.info.message else ""
        key = (event.label, "error", event.info.title)
        run.findings.setdefault(key, Finding(event.label, "error", event.info.title, first_line, ""))
    elif isinstance(event, events.FatalError):
        key = ("run", "fatal", type(event.exception).__name__)
        run.findings.setdefault(key, Finding("run", "fatal", key[2], str(event.exception), ""))
