"""The Dask side of rlsepi: ``--scheduler`` parsing, starting or joining a cluster, and running
tasks (in this process when there is no cluster).

Nothing here imports dask at module level.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rlsepi.errors import RLSEpiError

if TYPE_CHECKING:
    from distributed import Client



# --- the cluster ---------------------------------------------------------------------------


def parse_scheduler(text: str) -> str:
    """argparse type: ``local``, ``local:N`` (N >= 1) or ``tcp://host:port``."""
    import argparse

    t = text.strip()
    if t == "local":
        return "local:2"
    if t.startswith("local:"):
        try:
            n = int(t.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(f"expected local:N with N a whole number >= 1, got '{text}'")
        return f"local:{n}"
    if t.startswith(("tcp://", "tls://")) and ":" in t.split("://", 1)[1]:
        return t
    raise argparse.ArgumentTypeError(
        f"expected local, local:N or tcp://HOST:PORT (a running 'dask scheduler'), got '{text}'"
    )


@contextlib.contextmanager
def connect(address: str | None, *, quiet: bool = False, timeout: float | None = None) -> Iterator[Client | None]:
    """A Dask client for ``address`` (None: no client; everything runs in this process).

    ``local:N`` starts a cluster of N single-threaded worker processes on loopback and prints
    its dashboard address to the error stream (unless ``quiet``); it is closed on exit.
    ``tcp://host:port`` connects to a running scheduler and leaves it running.
    """
    if address is None:
        yield None
        return
    import logging

    from distributed import Client, LocalCluster

    logging.getLogger("distributed").setLevel(logging.ERROR)  # its INFO lines are not for our users
    if address.startswith("local:"):
        n = int(address.split(":", 1)[1])
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            if not quiet:
                print(f"rlsepi: local Dask cluster, {n} worker process(es); dashboard {client.dashboard_link}",
                      file=sys.stderr)
            yield client
        return
    if timeout is None:  # dask's connect timeout (DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT), 30 s by default
        import dask
        from dask.utils import parse_timedelta

        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="s")
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise RLSEpiError(f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}); "
                          "start one with 'dask scheduler' or use --scheduler local:N") from None
    try:
        if not quiet:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {})) if _accepts_n_workers(client) \
                else len(client.scheduler_info().get("workers", {}))
            print(f"rlsepi: Dask scheduler {address}, {n} worker(s)", file=sys.stderr)
        yield client
    finally:
        client.close()


def _accepts_n_workers(client: Client) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


def _worker_addresses(client: Client) -> list[str]:
    info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
    return sorted(info.get("workers", {}))


def _run(client: Client | None, fn: Callable[..., Any], items: Sequence[Any], *, progress: bool = False,
         key: str = "rlsepi", pin: bool = False) -> list[Any]:
    """``[fn(x) for x in items]``, on the cluster when there is one (results in order).

    Tasks are deterministic, so a task that Dask reruns after losing a worker gives the same
    result. With ``pin``, item i goes to the same worker in every call (while it lives), where
    an earlier pass may have left its data in memory.
    """
    if client is None:
        return [fn(x) for x in items]
    keys = [f"{key}-{i}" for i in range(len(items))]
    workers = _worker_addresses(client) if pin else []
    if workers:  # item i to worker i mod W (another one if that worker is lost): caches stay useful
        futures = [client.submit(fn, x, key=k, pure=False, workers=[workers[i % len(workers)]],
                                 allow_other_workers=True) for i, (x, k) in enumerate(zip(items, keys))]
    else:
        futures = client.map(fn, list(items), pure=False, key=keys)
    if progress:
        from distributed import progress as show

        with contextlib.redirect_stdout(sys.stderr):  # dask draws its bar on stdout, which holds our results
            show(futures, notebook=False)
        print(file=sys.stderr)
    try:
        return client.gather(futures)
    finally:
        for f in futures:
            f.release()


def _key_prefix(name: str) -> str:
    import uuid

    return f"rlsepi-{name}-{uuid.uuid4().hex[:8]}"
