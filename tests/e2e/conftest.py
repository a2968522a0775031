"""`make e2e`: one lab for the whole session (control plane, stand-ins, GitLab stand-in, project copy)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lab.build import COUNTERPARTS
from lab.e2e.session import Lab
from tests.conftest import IN_CI


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    missing = [c.name for c in COUNTERPARTS if not c.built()]
    if missing:
        message = f"not built: {', '.join(missing)} (make e2e builds them: python -m lab.build)"
        if IN_CI:
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    session = Lab(tmp_path_factory.mktemp("e2e"))
    try:
        yield session.start()
    finally:
        session.stop()
