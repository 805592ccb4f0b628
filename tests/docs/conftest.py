"""Fixtures of the documentation tests.

- ``demo`` (module-scoped :class:`tests.support.demo_stack.Demo`): ONE ``factory-sim demo`` per
  test module, as ``make demo`` runs it (SQLite in its workdir), but on the machine's Mosquitto
  with a topic root of its own. The documents' commands run against it; starting it takes tens of
  seconds, so a module shares it and stops it after its last test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import MOSQUITTO, require_tcp
from tests.support.demo_stack import Demo, running_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``factory-sim demo`` with its own SQLite database, once its lines are live."""
    require_tcp(*MOSQUITTO, "Mosquitto")
    with running_demo(None, MOSQUITTO, tmp_path_factory.mktemp("demo")) as running:
        yield running
