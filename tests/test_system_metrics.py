"""The collector's process and host metrics, checked against the OS's own numbers."""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest

from collector.system_metrics import SystemMetrics
from exporters.store import MetricStore


def value(store: MetricStore, name: str) -> float:
    sample = store.get(name, {})
    assert isinstance(sample, float), f"{name} has no sample"
    return sample


def test_process_metrics_match_the_process() -> None:
    store = MetricStore()
    SystemMetrics(store).update()
    process = psutil.Process()
    rss = value(store, "driftline_process_resident_memory_bytes")
    assert rss == pytest.approx(process.memory_info().rss, rel=0.2)
    assert value(store, "driftline_process_threads") == process.num_threads()
    fds = len(os.listdir("/proc/self/fd"))
    assert value(store, "driftline_process_open_fds") == pytest.approx(fds, abs=2)
    start = process.create_time()
    assert value(store, "driftline_process_start_time_seconds") == pytest.approx(start)
    cpu = process.cpu_times()
    cpu_seconds = value(store, "driftline_process_cpu_seconds_total")
    assert cpu_seconds == pytest.approx(cpu.user + cpu.system, abs=0.05)


def test_cpu_counter_grows_with_work_and_never_goes_down() -> None:
    store = MetricStore()
    system = SystemMetrics(store)
    system.update()
    before = value(store, "driftline_process_cpu_seconds_total")
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        sum(range(1000))
    system.update()
    after = value(store, "driftline_process_cpu_seconds_total")
    assert after - before >= 0.15


def test_threads_and_fds_follow_the_process() -> None:
    store = MetricStore()
    system = SystemMetrics(store)
    system.update()
    threads_before = value(store, "driftline_process_threads")
    fds_before = value(store, "driftline_process_open_fds")
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    read_end, write_end = os.pipe()
    try:
        system.update()
        assert value(store, "driftline_process_threads") == threads_before + 1
        assert value(store, "driftline_process_open_fds") == fds_before + 2
    finally:
        stop.set()
        worker.join()
        os.close(read_end)
        os.close(write_end)


def test_host_ratios_are_ratios() -> None:
    store = MetricStore()
    system = SystemMetrics(store)
    time.sleep(0.05)
    system.update()
    cpu = value(store, "driftline_host_cpu_ratio")
    memory = value(store, "driftline_host_memory_used_ratio")
    assert 0.0 <= cpu <= 1.0
    assert 0.0 < memory < 1.0
    expected = psutil.virtual_memory()
    assert memory == pytest.approx((expected.total - expected.available) / expected.total, abs=0.05)
