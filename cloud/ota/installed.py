"""What the versions active in the rollout's slot (planning.SlotUse.active) rule out before planning.

Gateways install only rising versions per slot (anti-rollback, whatever the model's name), so a
rollout of a version not above the slot's active one would only be refused gateway by gateway.
"""

from __future__ import annotations

from collections.abc import Iterable

from protocol.messages import version_key

SHOWN = 5
Running = tuple[str, str]  # (model name, version) active in a slot


def _some(names: Iterable[str]) -> str:
    items = sorted(names)
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _runs(gateways: list[str]) -> str:
    return "runs" if len(gateways) == 1 else "run"


def _not_above(version: str, installed: str) -> bool:
    try:
        return version_key(version) <= version_key(installed)
    except ValueError:  # a version the gateway reported in another form: cannot be compared here
        return False


def downgrade_problem(running: dict[str, Running], slot: str, model: str, version: str) -> str | None:
    """Why ``model`` ``version`` would be refused by gateways running a version not below it, or None.

    The same model and version is not a downgrade but nothing to do (see :func:`already_running`).
    """
    by_running: dict[Running, list[str]] = {}
    for gw, (name, installed) in running.items():
        if (name, installed) != (model, version) and _not_above(version, installed):
            by_running.setdefault((name, installed), []).append(gw)
    if not by_running:
        return None
    clauses = [f"{_some(gws)} {_runs(gws)} {name} {v}" for (name, v), gws in sorted(by_running.items())]
    return (
        f"{model} {version} is not newer than what slot {slot!r} runs: {'; '.join(clauses)}. "
        "Gateways install only rising versions per slot (anti-rollback), whatever the model; "
        "roll out a higher version, or abort the rollout that installed the current one to send "
        "them back ('factoryctl rollouts abort <id>')"
    )


def already_running(running: dict[str, Running], model: str, version: str) -> list[str]:
    """The gateways whose slot already runs ``model`` ``version``, sorted."""
    return sorted(gw for gw, run in running.items() if run == (model, version))


def already_notice(gateways: list[str], model: str, version: str) -> str:
    """ "gw-1 already runs notes-minilm 1.1.0" (or "gw-1, gw-2 already run ...")."""
    return f"{_some(gateways)} already {_runs(gateways)} {model} {version}"
