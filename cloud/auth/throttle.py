"""Login throttling: failed logins counted per account and per source address, then back-off.

A password check costs an Argon2 hash (tens of milliseconds of CPU and 64 MiB), so guessing is
slowed down *before* that work: a locked account or address is answered 429 with Retry-After
without touching a hash. Each key gets a few free failures (:data:`ACCOUNT_POLICY`: 5 per account,
:data:`ADDRESS_POLICY`: 20 per address, since one address may be a whole plant behind NAT); every
failure past them locks the key for twice as long as the one before, from 30 s up to 15 min. A
success clears the account's count (never the address's, or one good login of an attacker's own
would reset their spraying). A count is forgotten an hour after its last failure.

Attempts in flight count against the allowance too, so a burst of simultaneous guesses cannot all
slip past the check before the first failure is recorded.

The state lives in this process. ``factory-cloud api`` is one process; with several API processes
(or replicas behind a load balancer) each keeps its own counts, so an attacker gets up to that many
times the attempts: run one API process, or limit logins at the proxy in front.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures a key has for free and how long each further one locks it."""

    free_failures: int
    first_lockout_s: float = 30.0
    max_lockout_s: float = 900.0
    forget_after_s: float = 3600.0

    def lockout_s(self, failures: int) -> float:
        """How long the ``failures``-th failure locks its key (0 while failures are free)."""
        if failures < self.free_failures:
            return 0.0
        doublings = failures - self.free_failures
        return min(self.max_lockout_s, self.first_lockout_s * float(2**doublings))


ACCOUNT_POLICY = ThrottlePolicy(free_failures=5)
ADDRESS_POLICY = ThrottlePolicy(free_failures=20)
MAX_KEYS = 100_000  # bounds the memory an attacker can make us spend on counts (about 20 MB)


class Throttled(Exception):
    """A login refused before its password was checked; ``retry_after_s`` says when to try again."""

    def __init__(self, key: str, retry_after_s: float) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_s))
        super().__init__(f"too many failed logins for {key}; try again in {self.retry_after_s} s")


@dataclass(slots=True)
class _Count:
    failures: int = 0
    in_flight: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One login under way: the keys it is counted on."""

    account: str
    address: str

    @property
    def keys(self) -> tuple[tuple[str, ThrottlePolicy], ...]:
        return ((f"account {self.account!r}", ACCOUNT_POLICY), (f"address {self.address}", ADDRESS_POLICY))


@dataclass
class LoginThrottle:
    """Counts of failed logins, thread-safe; ``clock`` is monotonic seconds (tests pass their own)."""

    clock: Callable[[], float] = time.monotonic
    max_keys: int = MAX_KEYS
    _counts: OrderedDict[str, _Count] = field(default_factory=OrderedDict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def begin(self, account: str, address: str) -> Attempt:
        """Admit a login attempt, or raise :class:`Throttled` naming the locked key."""
        attempt = Attempt(account, address)
        with self._lock:
            now = self.clock()
            counts = [(key, policy, self._count(key, policy, now)) for key, policy in attempt.keys]
            for key, policy, count in counts:
                if now < count.locked_until:
                    raise Throttled(key, count.locked_until - now)
                # Once past the free failures, one attempt at a time between lockouts.
                if count.in_flight >= max(policy.free_failures - count.failures, 1):
                    raise Throttled(key, 1.0)
            for _key, _policy, count in counts:
                count.in_flight += 1
        return attempt

    def failed(self, attempt: Attempt) -> float:
        """Record a wrong password; returns how long this failure locked a key (0: not at all)."""
        locked_for = 0.0
        with self._lock:
            now = self.clock()
            for key, policy in attempt.keys:
                count = self._count(key, policy, now)
                count.in_flight = max(count.in_flight - 1, 0)
                count.failures += 1
                count.last_failure = now
                lockout = policy.lockout_s(count.failures)
                if lockout:
                    count.locked_until = now + lockout
                    locked_for = max(locked_for, lockout)
        return locked_for

    def succeeded(self, attempt: Attempt) -> None:
        """Record a right password: the account's count starts again."""
        with self._lock:
            account_key, address_key = (key for key, _policy in attempt.keys)
            self._counts.pop(account_key, None)
            self._release(address_key, ADDRESS_POLICY)

    def abandoned(self, attempt: Attempt) -> None:
        """The attempt ended without a verdict (an error): it no longer counts as in flight."""
        with self._lock:
            for key, policy in attempt.keys:
                self._release(key, policy)

    def _release(self, key: str, policy: ThrottlePolicy) -> None:
        count = self._count(key, policy, self.clock())
        count.in_flight = max(count.in_flight - 1, 0)

    def _count(self, key: str, policy: ThrottlePolicy, now: float) -> _Count:
        count = self._counts.get(key)
        stale = count is not None and not count.in_flight and now >= count.locked_until
        if count is None or (stale and now - count.last_failure > policy.forget_after_s):
            count = self._counts[key] = _Count()
            while len(self._counts) > self.max_keys:
                self._counts.popitem(last=False)
        self._counts.move_to_end(key)
        return count
