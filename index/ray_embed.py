"""Embedding on Ray Data: the build's forward passes on an actor pool that may span a cluster.

:class:`RayEmbedder` stands in for :class:`index.embed.Embedder` where index.pooling asks for
vectors, so reading, chunking, reuse of the live build's vectors, pooling and the index written
are the local build's own code: only the texts that build would encode travel to Ray. The driver
keeps its own copy of the model (chunking counts word pieces, the fingerprint names the weights);
each actor loads one copy once and checks its fingerprint against the driver's, so a worker with
other weights fails the build instead of mixing vectors into it.

Ray is an optional extra (``pip install 'cited[ray]'``), imported only when a build needs it.
"""

from __future__ import annotations

import logging
import math
import os
import re
import socket
import sys
import warnings
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

import numpy as np

from index.embed import Embedder, ModelInfo
from index import errors
from index.errors import CitedError, ModelError

log = logging.getLogger(__name__)

INSTALL = "pip install 'cited[ray]'"
BATCHES_PER_CALL = 8  # model batches per Ray batch: Embedder.encode slices its progress the same way
PROBE_SECONDS = 5.0  # a cluster address that does not accept a TCP connection in this long is reported at once
# Linux Ray binds every port on all interfaces unless it believes clusters are off; off, it binds
# the loopback address only. The variable's name is Ray's (its switch for laptops); a Ray started
# by the command serves this process alone and must not be reachable from the network.
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class EngineError(CitedError):
    """Ray is not installed, the cluster cannot be reached, or it failed the embedding job."""


def _import_ray(local: bool) -> Any:
    if local and "ray" not in sys.modules:
        os.environ.setdefault(LOOPBACK_SWITCH, "0")  # read when ray is imported, and by the processes it starts
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EngineError(f"engine=ray needs the ray extra, which is not installed: {INSTALL}") from None
    return ray


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Connect to the cluster at ``address`` (``head:6379`` or ``auto``) or,
    with none, start a private Ray on this machine: loopback only, no dashboard, every core.

    Left as found: a session this opened is shut down on exit; one already open in this process
    (a test's, a notebook's) is used as it is and left open.
    """
    ray = _import_ray(local=address is None)
    if ray.is_initialized():
        yield ray
        return
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # the same switch, for a ray imported before the variable was set
        os.environ.setdefault(LOOPBACK_SWITCH, "0")
        # "local" always starts a new Ray, even with RAY_ADDRESS set; Ray counts the cores itself, container limits included
        ray.init(address="local", include_dashboard=False, **quiet)
    else:
        _probe(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise EngineError(
                f"cannot connect to the Ray cluster at {address!r}: {_first_line(exc)} (a cluster with token authentication "
                "also needs RAY_AUTH_MODE=token and its token here: docs/ray.md)"
            ) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _probe(address: str) -> None:
    """A clear error in seconds for an address nothing listens at (Ray itself waits 30 s or more),
    and for a Ray Client address, over which Ray Data does not run (ray-project/ray#48682)."""
    if address in ("auto", "local"):
        return
    if address.startswith("ray://"):
        raise EngineError(
            f"ray_address {address!r}: Ray Data does not run over Ray Client (ray://); run `cited index` on a node of the "
            "cluster with --ray-address auto (or HEAD:6379), or submit it with `ray job submit` (docs/ray.md)"
        )
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise EngineError(f"ray_address {address!r} is not an address: give HOST:PORT (the head's GCS port, 6379 by default) or auto")
    try:
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
    except OSError as exc:
        raise EngineError(f"no Ray cluster answers at {address!r} ({exc.strerror or exc.__class__.__name__}): start one with `ray start --head`, or leave ray_address unset for a local Ray") from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else exc.__class__.__name__


class EmbedBatch:
    """One actor of the pool: loads the model once, then embeds every batch Ray Data hands it."""

    def __init__(self, model: str, fingerprint: str, batch_size: int) -> None:
        self.embedder = Embedder(model)
        if self.embedder.info.fingerprint != fingerprint:
            raise ModelError(
                f"the Ray worker on {socket.gethostname()} loads other weights for model {model!r} than the driver "
                "(fingerprints differ): install the same model package on every worker"
            )
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        if "spans" not in batch:
            return {"row": batch["row"], "vector": self.embedder.encode(texts, batch_size=self.batch_size)}
        spans = [np.frombuffer(blob, dtype=np.int64).reshape(-1, 2).tolist() for blob in batch["spans"]]
        vectors, pooled = self.embedder.encode_pooling_spans(texts, spans, batch_size=self.batch_size)
        packed = np.empty(len(texts), dtype=object)
        packed[:] = [_pack(found, self.embedder.info.dimension) for found in pooled]
        return {"row": batch["row"], "vector": vectors, "pooled": packed}


def _pack(vectors: Sequence[np.ndarray | None], dimension: int) -> bytes:
    """Span vectors as one float32 blob; a span no token covered is a row of NaN."""
    table = np.full((len(vectors), dimension), np.nan, dtype=np.float32)
    for i, vector in enumerate(vectors):
        if vector is not None:
            table[i] = vector
    return table.tobytes()


def _unpack(blob: bytes, dimension: int) -> list[np.ndarray | None]:
    table = np.frombuffer(blob, dtype=np.float32).reshape(-1, dimension)
    return [None if np.isnan(row[0]) else row.copy() for row in table]


class RayEmbedder:
    """:class:`Embedder`'s ``info``, ``encode``, ``encode_groups`` and ``encode_pooling_spans``, computed on Ray Data.

    Ray is started (or connected to) on the first texts to encode, so a rebuild that reuses
    every vector never waits for it; use as a context manager to shut it down after the build.
    """

    def __init__(self, embedder: Embedder, address: str | None = None, cpus_per_actor: int = 1) -> None:
        self.info: ModelInfo = embedder.info
        self.address = address
        self.cpus_per_actor = cpus_per_actor
        self.actors = 0  # the largest pool used (the engines benchmark's cores)
        self._stack = ExitStack()
        self._ray: Any = None

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._ray = None

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False, what: str = "texts") -> np.ndarray:
        vectors = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        for batch in self._run(texts, None, batch_size, progress, what):
            vectors[batch["row"]] = batch["vector"]
        return vectors

    def encode_groups(self, groups: Sequence[Sequence[str]], whats: Sequence[str], batch_size: int = 32, progress: bool = False) -> list[np.ndarray]:
        """:meth:`encode` of every group in one Ray Data pass (its actors start once), each group
        sorted and batched on its own as the local engine does."""
        texts = [t for group in groups for t in group]
        sizes = [len(group) for group in groups]
        labels = [group for group, size in enumerate(sizes) for _ in range(size)]
        vectors = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        what = " and ".join(w for w, size in zip(whats, sizes, strict=True) if size) or "texts"
        for batch in self._run(texts, None, batch_size, progress, what, groups=labels):
            vectors[batch["row"]] = batch["vector"]
        bounds = np.cumsum([0, *sizes])
        return [vectors[bounds[i] : bounds[i + 1]] for i in range(len(sizes))]

    def encode_pooling_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        vectors = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        pooled: list[list[np.ndarray | None]] = [[] for _ in texts]
        for batch in self._run(texts, spans, batch_size, progress, "passages"):
            vectors[batch["row"]] = batch["vector"]
            for row, blob in zip(batch["row"], batch["pooled"], strict=True):
                pooled[int(row)] = _unpack(blob, self.info.dimension)
        return vectors, pooled

    def _run(self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]] | None, batch_size: int,
             progress: bool, what: str, groups: Sequence[int] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Batches of ``{"row", "vector"[, "pooled"]}`` as the actors finish them (any order)."""
        if not texts:
            return
        ray = self._session()
        # Longest first within each group, as Embedder.encode batches them: similar lengths share a batch and pad little.
        order = sorted(range(len(texts)), key=lambda i: (groups[i] if groups else 0, -len(texts[i])))
        items = [{"row": i, "text": texts[i]} for i in order]
        if spans is not None:
            for item in items:
                item["spans"] = np.asarray(spans[item["row"]], dtype=np.int64).reshape(-1, 2).tobytes()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        actors = max(1, min(cpus // self.cpus_per_actor or 1, math.ceil(len(texts) / batch_size)))
        rows = min(batch_size * BATCHES_PER_CALL, batch_size * math.ceil(len(texts) / (actors * batch_size)))
        self.actors = max(self.actors, actors)
        with warnings.catch_warnings():
            # max_restarts goes through **ray_remote_args, deprecated from Ray 2.60 without a named
            # replacement yet; Ray Data's default (restart) also logs an error line per actor.
            warnings.simplefilter("ignore", DeprecationWarning)
            dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(texts) / rows)).map_batches(
                EmbedBatch,
                fn_constructor_kwargs={"model": self.info.name, "fingerprint": self.info.fingerprint, "batch_size": batch_size},
                batch_size=rows,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=self.cpus_per_actor,
                max_restarts=0,  # a lost actor fails the build, which is rerun whole (reusing what the live build has)
            )
        from tqdm.auto import tqdm

        label = f"embedding {len(texts):,} {what} on Ray ({actors} actor{'s' if actors != 1 else ''})"
        try:
            with tqdm(total=len(texts), desc=label, unit=" texts", disable=not progress) as bar:
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    yield batch
                    bar.update(len(batch["row"]))
        except ray.exceptions.RayError as exc:
            raise _remote_error(exc) from None

    def _session(self) -> Any:
        if self._ray is None:
            self._ray = self._stack.enter_context(ray_session(self.address))
            _quiet_ray_data(self._ray)
        return self._ray


def _remote_error(exc: BaseException) -> CitedError:
    """One line for what failed on a worker. Ray hands back the remote exception as text (an actor
    that failed to start keeps only its traceback), so the last ``Class: message`` line is read:
    the project's own error (a model that does not load) is raised again as itself."""
    found = [m for line in str(exc).splitlines() if (m := _EXCEPTION_LINE.match(line.strip()))]
    if not found:
        return EngineError(f"embedding on Ray failed: {_first_line(exc)}")
    name, message = found[-1].group(1), found[-1].group(2)
    own = getattr(errors, name.removeprefix("index.errors."), None) if name.startswith("index.errors.") else None
    if isinstance(own, type) and issubclass(own, CitedError) and own is not errors.IndexCorrupt:
        return own(message)
    hint = " (is cited installed on every Ray worker? docs/ray.md)" if name in ("ModuleNotFoundError", "ImportError") else ""
    return EngineError(f"embedding on Ray failed: {name}: {message}{hint}")


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit)): (.+)$")


def _quiet_ray_data(ray: Any) -> None:
    """The build's own progress bar and log line say what Ray Data would print per operator."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.enable_auto_log_stats = False
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # a failed job is raised here, as one line; Ray's log folder keeps the rest
