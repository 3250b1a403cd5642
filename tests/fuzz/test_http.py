"""The OTLP/HTTP endpoint of a running collector under hostile requests: random
bodies, content types, encodings, headers, methods and paths get 2xx or 4xx,
never 5xx; afterwards the collector still serves, the data stored before is
unchanged and every span it acknowledged is stored. A bounded, derandomised
run; the long run is ``benchmarks/fuzz.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from otlp_fuzz import (
    SEED_QUERY,
    Collector,
    HttpCase,
    assert_served,
    http_cases,
    post_protobuf,
    seed_request,
)

pytest.importorskip("chdb")


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    running = Collector(Path(tmp_path_factory.mktemp("fuzz-collector"))).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def seeded(collector: Collector) -> list[list[object]]:
    assert post_protobuf(collector.http_endpoint, seed_request()) == 200
    acknowledged, stored = collector.wait_stored()
    assert stored == acknowledged == 5
    return collector.sql(SEED_QUERY)


def test_hostile_requests_get_4xx_and_spoil_nothing(
    collector: Collector, seeded: list[list[object]]
) -> None:
    statuses: list[int] = []

    @settings(
        max_examples=80,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(http_cases)
    def hostile(case: HttpCase) -> None:
        statuses.append(assert_served(case, collector.http_endpoint))

    hostile()

    assert any(400 <= status < 500 for status in statuses)
    assert collector.health()["status"] == "ok"
    acknowledged, stored = collector.wait_stored()
    assert stored == acknowledged, "acknowledged spans are missing from the store"
    assert collector.quarantined() == [], "the store refused spans the collector acknowledged"
    assert collector.sql(SEED_QUERY) == seeded
    # and it still takes good data
    assert post_protobuf(collector.http_endpoint, seed_request("fuzz-after", spans=2)) == 200
    acknowledged, stored = collector.wait_stored()
    assert stored == acknowledged
