"""What a rollout request must pass before it is planned: a known target, a slot that fits, no overlap.

Each refusal names what was wrong and what the user can do, so a rollout that could never finish
(unknown gateways, a slot the gateways lack, a model of another task, a slot another rollout is
updating) is refused up front instead of running until its install timeout.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, select, text
from sqlalchemy.orm import Session

from cloud.db.models import Gateway, GatewayReported, ModelVersion, Rollout
from cloud.ota.installed import Running
from cloud.ota.schemas import RolloutCreate
from cloud.registry.service import RegistryError

ACTIVE_STATES = ("running", "paused")
SHOWN = 5


def _some(names: Iterable[str], limit: int = SHOWN) -> str:
    """``names`` sorted, the first ``limit`` of them and how many more."""
    items = sorted(names)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def resolve_target(session: Session, req: RolloutCreate) -> list[str]:
    """The gateway ids a request targets, sorted."""
    chosen = set(req.target.gateways)
    if req.target.has_filters:
        for gw in session.scalars(select(Gateway)):
            if req.target.line and gw.line != req.target.line:
                continue
            if req.target.site and gw.site != req.target.site:
                continue
            if not set(req.target.tags) <= set(gw.tags or []):
                continue
            if req.target.cpu_class and gw.cpu_class not in req.target.cpu_class:
                continue
            chosen.add(gw.id)
    return sorted(chosen)


def no_match(session: Session, req: RolloutCreate) -> str:
    """Why no gateway matched: each filter given, beside the values the known gateways carry."""
    known = session.execute(select(Gateway.line, Gateway.site, Gateway.tags, Gateway.cpu_class)).all()
    if not known:
        return "the target matches no gateway: no gateway has connected yet"
    target, clauses = req.target, []
    offered = {
        "line": sorted({row.line for row in known if row.line}),
        "site": sorted({row.site for row in known if row.site}),
        "tags": sorted({tag for row in known for tag in row.tags or []}),
        "cpu_class": sorted({row.cpu_class for row in known if row.cpu_class}),
    }
    asks = (
        ("line", target.line),
        ("site", target.site),
        ("tags", target.tags or None),
        ("cpu_class", target.cpu_class or None),
    )
    for name, asked in asks:
        if asked:
            have = ", ".join(offered[name][:10]) or "none"
            clauses.append(f"{name} {asked!r} (gateways have {name}: {have}{_unreported(name, known)})")
    if not clauses:
        return "the target matches no gateway: give gateway ids, a line, a site, tags or CPU classes"
    return f"the target matches no gateway with {' and '.join(clauses)}"


def _unreported(name: str, known: Sequence[Row[Any]]) -> str:
    """For the CPU class: how many gateways have none (agents that predate it, other CPUs)."""
    if name != "cpu_class":
        return ""
    missing = sum(1 for row in known if not row.cpu_class)
    return f"; {missing} gateway(s) report no CPU class" if missing else ""


def unknown_gateways(session: Session, req: RolloutCreate) -> str | None:
    """Why listed gateway ids cannot be targeted (they never connected), or None.

    A gateway that never connected cannot report an install, so the rollout would only wait for
    its install timeout, sending the desired state again and again.
    """
    listed = set(req.target.gateways)
    if not listed:
        return None
    found = set(session.scalars(select(Gateway.id).where(Gateway.id.in_(sorted(listed)))))
    unknown = listed - found
    if not unknown:
        return None
    known = list(session.scalars(select(Gateway.id).order_by(Gateway.id).limit(10)))
    have = ", ".join(known) if known else "none has connected yet"
    return (
        f"target gateway(s) {_some(unknown)} never connected (known gateways: {have}); "
        "check the ids ('factoryctl devices list' shows them)"
    )


@dataclass
class SlotUse:
    """What the targeted gateways run per slot, from their births and their reported states."""

    names: dict[str, set[str]] = field(default_factory=dict)  # slot -> model names run there
    tasks: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # slot -> task -> gateways
    declared: dict[str, set[str]] = field(default_factory=dict)  # gateway -> its slots (births)
    # slot -> gateway -> (name, version) active there: the reported state, else the birth.
    active: dict[str, dict[str, Running]] = field(default_factory=dict)


def slot_use(session: Session, gateways: list[str]) -> SlotUse:
    """Each slot of ``gateways`` with the model names and tasks run in it."""
    use = SlotUse()
    for gateway_id, models in session.execute(
        select(Gateway.id, Gateway.models).where(Gateway.id.in_(gateways))
    ):
        for m in models or []:
            if not isinstance(m, dict) or not m.get("slot"):
                continue
            slot = str(m["slot"])
            use.declared.setdefault(gateway_id, set()).add(slot)
            use.names.setdefault(slot, set()).add(str(m.get("name")))
            if m.get("name") and m.get("version"):
                use.active.setdefault(slot, {})[gateway_id] = (str(m["name"]), str(m["version"]))
            if m.get("task"):
                use.tasks.setdefault(slot, {}).setdefault(str(m["task"]), set()).add(gateway_id)
    # Reported states carry the active model per slot (no task): gateways that never sent a
    # birth with models still tell which slot runs a model of this name. They are also the newer
    # word on what is active: a report follows every install, a birth only each reconnect.
    for gateway_id, slots in session.execute(
        select(GatewayReported.gateway_id, GatewayReported.slots).where(
            GatewayReported.gateway_id.in_(gateways)
        )
    ):
        for slot, report in (slots or {}).items():
            active = (report or {}).get("active") or {}
            if active.get("name"):
                use.names.setdefault(slot, set()).add(str(active["name"]))
            if active.get("name") and active.get("version"):
                use.active.setdefault(slot, {})[gateway_id] = (str(active["name"]), str(active["version"]))
    return use


def choose_slot(req: RolloutCreate, version: ModelVersion, use: SlotUse, gateways: list[str]) -> str:
    """The slot to update: the one given, else the one running this model, else the one of its task."""
    if req.slot:
        return req.slot
    by_name = sorted(slot for slot, names in use.names.items() if req.model_name in names)
    if len(by_name) == 1:
        return by_name[0]
    by_task = sorted(slot for slot, tasks in use.tasks.items() if version.task in tasks)
    if not by_name and len(by_task) == 1:
        return by_task[0]
    candidates = by_name or by_task
    if candidates:
        why = f"the targeted gateways run {req.model_name} or {version.task} models in several slots"
        raise _slot_error(f"{why}: {', '.join(candidates)}")
    every = sorted(use.names) or sorted(use.tasks)
    one = len(gateways) == 1
    whose = "its" if one else "their"
    have = f" ({whose} slots: {', '.join(every)})" if every else f" ({whose} births name no model slot yet)"
    lacks = "has no slot" if one else "have no slot"
    raise _slot_error(f"{_some(gateways)} {lacks} running a {version.task} model{have}")


def _slot_error(why: str) -> RegistryError:
    return RegistryError(422, f"slot not given and cannot be chosen: {why}; give the slot to update")


def slot_problem(use: SlotUse, slot: str) -> str | None:
    """Why ``slot`` cannot be updated on some of the gateways, or None.

    A gateway updates only the slots its config declares (a new slot needs its sources wired), so
    an offer for another slot would be ignored and the rollout would abort for nothing. Gateways
    that never reported their models are given the benefit of the doubt.
    """
    lacking = {gw: slots for gw, slots in use.declared.items() if slot not in slots}
    if not lacking:
        return None
    have = ", ".join(sorted(set().union(*lacking.values())))
    return (
        f"slot {slot!r} is not a model slot of {_some(lacking)} (they have: {have}); pick one of those slots"
    )


def task_problem(use: SlotUse, slot: str, model: str, task: str) -> str | None:
    """Why a ``task`` model does not fit ``slot`` (it runs a model of another task there), or None."""
    other = {t: gws for t, gws in use.tasks.get(slot, {}).items() if t != task}
    if not other:
        return None
    clauses = [f"slot {slot} of {_some(gws)} runs a {t} model" for t, gws in sorted(other.items())]
    return f"{model} is a {task} model; {'; '.join(clauses)}"


# Any constant shared by every API process; names the lock in pg_locks.
_CREATE_LOCK = 0x524F4C4C  # "ROLL"


def serialize_creates(session: Session) -> None:
    """Hold every other rollout create until this transaction ends.

    The overlap check reads committed rollouts, so two creates in flight at once (two admins, two
    API processes) would both pass it. On PostgreSQL a transaction-scoped advisory lock queues
    them; on SQLite a no-op write takes the database's single write lock for the same effect.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK})
    else:
        session.execute(text("UPDATE rollouts SET state = state WHERE 1 = 0"))


def overlap_problem(session: Session, gateways: list[str], slot: str) -> str | None:
    """Why the gateways' ``slot`` is taken by a running or paused rollout, or None.

    Two rollouts staging the same slot would overwrite each other's desired state, and each would
    judge gateways against the other's version.
    """
    wanted = set(gateways)
    for other in session.scalars(
        select(Rollout)
        .where(Rollout.state.in_(ACTIVE_STATES), Rollout.slot == slot)
        .order_by(Rollout.created_at)
    ):
        shared = wanted & set(other.plan)
        if shared:
            return (
                f"slot {slot!r} of {_some(shared)} is already being updated by rollout {other.id} "
                f"({other.model_name} {other.version}, {other.state}); wait for it to end, "
                f"or abort it ('factoryctl rollouts abort {other.id}') and create this one again"
            )
    return None
