"""Blocks as tasks on a Dask cluster: a local one (``--workers N``) or a running one
(``--scheduler tcp://HOST:PORT``), with dask.distributed, never a home-made scheduler.

Each task segments one block (`segcore.large.blockplan.segment_block`); a worker process loads the model
and opens the file once (`_worker_state`, cached per process) and reuses them for every block it
gets. Only the small block results travel back; the client commits them in block order
(`segcore.large.blockplan.BlockAssembler`), so the labels are the same as in one process. At most
`IN_FLIGHT_PER_WORKER` blocks per worker run at once, within a window of block indices behind
the slowest, so finished results waiting to be committed never pile up.

``--scheduler`` is checked before the client starts (`check_scheduler`): a ``tcp://HOST:PORT``
address whose server answers within `CONNECT_TIMEOUT_S` with a Dask handshake (a scheduler
speaks first); anything else (a malformed address, a closed port, a server of another kind) is
one `segcore.errors.ClusterError` line. A scheduler lost during a run is one such line too; the
blocks finished by then stay saved for the resume.
"""

from __future__ import annotations

import os
import re
import socket
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from functools import lru_cache
from typing import TYPE_CHECKING

from segcore.errors import ClusterError, reason
from segcore.large.blockplan import Block, BlockResult, segment_block

if TYPE_CHECKING:  # annotations only: workers import what a task needs when it runs
    from dask.distributed import Future, as_completed

    from segcore.inference.engine import Engine
    from segcore.io.microscopy import MicroscopyImage
    from segcore.large.largeimage import BlockJob, ImageSpec

#: Seconds to connect to a scheduler and get its handshake.
CONNECT_TIMEOUT_S = 10.0
#: A scheduler address: ``tcp://HOST:PORT`` (``tcp://`` may be left out).
ADDRESS = re.compile(r"(?:tcp://)?(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})")
#: Largest first message a Dask scheduler sends on connect (its handshake is under 100 bytes).
HANDSHAKE_MAX_BYTES = 2**16
IN_FLIGHT_PER_WORKER = 2
#: How far past the lowest running block a new block may start, per worker (see `results`).
WINDOW_PER_WORKER = 4


@lru_cache(maxsize=2)
def _engine(model: str, threads: int | None) -> Engine:
    """The model, loaded once per worker process."""
    from segcore.inference.engine import Engine
    from segcore.inference.onnx_runner import quiet_onnxruntime_logs

    quiet_onnxruntime_logs()
    return Engine(model, threads=threads)


@lru_cache(maxsize=4)
def _image(spec: ImageSpec) -> MicroscopyImage:
    """The file, opened lazily once per worker process."""
    return spec.open()[0]


def block_task(job: BlockJob, block: Block, threads: int | None = None) -> BlockResult:
    """Segment one block of ``job`` (a `segcore.large.largeimage.BlockJob`) in a worker."""
    engine = _engine(job.model, threads)
    image = _image(job.image)
    return segment_block(engine, image.read, job.mapping, block, job.tta, job.scale)


def check_scheduler(address: str, timeout: float = CONNECT_TIMEOUT_S) -> str:
    """``address`` as ``tcp://HOST:PORT`` once a server there answered like a Dask scheduler
    within ``timeout`` seconds; raises ClusterError (one line) otherwise, never hangs."""
    match = ADDRESS.fullmatch(address.strip())
    if not match or not 0 < int(match[2]) < 65536:
        raise ClusterError(f"--scheduler {address}: expected tcp://HOST:PORT")
    host, port = match[1].strip("[]"), int(match[2])
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            head = conn.recv(8, socket.MSG_WAITALL)
    except TimeoutError:
        raise ClusterError(
            f"--scheduler {address}: not a Dask scheduler (no handshake in {timeout:g} s)"
        ) from None
    except OSError as exc:
        raise ClusterError(f"--scheduler {address}: cannot connect ({reason(exc)})") from None
    if len(head) < 8 or not 0 < struct.unpack("<Q", head)[0] <= HANDSHAKE_MAX_BYTES:
        raise ClusterError(f"--scheduler {address}: not a Dask scheduler (unknown handshake)")
    return f"tcp://{match[1]}:{port}"


class BlockCluster:
    """A dask.distributed client: a new local cluster of processes, or a running scheduler."""

    def __init__(
        self, workers: int | None = None, scheduler: str | None = None, timeout: float | None = None
    ) -> None:
        """Start ``workers`` local worker processes (one thread each), or connect to
        ``scheduler`` (`check_scheduler` first); raises ClusterError when the scheduler cannot
        be used. ``timeout``: seconds the blocks of one image may take in all before `results`
        raises TimeoutError (None: no limit)."""
        from dask.distributed import Client, LocalCluster

        self.timeout = timeout
        self._cluster = None
        self.address = scheduler
        if scheduler:
            checked = check_scheduler(scheduler)
            try:
                self.client = Client(checked, timeout=f"{CONNECT_TIMEOUT_S:g}s")
            except (OSError, TimeoutError, ValueError, MemoryError) as exc:
                raise ClusterError(
                    f"--scheduler {scheduler}: cannot connect ({reason(exc)})"
                ) from None
            self.threads = None
        else:
            n = max(1, int(workers or 1))
            self._cluster = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            self.client = Client(self._cluster)
            self.threads = max(1, (os.cpu_count() or 1) // n)

    @property
    def worker_count(self) -> int:
        """Workers connected now (at least 1)."""
        return max(1, len(self.client.scheduler_info().get("workers", {})))

    def results(self, job: BlockJob, blocks: Sequence[Block]) -> Iterator[BlockResult]:
        """Results of ``blocks`` (in index order) as they finish, in any order.

        At most `IN_FLIGHT_PER_WORKER` blocks per worker run at once, and a block is started
        only while its index is less than `WINDOW_PER_WORKER` per worker past the lowest block
        still running: the client commits results in block order, so one slow block can keep
        only that many finished results waiting in its memory, however large the cluster."""
        from dask.distributed import as_completed
        from distributed.comm import CommClosedError

        pending = list(blocks)
        workers = self.worker_count
        limit, window = IN_FLIGHT_PER_WORKER * workers, WINDOW_PER_WORKER * workers
        futures = as_completed(timeout=self.timeout)
        running: dict[Future, int] = {}  # future -> block index

        def refill() -> None:
            while pending and len(running) < limit:
                lowest = min(running.values(), default=pending[0].index)
                if pending[0].index >= lowest + window:
                    return
                block = pending.pop(0)
                running[self._submit(job, block, futures)] = block.index

        try:
            refill()
            for future in futures:
                try:
                    result = future.result()
                except (CancelledError, CommClosedError) as exc:  # never cancelled here
                    where = f"--scheduler {self.address}" if self.address else "--workers"
                    raise ClusterError(
                        f"{where}: the Dask scheduler was lost ({reason(exc)}); the blocks "
                        "finished so far are saved: run the same command again to resume"
                    ) from None
                future.release()
                del running[future]
                refill()
                yield result
        finally:
            for future in running:
                future.cancel()

    def _submit(self, job: BlockJob, block: Block, futures: as_completed) -> Future:
        future = self.client.submit(block_task, job, block, self.threads, pure=False)
        futures.add(future)
        return future

    def close(self) -> None:
        """Close the client (and the local cluster this object started)."""
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> BlockCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
