"""``clapkit simulate --dask``: the chunks computed on a Dask cluster give the same bytes.

One LocalCluster of two worker processes serves the whole module; its workers are
fresh processes (not forks), so each builds the kcorrect models, the prior and GalSim's
profiles once, up front (``dask_client``), and the runs stay short. Chunks of 8 galaxies
(``small_chunks``) reach the workers through the tasks themselves: patching
``CHUNK_SIZE`` in this process does not reach them.

The HDF5 file embeds nothing that depends on time or on the process (h5py does not
record dataset times by default, and the temporary name is not in the file), so the
Dask file is compared byte for byte with the single-process one.
"""

import os
import signal
import time

import numpy as np
import pytest

from clapkit.cli import main
from clapkit.dask_cluster import dask_client
from clapkit.data import GalaxySet
from clapkit.sim import simulate_to_file, survey
from clapkit.sim.on_dask import results_on_dask

pytestmark = pytest.mark.usefixtures("kcorrect_ready", "small_chunks")

N, SEED = 20, 77  # three chunks of 8, the last one truncated


@pytest.fixture(scope="module")
def client(kcorrect_ready):
    with dask_client("local", 2) as client:
        # Each worker builds its caches (kcorrect, prior, GalSim profiles) on one tiny chunk.
        client.run(survey.simulate_chunk, 1, 0, ("sdss",), 2)
        yield client


@pytest.fixture(scope="module")
def reference(tmp_path_factory, kcorrect_ready) -> bytes:
    """The single-process file's bytes (sdss images, chunks of 8)."""
    path = tmp_path_factory.mktemp("reference") / "mock.h5"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(survey, "CHUNK_SIZE", 8)
        simulate_to_file(path, N, SEED, ("sdss",))
    return path.read_bytes()


def _scheduler_state(client) -> tuple[int, int]:
    """(tasks, clients) the scheduler holds: what a finished run must leave behind."""

    def count(dask_scheduler):
        return len(dask_scheduler.tasks), len(dask_scheduler.clients)

    return client.run_on_scheduler(count)


def _wait_for(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)
    return condition()


def test_the_dask_file_has_the_bytes_of_the_single_process_one(client, reference, tmp_path):
    before = _scheduler_state(client)
    out = simulate_to_file(tmp_path / "mock.h5", N, SEED, ("sdss",), dask=client)
    assert out.read_bytes() == reference
    # Every chunk's result was released: nothing is left on the workers.
    assert _wait_for(lambda: _scheduler_state(client) == before)


def test_the_cli_runs_on_a_scheduler_address_and_closes_its_client(
    client, reference, tmp_path, capsys
):
    before = _scheduler_state(client)
    out = tmp_path / "mock.h5"
    argv = ["simulate", "--n", str(N), "--seed", str(SEED), "--out", str(out), "--quiet"]
    address = client.scheduler.address
    assert main([*argv, "--instruments", "sdss", "--dask", address]) == 0
    assert f"on Dask ({address})" in capsys.readouterr().out
    assert out.read_bytes() == reference
    assert _wait_for(lambda: _scheduler_state(client) == before)


def test_an_interrupted_run_leaves_no_file_and_cancels_its_chunks(client, tmp_path, monkeypatch):
    before = _scheduler_state(client)

    class Interrupted(survey.GalaxySetWriter):
        def write_rows(self, start, images):
            super().write_rows(start, images)
            raise KeyboardInterrupt  # Ctrl-C after the first chunk was written

    monkeypatch.setattr(survey, "GalaxySetWriter", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        simulate_to_file(tmp_path / "mock.h5", 40, SEED, ("sdss",), dask=client)
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
    assert _wait_for(lambda: _scheduler_state(client) == before)


def test_an_error_on_a_worker_reaches_the_caller_and_leaves_no_file(client, tmp_path):
    # The checks run before anything is sent; an error inside a chunk comes back from
    # the worker: here a task the workers cannot run (an unknown observing mode passed
    # straight to the task function).
    def failing(task):
        return survey.simulate_chunk(*task[:4], observing="cloudy")

    tasks = [(1, 0, ("sdss",), 2)]
    with (
        pytest.raises(Exception, match="cloudy"),
        results_on_dask(client, None, failing, tasks) as results,
    ):
        list(results)


def test_settings_are_checked_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "mock.h5"
    argv = ["simulate", "--n", "4", "--seed", "1", "--out", str(out), "--quiet"]
    for extra, expected in [
        (["--dask", "local", "--workers", "2"], "--workers (local processes) and --dask"),
        (["--dask-workers", "2"], "--dask-workers needs --dask"),
        (["--dask", "local", "--dask-workers", "0"], "--dask-workers"),
        (["--dask", "tcp://a b"], "--dask must be 'local' or a scheduler address"),
    ]:
        assert main([*argv, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("clapkit simulate: error:") and expected in err, err
        assert err.count("\n") == 1
    with pytest.raises(ValueError, match="exclude each other"):
        simulate_to_file(out, 4, 1, dask="local", workers=2)
    with pytest.raises(ValueError, match=r"distributed\.Client"):
        simulate_to_file(out, 4, 1, dask=42)
    assert list(tmp_path.iterdir()) == []


def test_catalog_only_on_dask_is_the_catalog_of_the_image_run(client, tmp_path):
    images = simulate_to_file(tmp_path / "images.h5", N, SEED, ("sdss",), dask=client)
    catalog = simulate_to_file(tmp_path / "catalog.h5", N, SEED, images=False, dask=client)
    with GalaxySet.load(images) as a, GalaxySet.load(catalog) as b:
        assert b.instruments == []
        assert a.catalog.colnames == b.catalog.colnames
        for name in a.catalog.colnames:
            np.testing.assert_array_equal(a.catalog[name], b.catalog[name], err_msg=name)


def test_a_worker_killed_mid_run_is_replaced_and_the_bytes_are_the_same(
    client, reference, tmp_path, monkeypatch
):
    # Last in the module: the worker Dask starts in place of the killed one is cold.
    killed = []

    class KillingWriter(survey.GalaxySetWriter):
        def write_rows(self, start, images):
            super().write_rows(start, images)
            if not killed:  # once the first chunk is in, the others are in flight
                busy = [worker for worker, keys in client.processing().items() if keys]
                pids = client.run(os.getpid)
                victim = pids[(busy or list(pids))[0]]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

    monkeypatch.setattr(survey, "GalaxySetWriter", KillingWriter)
    out = tmp_path / "mock.h5"
    # Dask reruns the lost chunk on the other worker: the run completes, same bytes.
    simulate_to_file(out, N, SEED, ("sdss",), dask=client)
    assert killed
    assert out.read_bytes() == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mock.h5"]
