"""`accelpool up --executor ray --demo` on first start: the example jobs wait for the executor's nodes
instead of crashing the start (issue 12). A NodeSource fake stands in for Ray."""

from __future__ import annotations

from pathlib import Path

from tests.service.test_node_sync import NodeSourceFake

from accelpool.core.types import Node
from accelpool.service import demo
from accelpool.service.server import DEMO_EXAMPLES_PENDING, Options, Service


def _names(service: Service) -> set[str]:
    return {v.name for v in service.store.list_jobs()[0]}


def test_demo_on_a_node_source_starts_with_no_nodes_and_submits_examples_when_nodes_come(tmp_path: Path):
    ex = NodeSourceFake()
    ex.found = []  # Ray has not reported any node yet
    service = Service(Options(data_dir=tmp_path, demo=True), executor=ex)
    try:
        service.bootstrap()  # crashed before: admission refused the examples on an empty pool
        assert any("once the scheduler has found the nodes" in m for m in service.messages)
        assert _names(service) == set()
        assert (tmp_path / DEMO_EXAMPLES_PENDING).exists()
        ex.found = [Node("a", "h100", 8)]
        service.sync_nodes()
        # what an h100 pool can run: everything but the NPU-only examples
        assert _names(service) == {"hello-h100", "any-48gb"}
        assert not (tmp_path / DEMO_EXAMPLES_PENDING).exists()
        ex.found = [Node("a", "h100", 8), Node("b", "rngd", 8)]
        service.sync_nodes()  # submitted once: nothing more
        assert _names(service) == {"hello-h100", "any-48gb"}
        service.reconciler.step()
        assert {s.job.id for s in service.store.running()}
    finally:
        service.stop()


def test_demo_on_a_node_source_with_nodes_at_start_submits_every_example_it_can_run(tmp_path: Path):
    ex = NodeSourceFake()  # h100 and rngd nodes
    service = Service(Options(data_dir=tmp_path, demo=True), executor=ex)
    try:
        service.bootstrap()
        assert _names(service) == {j["name"] for j in demo.EXAMPLE_JOBS}
    finally:
        service.stop()


def test_example_jobs_are_idempotent_and_report_what_they_leave_out(tmp_path: Path):
    ex = NodeSourceFake()
    ex.found = [Node("r", "rngd", 8)]
    service = Service(Options(data_dir=tmp_path, demo=True), executor=ex)
    try:
        service.bootstrap()
        skipped: list[str] = []
        first = demo.example_jobs(service.store, skipped=skipped)
        assert sorted(first) == sorted(demo.example_jobs(service.store))
        assert any(s.startswith("hello-h100:") for s in skipped)
    finally:
        service.stop()
