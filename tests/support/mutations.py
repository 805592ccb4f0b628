"""Broken versions of valid wire messages, for fuzzing what reads them: seeded, so a run repeats.

Each mutation takes a valid message's JSON and returns bytes a faulty or hostile gateway might
send instead: random bytes, a truncation, flipped bits, a value of the wrong type, a huge or
non-finite number, a deeply nested value, control characters in text, or another channel's
message.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

Mutation = Callable[[random.Random, bytes], bytes]
# Deep enough for a recursive parser to fail on, small enough to stay under the payload cap.
DEEP = 100_000
WRONG_TYPES: tuple[Any, ...] = ("", "x" * 300, -1, 0, 1.5, True, None, [], {}, [None], {"": None})
HUGE_NUMBERS: tuple[Any, ...] = (2**63, -(2**63) - 1, 10**40, 1e308, -1e308, 2**31, 2**64)


def _paths(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _replaced(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(document))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return copy


def _set_somewhere(rng: random.Random, valid: bytes, value: Any) -> bytes:
    document = json.loads(valid)
    path = rng.choice([p for p in _paths(document) if p])
    return json.dumps(_replaced(document, path, value)).encode()


def random_bytes(rng: random.Random, valid: bytes) -> bytes:
    return rng.randbytes(rng.choice((0, 1, 7, 64, 1000)))


def truncated(rng: random.Random, valid: bytes) -> bytes:
    return valid[: rng.randrange(0, len(valid))]


def bit_flips(rng: random.Random, valid: bytes) -> bytes:
    flipped = bytearray(valid)
    for _ in range(rng.randint(1, 8)):
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
    return bytes(flipped)


def wrong_type(rng: random.Random, valid: bytes) -> bytes:
    return _set_somewhere(rng, valid, rng.choice(WRONG_TYPES))


def huge_number(rng: random.Random, valid: bytes) -> bytes:
    return _set_somewhere(rng, valid, rng.choice(HUGE_NUMBERS))


def not_a_number(rng: random.Random, valid: bytes) -> bytes:
    # json.dumps writes NaN and Infinity as bare words, which strict JSON does not allow.
    return _set_somewhere(rng, valid, rng.choice((float("nan"), float("inf"), float("-inf"))))


def deep_nesting(rng: random.Random, valid: bytes) -> bytes:
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    nested = (opener * DEEP + "1" + closer * DEEP).encode()
    if rng.random() < 0.5:
        return nested
    document = json.loads(valid)
    path = rng.choice([p for p in _paths(document) if p])
    marker = "\u0000nested\u0000"
    return json.dumps(_replaced(document, path, marker)).replace(json.dumps(marker), nested.decode()).encode()


def control_characters(rng: random.Random, valid: bytes) -> bytes:
    document = json.loads(valid)
    texts = [p for p in _paths(document) if p and isinstance(_at(document, p), str)]
    if not texts:
        return wrong_type(rng, valid)
    path = rng.choice(texts)
    return json.dumps(
        _replaced(document, path, _at(document, path) + rng.choice(("\u0000", "\ud800", "\x1b[2J")))
    ).encode()


def _at(document: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


MUTATIONS: tuple[Mutation, ...] = (
    random_bytes,
    truncated,
    bit_flips,
    wrong_type,
    huge_number,
    not_a_number,
    deep_nesting,
    control_characters,
)


def mutants(rng: random.Random, valid: bytes, count: int) -> list[bytes]:
    """``count`` broken versions of ``valid``, every mutation in turn."""
    return [MUTATIONS[i % len(MUTATIONS)](rng, valid) for i in range(count)]
