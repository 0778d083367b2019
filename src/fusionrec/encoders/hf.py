"""Hugging Face encoder: BERT-family (mean / CLS pooling) and GPT-family (last-token / mean).

Texts are tokenised once, sorted by length (longest first) and batched, so padding is small and
the progress bar's first estimate is pessimistic rather than optimistic. Forward passes run under
``torch.inference_mode`` on the cores other processes leave idle (:mod:`threads`), one batch per
core on CPU (:func:`~fusionrec.encoders.threads.run_on_threads`), in the precision
:mod:`precision` picks; bf16/fp16 run on a mixed-precision twin of the model (:mod:`mixed`:
low-precision matmuls, fp32 norms and residual stream).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Any, Sequence

import numpy as np

from fusionrec.devices import DeviceError, module_device, resolve_device
from fusionrec.encoders.base import EncoderError, l2_normalise
from fusionrec.encoders.config import EncoderConfig
from fusionrec.encoders.mixed import mixed_precision_copy, uses_fused_kernels
from fusionrec.encoders.precision import (agreement, autocast_context, choose_precision,
                                          low_precision_copy)
from fusionrec.encoders.resolve import ResolvedModel, set_offline
from fusionrec.encoders.threads import ThreadChoice, run_on_threads, torch_threads

#: Texts used to check bf16 against fp32 (spread over the length range): one in
#: ``SAMPLE_FRACTION`` of the job, between ``MIN_SAMPLE`` and ``SAMPLE_SIZE``. The fp32 pass costs
#: ~5x a bf16 one, so a fixed 64-text sample would eat a quarter of a 256-text job's time.
SAMPLE_SIZE = 64
MIN_SAMPLE = 8
SAMPLE_FRACTION = 32
#: Below this many texts, ``precision: auto`` trusts the hardware flags instead of timing
#: both precisions (the measurement would cost more than it could save).
SMALL_JOB = 1024
#: ``compile: auto`` compiles only single-thread jobs of at least this many tokens, where the
#: one-off compilation (~25-30 s) is won back. Measured on a 2-core AMX Xeon (MiniLM): at 1
#: thread the compiled autocast graph is only 3-15% faster than the eager mixed-precision twin,
#: so it pays after several minutes of encoding (~10M tokens; it was 1.5M against eager
#: autocast); at 2 threads the eager twin, one batch per core, beat the compiled graph (which
#: splits each batch over both cores) in 5 of 6 synthetic cases and by 1.45x on Last.FM texts.
COMPILE_MIN_TOKENS = 10_000_000
_DECODER_TYPES = ("gpt", "llama", "mistral", "qwen", "phi", "opt", "falcon", "gemma", "bloom",
                  "mpt", "olmo", "smollm", "pythia", "gpt_neox", "starcoder")


def _is_decoder(config) -> bool:
    if getattr(config, "is_encoder_decoder", False):
        raise EncoderError(f"encoder-decoder models ({config.model_type}) are not supported; "
                           "use a BERT-style encoder or a GPT-style decoder")
    architectures = " ".join(getattr(config, "architectures", None) or [])
    return bool(getattr(config, "is_decoder", False) or "CausalLM" in architectures
                or "LMHead" in architectures
                or any(config.model_type.startswith(t) for t in _DECODER_TYPES))


@contextlib.contextmanager
def _no_loading_bar():
    """Hide transformers' "Loading weights" bar (a fraction of a second of noise), then restore."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def sample_batches(lengths: Sequence[int], max_size: int = 32) -> list[tuple[int, int]]:
    """``[(start, stop)]`` batches of a longest-first sample: a batch ends when full or when the
    next text is under half its first text's length, so padding at most doubles the tokens.
    (The sample spans the whole length range: one batch padded to the longest text made the
    fp32 check cost ~40% of a job of short Last.FM texts.)"""
    batches, start = [], 0
    for i in range(1, len(lengths) + 1):
        if (i == len(lengths) or i - start == max_size
                or 2 * lengths[i] < lengths[start]):
            batches.append((start, i))
            start = i
    return batches


class HFEncoder:
    """Encoder over a local Hugging Face model folder (see :func:`resolve_model`)."""

    def __init__(self, resolved: ResolvedModel, config: EncoderConfig = EncoderConfig()) -> None:
        """Reads only the model's config; weights and tokenizer load on the first encode, so a
        run whose texts are all cached never pays for them."""
        set_offline()
        from transformers import AutoConfig

        self.resolved = resolved
        self.config = config
        model_config = AutoConfig.from_pretrained(str(resolved.path), local_files_only=True)
        self.is_decoder = _is_decoder(model_config)
        self.pooling = self._pooling(config.pooling)
        limit = getattr(model_config, "max_position_embeddings", None) or config.max_length
        self.max_length = min(config.max_length, int(limit))
        self._dim = int(model_config.hidden_size)
        self.model = None
        self._choice = None
        self._lowp: dict[str, Any] = {}  # precision -> mixed-precision twin (see mixed.py)
        self._runner = None
        self._compiled = None
        self._runtime: dict[str, Any] = {}
        self._threads = ThreadChoice()

    def load(self) -> None:
        """Load the tokenizer and the (frozen, fp32) model, once."""
        if self.model is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = str(self.resolved.path)
        try:  # the one resolution every torch model uses (fusionrec.devices)
            self.device = str(resolve_device(self.config.device))
        except DeviceError as error:
            raise EncoderError(f"encoder.{error}") from None
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        with _no_loading_bar():
            model = AutoModel.from_pretrained(path, dtype=torch.float32, local_files_only=True)
        self.model = model.eval().requires_grad_(False).to(self.device)
        pad = self.tokenizer.pad_token_id
        if pad is None:  # GPT-2 has no pad token; padded positions are masked out anyway
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self.pad_id = int(pad)

    def _pooling(self, requested: str) -> str:
        if requested == "auto":
            return "last" if self.is_decoder else "mean"
        if self.is_decoder and requested == "cls":
            raise EncoderError("cls pooling needs a BERT-style encoder; a decoder's first "
                               "token sees nothing else: use last or mean")
        if not self.is_decoder and requested == "last":
            raise EncoderError("last-token pooling is for GPT-style decoders; use mean or cls")
        return requested

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def identity(self) -> dict[str, Any]:
        return {"model": self.resolved.model_id, "weights_hash": self.resolved.weights_hash,
                "pooling": self.pooling, "max_length": self.max_length,
                "normalize": self.config.normalize}

    @property
    def runtime(self) -> dict[str, Any]:
        return dict(self._runtime)

    # -- batching ---------------------------------------------------------------------------
    def tokenise(self, texts: Sequence[str]) -> list[list[int]]:
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length,
                                 add_special_tokens=True)
        return encoded["input_ids"]

    def _pad(self, ids: list[list[int]], device=None):
        import torch

        device = self.device if device is None else device

        width = max(len(row) for row in ids)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for r, row in enumerate(ids):  # right padding: real tokens first
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        return (torch.from_numpy(input_ids).to(device),
                torch.from_numpy(mask).to(device))

    def _embed(self, model, ids: list[list[int]]) -> np.ndarray:
        """Pooled float32 vectors ``(len(ids), dim)`` of one padded batch."""
        return self.pooled(model, ids).cpu().numpy()

    def pooled(self, model, ids: list[list[int]]):
        """Pooled float32 vectors of one padded batch as a ``(len(ids), dim)`` tensor (not
        normalised), from ``model`` (this encoder's LM, or a fine-tuned form of it); autograd
        records the pass unless the caller turned it off."""
        import torch

        n = len(ids)
        if n == 1:  # a compiled graph specialises on size-1 dims; a twin row avoids a recompile
            ids = ids * 2
        # on ``model``'s device: a fine-tuned form may have moved with the model that trains it
        input_ids, mask = self._pad(ids, module_device(model))
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state[:n].float()
        mask = mask[:n]
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "last":
            last = mask.sum(dim=1) - 1  # right padding: last real token
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    # -- precision and compilation --------------------------------------------------------------
    @staticmethod
    def _sample(order: np.ndarray) -> np.ndarray:
        """Rows of the agreement sample: spread evenly over the longest-first ``order``."""
        size = min(SAMPLE_SIZE, len(order), max(MIN_SAMPLE, len(order) // SAMPLE_FRACTION))
        return order[np.unique(np.linspace(0, len(order) - 1, size).astype(int))]

    def _decide(self, ids: list[list[int]], order: np.ndarray, threads: int) -> None:
        """On the first call: choose the precision (timed on large jobs), check it against
        fp32 on a sample of these texts, set up compilation. (Later calls check the vectors
        they deliver: see :meth:`encode`.)"""
        sample = [ids[i] for i in self._sample(order)]  # longest first, like ``order``
        chunks = sample_batches([len(row) for row in sample])

        def run(precision: str) -> np.ndarray:
            model = self._model_for(precision)
            with autocast_context(precision, self.device):
                return np.concatenate([self._embed(model, sample[a:b]) for a, b in chunks])

        self._choice = choose_precision(self.config.precision, self.device, run,
                                        measure_speed=len(ids) >= SMALL_JOB)
        self._lowp = {k: v for k, v in self._lowp.items() if k == self._choice.precision}
        self._runner = self._model_for(self._choice.precision)
        wanted = self.config.compile
        if wanted == "auto":  # compile's warm-up (20-60 s) pays off only on large CPU bf16 jobs
            tokens = sum(len(row) for row in ids)
            wanted = (self.device == "cpu" and self._choice.precision == "bf16"
                      and threads == 1 and tokens >= COMPILE_MIN_TOKENS)
        if wanted:
            self._compiled = self._compile()

    def _model_for(self, precision: str):
        """The fp32 model, or its mixed-precision twin (made once; shares the fp32 model's
        embeddings and norms, owns low-precision matmul weights, leaves the model untouched)."""
        if precision == "fp32":
            return self.model
        if precision not in self._lowp:
            import torch

            dtype = torch.bfloat16 if precision == "bf16" else torch.float16
            self._lowp[precision] = mixed_precision_copy(self.model, dtype)
        return self._lowp[precision]

    def _compile(self):
        """One dynamic-shape graph for every batch, compiled from the plain autocast twin
        (inductor fuses that itself; the eager twin's oneDNN calls do not lower): ``freezing``
        folds the (bf16-cast) weights into constants, and the first call uses an odd (batch,
        length) pair so that dynamo does not give equal batch size and length one shared symbol
        (which recompiles later)."""
        import torch

        twin = low_precision_copy(self.model, self._choice.precision)
        compiled = torch.compile(twin, dynamic=True, options={"freezing": True})
        with autocast_context(self._choice.precision, self.device):
            self._embed(compiled, [[self.pad_id] * 7] * 3)
        return compiled

    def _recipe(self) -> str:
        """How the vectors were computed, for the cache metadata."""
        precision = self._choice.precision
        if precision == "fp32":
            return "fp32"
        if self._compiled is not None:
            return f"{precision} autocast, compiled"
        fused = " (fused oneDNN linears)" if uses_fused_kernels(self._runner) else ""
        return f"{precision} matmuls{fused}, fp32 norms and residual stream"

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if len(texts) == 0:
            return out
        self.load()
        threads = self.config.num_threads or self._threads()
        with torch_threads(threads), torch.inference_mode():
            ids = self.tokenise(texts)
            lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
            order = np.argsort(-lengths, kind="stable")
            first = self._choice is None
            if first:
                self._decide(ids, order, threads)
            model = self._compiled if self._compiled is not None else self._runner
            precision = self._choice.precision
            size = self.config.batch_size
            jobs = [_Batch(order[start:start + size], model, precision)
                    for start in range(0, len(order), size)]
            workers = 1 if (self.device != "cpu" or self._compiled is not None) else min(
                threads, len(jobs))
            check = None
            if not first and precision != "fp32":
                # Later calls check what they deliver against fp32 on a sample of these texts,
                # in the same pool: after the main batches, in pieces every worker shares (as
                # one piece it kept a worker busy while the other idled: -15% on 2 batches).
                check = self._sample(order)
                piece = -(-len(check) // workers)
                jobs += [_Batch(check[a:b], self.model, "fp32", slots=slice(a, b))
                         for a, b in sample_batches(lengths[check].tolist(), piece)]
            reference = np.zeros((0 if check is None else len(check), self._dim), np.float32)
            bar = tqdm(total=len(texts), unit="text", desc="encoding", disable=not progress)
            lock = threading.Lock()

            def run(job: _Batch) -> None:  # on a worker thread: its own inference/autocast state
                with torch.inference_mode(), autocast_context(job.precision, self.device):
                    vectors = self._embed(job.model, [ids[i] for i in job.rows])
                if job.slots is not None:
                    reference[job.slots] = vectors
                    return
                out[job.rows] = vectors
                with lock:
                    bar.update(len(job.rows))

            with bar:
                run_on_threads(jobs, run, workers, threads_each=max(1, threads // workers))
            if check is not None:
                self._choice = dataclasses.replace(
                    self._choice, agreement=agreement(reference, out[check]))
            self._runtime = {"device": self.device, "threads": threads, "workers": workers,
                             "compiled": self._compiled is not None, "recipe": self._recipe(),
                             **self._choice.as_dict()}
        return l2_normalise(out) if self.config.normalize else out


@dataclasses.dataclass(frozen=True)
class _Batch:
    """One forward pass of the job: which texts (row numbers), on which model, in which
    precision; ``slots``: where an fp32 pass of the agreement sample goes in the reference."""

    rows: np.ndarray
    model: Any
    precision: str
    slots: slice | None = None
