"""Dask cluster helpers: memory limits, native thread budgets, the worker plugin, connecting to a cluster."""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import dask
import pytest

from regiontag.workflows import cluster
from regiontag.workflows.cluster import (
    THREAD_VARIABLES,
    ClusterError,
    ClusterInfo,
    ThreadLimitPlugin,
    available_cores,
    memory_restarted_workers,
    open_client,
    parse_memory_limit,
    thread_environment,
    threads_per_task,
)


@pytest.fixture()
def thread_variables(monkeypatch):
    """The thread variables unset, and restored after the test (code under test writes os.environ)."""
    for name in THREAD_VARIABLES:
        monkeypatch.setenv(name, "sentinel")
        monkeypatch.delenv(name)
    return monkeypatch


def test_memory_limit_parsing():
    assert parse_memory_limit("4GB") == 4_000_000_000
    assert parse_memory_limit("2GiB") == 2 * 2**30
    assert parse_memory_limit(None) is None
    with pytest.raises(ValueError, match="invalid memory limit '-1GB'"):
        parse_memory_limit("-1GB")


def test_memory_limit_integers_empty_text_and_nonsense():
    assert parse_memory_limit(1500) == 1500
    assert parse_memory_limit("") is None
    assert parse_memory_limit("1500MB") == 1_500_000_000
    with pytest.raises(ValueError) as error:
        parse_memory_limit("4 lightyears")
    assert str(error.value) == "invalid memory limit '4 lightyears' (use e.g. 4GB, 1500MB, 2GiB)"
    with pytest.raises(ValueError, match="invalid memory limit 0: must be positive"):
        parse_memory_limit(0)


def test_thread_environment_keeps_the_users_choice(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "3")
    environment = thread_environment(2)
    assert environment["OMP_NUM_THREADS"] == "2" and environment["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == "3"


def test_thread_environment_covers_every_pool_with_at_least_one_thread(thread_variables):
    assert thread_environment(0) == {name: "1" for name in THREAD_VARIABLES}
    assert set(thread_environment(4)) == set(THREAD_VARIABLES)


def test_threads_per_task_never_oversubscribes():
    assert threads_per_task(cores=8, slots=2, wanted=None) == 4
    assert threads_per_task(cores=8, slots=2, wanted=1) == 1  # reproducible ANTs: the configured count
    assert threads_per_task(cores=8, slots=8, wanted=4) == 1
    assert threads_per_task(cores=2, slots=4, wanted=None) == 1


def test_available_cores_is_this_process_affinity():
    cores = available_cores()
    assert cores >= 1 and cores == len(os.sched_getaffinity(0))


def test_cluster_info_memory_text():
    assert ClusterInfo("x", 1, None, True).memory_limit_text == "unlimited"
    assert ClusterInfo("x", 1, 2 * 2**30, True).memory_limit_text == "2.00 GiB"


def _worker(address: str, nthreads: int) -> SimpleNamespace:
    return SimpleNamespace(address=address, state=SimpleNamespace(nthreads=nthreads))


def test_thread_limit_plugin_shares_the_host_cores_between_its_task_slots(thread_variables):
    thread_variables.setattr(cluster, "available_cores", lambda: 8)
    plugin = ThreadLimitPlugin({"tcp://10.0.0.5": 4})
    plugin.setup(_worker("tcp://10.0.0.5:40123", nthreads=1))
    assert {name: os.environ[name] for name in THREAD_VARIABLES} == {name: "2" for name in THREAD_VARIABLES}
    # a host the scheduler did not list: the worker's own thread count is its slots
    ThreadLimitPlugin({}, wanted_threads=3).setup(_worker("tcp://10.0.0.9:1", nthreads=8))
    assert os.environ["OMP_NUM_THREADS"] == "1"
    ThreadLimitPlugin({"tcp://10.0.0.5": 2}, wanted_threads=3).setup(_worker("tcp://10.0.0.5:2", nthreads=1))
    assert os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == "3"


def test_memory_restarted_workers_reads_the_scheduler_events():
    events = [(1.0, {"worker": "tcp://a:1"}), (2.0, {"worker": "tcp://b:2"}), (3.0, "not a dict")]
    client = SimpleNamespace(get_events=lambda topic: events if topic == cluster.MEMORY_RESTART_TOPIC else [])
    assert memory_restarted_workers(client) == {"tcp://a:1", "tcp://b:2"}

    def broken(topic):
        raise OSError("scheduler gone")

    assert memory_restarted_workers(SimpleNamespace(get_events=broken)) == set()


def test_open_client_unreachable_scheduler_is_a_cluster_error_and_restores_logging():
    logger = logging.getLogger("distributed")
    before = logger.level
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(ClusterError, match="cannot connect to the Dask scheduler at tcp://127.0.0.1:9"):
            with open_client(scheduler="tcp://127.0.0.1:9"):
                pytest.fail("connected to nothing")
    assert logger.level == before


def test_open_client_with_a_connected_client_reports_it_and_leaves_it_open(thread_variables):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                      memory_limit="3GB") as local, Client(local) as client:
        with open_client(scheduler=client, memory_limit="1GB") as (connected, info):
            assert connected is client
            assert (info.local, info.n_workers) == (False, 1)
            assert info.memory_limit_bytes == 1_000_000_000  # the smaller of the worker's and ours
            assert info.description == f"Dask cluster at {client.scheduler.address}"
            # the plugin ran on the (in-process) worker: two task slots share this host's cores
            assert os.environ["OMP_NUM_THREADS"] == str(threads_per_task(available_cores(), 2, None))
        assert client.status == "running"  # not ours to close
        with open_client(scheduler=client) as (_, info):
            assert info.memory_limit_bytes == 3_000_000_000


def test_one_session_without_scheduler_or_memory_limit_runs_in_process():
    assert cluster.runs_in_process(1)
    assert not cluster.runs_in_process(0) and not cluster.runs_in_process(2)
    assert not cluster.runs_in_process(1, scheduler="tcp://head:8786")
    assert not cluster.runs_in_process(1, memory_limit=2**30)  # the nanny enforces a limit: a worker
    assert cluster.runs_in_process(1, memory_limit="")


def test_importing_the_batch_does_not_import_dask_distributed():
    """A single session never pays for Dask: the batch and cluster modules import it when a cluster starts."""
    import subprocess
    import sys

    code = ("import sys, regiontag.workflows.batch, regiontag.workflows.cluster as c; "
            "print('distributed' in sys.modules); c.ThreadLimitPlugin; print('distributed' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]


def test_thread_limit_plugin_pickles_by_reference():
    import pickle

    plugin = ThreadLimitPlugin({"tcp://127.0.0.1": 2}, 1)
    assert type(pickle.loads(pickle.dumps(plugin))) is ThreadLimitPlugin
