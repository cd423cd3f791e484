"""simbond generation time at 2,000 and 20,000 firms: the cost should grow linearly with the firm count.

Run with ``tox -e bench`` (or ``python -m pytest benchmarks -q --benchmark-only``); compare the two means,
or the ``seconds_per_1000_firms`` extra info, which should be about equal.
"""

from __future__ import annotations

import pytest

from bench.datasets import simbond


@pytest.mark.parametrize("firms", [2000, 20000])
def test_generate(benchmark, firms: int) -> None:
    panel = benchmark.pedantic(simbond.generate, kwargs={"firms": firms}, rounds=3, iterations=1, warmup_rounds=0)
    benchmark.extra_info["firms"] = firms
    benchmark.extra_info["observations"] = len(panel.observations)
    benchmark.extra_info["seconds_per_1000_firms"] = benchmark.stats.stats.mean * 1000 / firms
    assert len(panel.entities) == firms
