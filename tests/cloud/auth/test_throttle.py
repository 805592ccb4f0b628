"""The login throttle on its own, on a clock the test moves: free failures, doubling lockouts,
per account and per address, attempts in flight, and forgetting."""

from __future__ import annotations

import pytest

from cloud.auth.throttle import ACCOUNT_POLICY, ADDRESS_POLICY, LoginThrottle, Throttled
from tests.support.clock import ManualClock


def _fail(throttle: LoginThrottle, account: str, address: str = "10.0.0.1") -> float:
    return throttle.failed(throttle.begin(account, address))


def _refusal(throttle: LoginThrottle, account: str, address: str = "10.0.0.1") -> Throttled:
    with pytest.raises(Throttled) as refused:
        throttle.begin(account, address)
    return refused.value


def test_five_failures_lock_the_account_and_each_further_one_doubles_the_lockout() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(clock)
    assert [_fail(throttle, "ana") for _ in range(4)] == [0.0] * 4
    assert _fail(throttle, "ana") == 30.0
    assert _refusal(throttle, "ana").retry_after_s == 30
    clock.advance(29)
    assert _refusal(throttle, "ana").retry_after_s == 1
    clock.advance(1)
    assert _fail(throttle, "ana") == 60.0  # one try after the lockout, and it failed
    clock.advance(60)
    assert _fail(throttle, "ana") == 120.0
    # Other accounts from elsewhere are untouched.
    throttle.succeeded(throttle.begin("bob", "10.0.0.2"))


def test_the_lockout_stops_growing_at_fifteen_minutes() -> None:
    assert ACCOUNT_POLICY.lockout_s(ACCOUNT_POLICY.free_failures + 20) == 900.0


def test_a_success_clears_the_account_but_not_the_address() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(clock)
    for _ in range(4):
        _fail(throttle, "ana")
    throttle.succeeded(throttle.begin("ana", "10.0.0.1"))
    assert [_fail(throttle, "ana") for _ in range(4)] == [0.0] * 4  # four free failures again
    # The address kept all eight: a spray from it reaches the address's limit all the same.
    for n in range(ADDRESS_POLICY.free_failures - 9):
        _fail(throttle, f"user-{n}")
    assert _fail(throttle, "zed") == 30.0
    refusal = _refusal(throttle, "someone-else")
    assert "address 10.0.0.1" in str(refusal)


def test_attempts_in_flight_count_against_the_free_failures() -> None:
    throttle = LoginThrottle(ManualClock())
    for _ in range(4):
        _fail(throttle, "ana")
    in_flight = throttle.begin("ana", "10.0.0.1")  # the fifth and last free one, still checking
    refusal = _refusal(throttle, "ana", "10.0.0.9")
    assert "account 'ana'" in str(refusal)
    throttle.abandoned(in_flight)  # an error ended it without a verdict: the slot is free again
    throttle.succeeded(throttle.begin("ana", "10.0.0.1"))


def test_counts_are_forgotten_an_hour_after_the_last_failure() -> None:
    clock = ManualClock()
    throttle = LoginThrottle(clock)
    for _ in range(4):
        _fail(throttle, "ana")
    clock.advance(ACCOUNT_POLICY.forget_after_s + 1)
    assert [_fail(throttle, "ana") for _ in range(4)] == [0.0] * 4


def test_the_number_of_counts_kept_is_bounded() -> None:
    throttle = LoginThrottle(ManualClock(), max_keys=10)
    for n in range(50):
        _fail(throttle, f"user-{n}", f"10.0.1.{n}")
    assert len(throttle._counts) == 10
