"""Byte counts for people, the one formatter the report, the steps and the app share."""

from __future__ import annotations

import pytest

from runbook.units import human_size


@pytest.mark.parametrize(
    ("n", "shown"),
    [
        (None, "?"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (13722, "13.4 KiB"),
        (1024**2, "1.0 MiB"),
        (5 * 1024**3, "5.0 GiB"),
        (3 * 1024**4, "3.0 TiB"),
    ],
)
def test_human_size(n: int | None, shown: str) -> None:
    assert human_size(n) == shown
