"""Measurement on Ray: each job slot of the measurer is a Ray actor.

    with RayMeasurer(jobs=4, address="auto") as measurer:    # address None: local Ray
        for index, result in measurer.run(requests):
            print(index, result.status, result.seconds, result.target)

`RayMeasurer` is `measure.SlotMeasurer` (the same two-phase scheduling, timeouts and
crash containment as the local process pool, `measure.Measurer`) with a Ray actor per
slot (`num_cpus=1`, never restarted) in place of a worker process. An actor runs the
same module-level worker functions (`worker.init_worker`, `build_candidate`,
`time_candidate`, or a custom builder / runner). A call whose actor died (a segfault)
is a "crash"; a hung actor is killed (`ray.kill`) at its deadline; either way the slot
gets a fresh actor. Every result carries the target of the machine its actor ran on.

With `address` the measurer joins that cluster (`ray.init(address=...)`; the nodes need
mlc installed in the same Python environment), else it starts a small local instance
(`num_cpus=jobs`, no dashboard); a Ray this process is already connected to is used as
it is. At `close` it shuts down only what it started or joined itself. Ray is imported
on first use (`pip install -e ".[distributed]"`), so `mlc` imports without it.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from mlc.tuning.measure import SlotMeasurer, Worker
from mlc.tuning.worker import init_worker, worker_ready

__all__ = ["INSTALL_HINT", "RayMeasurer", "import_ray"]

INSTALL_HINT = 'the Ray backend needs ray: pip install -e ".[distributed]"'

#: seconds an idle actor gets to remove its machine's copy of the compile cache
_CLEANUP_S = 10.0


def import_ray() -> ModuleType:
    """The `ray` module; an ImportError saying how to install it if it is missing."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return ray


class _Host:
    """The Ray actor of one job slot: a worker process with `init_worker` run, calling
    what it is sent one call at a time."""

    def __init__(self, cache_dir: str) -> None:
        init_worker(cache_dir)
        self.cache_dir = cache_dir

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    def remove_cache(self) -> None:
        """Remove this machine's copy of the private compile cache."""
        shutil.rmtree(self.cache_dir, ignore_errors=True)


@functools.cache
def _host_class() -> Any:
    ray = import_ray()
    return ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_Host)


@dataclass
class _ActorWorker:
    """A slot's worker: one `_Host` actor."""

    actor: Any
    target: str = ""

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future[Any]:
        try:
            return self.actor.call.remote(fn, *args).future()  # type: ignore[no-any-return]
        except Exception as e:  # `fn` or an argument does not pickle: that call's error
            future: cf.Future[Any] = cf.Future()
            future.set_exception(e)
            return future

    def raised(self, error: BaseException) -> BaseException | None:
        exceptions = import_ray().exceptions
        if isinstance(error, exceptions.RayActorError):  # ActorDiedError included
            return None
        if isinstance(error, exceptions.RayTaskError) and error.cause is not None:
            return error.cause  # what the function raised, not Ray's wrapper
        return error

    def stop(self, kill: bool) -> None:
        ray = import_ray()
        if not ray.is_initialized():  # Ray was shut down under us: the actor is gone
            return
        if not kill:  # idle (or already dead): first clear the cache on its machine
            try:
                ray.get(self.actor.remove_cache.remote(), timeout=_CLEANUP_S)
            except Exception:
                pass  # dead, or too slow: the actor goes anyway
        ray.kill(self.actor, no_restart=True)


@dataclass
class RayMeasurer(SlotMeasurer):
    """`SlotMeasurer` on Ray actors: on the cluster at `address` (e.g. "auto",
    "ray://head:10001"), else on the Ray this process is connected to, else on a local
    instance started on first use."""

    address: str | None = None
    #: this measurer called `ray.init` (so `close` calls `ray.shutdown`)
    _owns_ray: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        import_ray()  # fail now, with the install hint, rather than at the first batch

    def _connect(self) -> ModuleType:
        ray = import_ray()
        if not ray.is_initialized():
            if self.address is not None:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=self.jobs,
                    num_gpus=0,
                    include_dashboard=False,
                    log_to_driver=False,
                )
            self._owns_ray = True
        return ray

    def _launch(self, cache_dir: str) -> Worker:
        ray = self._connect()
        worker = _ActorWorker(_host_class().remote(cache_dir))
        try:
            ready = worker.submit(worker_ready).result(timeout=self.startup_timeout)
        except cf.TimeoutError:
            ray.kill(worker.actor, no_restart=True)
            raise RuntimeError(
                f"no Ray actor started within {self.startup_timeout:g} s: does the cluster "
                f"have a free CPU for each of the {self.jobs} jobs?"
            ) from None
        except BaseException:
            ray.kill(worker.actor, no_restart=True)
            raise
        worker.target = ready["target"]
        return worker

    def close(self) -> None:
        """Stop every actor, remove the private compile cache, and shut down the Ray
        instance (or cluster connection) this measurer started."""
        super().close()
        if self._owns_ray:
            import_ray().shutdown()
            self._owns_ray = False
