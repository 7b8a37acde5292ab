"""The in-process Embedder: an ONNX Runtime session over a resolved model (see onnx_models.resolve_model).

The session is created on first use, once, under a lock (as immich's model classes do): constructing an
OnnxEmbedder is cheap and does no I/O beyond what `resolve_model` already did, and two threads that embed at
the same time share one session (ONNX Runtime sessions are safe to `run` concurrently).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from visual_search.core import colour as colour_signature
from visual_search.core.errors import ModelFileError
from visual_search.core.images import CropBox, PreprocessSpec, normalise_pixels, to_model_input, to_model_pixels
from visual_search.embedders.onnx import activation_regions, pooling
from visual_search.embedders.onnx.resolved_model import ResolvedModel
from visual_search.embedders.onnx.resolver import resolve_model

_Result = TypeVar("_Result")

logger = logging.getLogger(__name__)

_COLOUR_GRID_PX = 48  # ~2,300 pixels describe a garment's colours as well as 67,600 do, at a thirtieth of the cost
DEFAULT_BATCH_SIZE = 16  # large enough to amortise per-run overhead, small enough to keep latency and memory low


class OnnxEmbedder:
    """Embeds images with an ONNX model. `embed` returns float32 (N, dimension) rows of L2 norm 1.

    `intra_op_threads` defaults to every core; set 1 when several embedders run in parallel processes.
    `streams` > 1 runs that many chunks of a batch at once on the one session (which is safe to share): with
    intra_op_threads=1 and streams=cores this was ~1.8x the throughput of one run over all cores on the 2-core
    bench machine, because Lite2's many small depthwise layers parallelise poorly inside one run.
    `spinning` lets ONNX Runtime's idle pool threads spin (its default) instead of sleeping: on the shared 2-core
    bench machine spinning made one query 1.6x slower and cost 1.4x the CPU (bench/bench_query_threads.py), since
    the spinning threads take the cores from the decode, numpy and index work around each run.
    """

    def __init__(
        self,
        model: ResolvedModel,
        *,
        intra_op_threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        streams: int = 1,
        spinning: bool = False,
    ):
        self.model = model
        self.model_id: str = model.model_id
        self.dimension: int = model.dimension
        self.spec: PreprocessSpec = model.spec
        self.intra_op_threads = intra_op_threads or os.cpu_count() or 1
        self.batch_size = max(1, batch_size)
        self.streams = max(1, streams)
        self.spinning = spinning
        self._pool: ThreadPoolExecutor | None = None
        self._stream_memory = threading.local()  # each stream thread's normalisation block (see _stream_block)
        self._session = None
        self._session_lock = threading.Lock()

    @classmethod
    def from_name(
        cls,
        name: str | Path,
        *,
        calibration_dir: Path | None = None,
        cache_dir: Path | None = None,
        intra_op_threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        streams: int = 1,
    ) -> OnnxEmbedder:
        """ "lite2-fp32", "lite2-int8" (with `calibration_dir`) or a custom-model config path; see resolve_model."""
        model = resolve_model(name, calibration_dir=calibration_dir, cache_dir=cache_dir)
        return cls(model, intra_op_threads=intra_op_threads, batch_size=batch_size, streams=streams)

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """RGB PIL images → float32 (len(images), dimension), unit rows. Preprocessing follows `self.spec`."""
        return self.embed_pixels([to_model_pixels(image, self.spec) for image in images])

    def embed_pixels(self, pixels: Sequence[np.ndarray]) -> np.ndarray:
        """uint8 (size_px, size_px, 3) images made by `to_model_pixels(image, self.spec)` → float32 (N, dimension),
        unit rows; the same vectors as `embed_tensors` of their `to_model_input` tensors. Each stream normalises
        its own chunk (core/images.normalise_pixels) just before its run, into a block its thread keeps, so
        indexing workers hand over a quarter of the bytes and no image touches fresh float memory."""
        return self._signatures(list(pixels), with_colour=True, from_pixels=True)

    def embed_tensors(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed float32 (N, 3, size_px, size_px) → float32 (N, dimension), unit rows (signatures of
        appearance and colour when the model has a colour descriptor; see core/colour.py)."""
        return self._signatures(self._check_batch(batch), with_colour=True, from_pixels=False)

    def embed_query(self, image: Image.Image, *, with_colour: bool) -> np.ndarray:
        """One photo's vector in the stored layout, float32 (dimension,). `with_colour=False` leaves the colour
        part zero instead of computing it: a query searched with colour weight 0 never reads it (see
        core/colour.query_vector), and an index never stores a query. Same appearance part as `embed`."""
        return self._signatures([to_model_pixels(image, self.spec)], with_colour=with_colour, from_pixels=True)[0]

    def _signatures(
        self, inputs: Sequence[np.ndarray] | np.ndarray, *, with_colour: bool, from_pixels: bool
    ) -> np.ndarray:
        """Chunks of at most batch_size, `streams` of them at a time; each chunk is normalised (pixels), run and
        pooled in its own stream, so R-MAC and colour run beside the other stream's inference, not after it."""
        if len(inputs) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.concatenate(
            self._in_streams(
                inputs,
                lambda part, on_stream: self._chunk_signatures(part, with_colour, from_pixels, reuse_memory=on_stream),
            )
        )

    def _chunk_signatures(
        self,
        inputs: Sequence[np.ndarray] | np.ndarray,
        with_colour: bool,
        from_pixels: bool,
        *,
        reuse_memory: bool = False,
    ) -> np.ndarray:
        if from_pixels:
            batch = normalise_pixels(inputs, self.spec, out=self._stream_block() if reuse_memory else None)
        else:
            batch = np.asarray(inputs)
        appearance_dimension = self.dimension - (
            colour_signature.COLOUR_DIMENSION if self.model.colour_descriptor else 0
        )
        if not self.model.colour_descriptor and self.model.pooling == "avg":
            return self._appearance(self._run([self.model.embedding_output], batch)[0], appearance_dimension)
        if self.model.feature_map_output is None:  # ResolvedModel pairs rmac and colour with a feature map
            raise ModelFileError(f"{self.model.model_id}: R-MAC pooling and colour need the model's feature map")
        embeddings, feature_maps = self._run([self.model.embedding_output, self.model.feature_map_output], batch)
        if self.model.pooling == "rmac":
            embeddings = pooling.rmac(feature_maps)
        appearance = self._appearance(embeddings, appearance_dimension)
        if not self.model.colour_descriptor:
            return appearance
        if not with_colour:
            return colour_signature.signatures(
                appearance, np.zeros((len(appearance), colour_signature.COLOUR_DIMENSION), np.float32)
            )
        if from_pixels:  # the very pixels the network saw, without undoing the normalisation
            colours = [self._colour(self._pixel_grid(image), fm) for image, fm in zip(inputs, feature_maps)]
        else:
            colours = [self.object_colour(tensor, fm) for tensor, fm in zip(batch, feature_maps)]
        return colour_signature.signatures(appearance, np.stack(colours))

    def _stream_block(self) -> np.ndarray:
        """This stream thread's float32 (batch_size, 3, size_px, size_px) block, made on its first chunk and kept
        for the embedder's life: streams × batch_size × 1.08 MB at 300 px (a bulk embedder's, 35 MB)."""
        block = getattr(self._stream_memory, "block", None)
        if block is None:
            block = np.empty((self.batch_size, 3, self.spec.size_px, self.spec.size_px), np.float32)
            self._stream_memory.block = block
        return block

    def _stream_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._session_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.streams, thread_name_prefix="onnx-stream")
        return self._pool

    def propose_regions(self, image: Image.Image, max_regions: int = 4) -> list[tuple[CropBox, float]]:
        """Where the objects of a photo are: up to `max_regions` boxes (fractions of the whole image) with the
        share of the network's activation each holds, largest first (see activation_regions). The whole image
        is looked at, squashed to the model's square input, so a box maps straight back to the photo.

        Raises ModelFileError when the model exposes no feature map."""
        if not self.model.feature_map_output:
            raise ModelFileError(f"the model {self.model_id} exposes no feature map to find objects with")
        whole_image = PreprocessSpec(size_px=self.spec.size_px, mean=self.spec.mean, std=self.spec.std, resize="squash")
        batch = self._check_batch(to_model_input(image, whole_image)[None])
        (feature_maps,) = self._run_chunked([self.model.feature_map_output], batch)
        return activation_regions.saliency_regions(activation_regions.activation_saliency(feature_maps[0]), max_regions)

    def _appearance(self, outputs: np.ndarray, expected_dimension: int) -> np.ndarray:
        vectors = outputs.reshape(len(outputs), -1).astype(np.float32, copy=False)
        if vectors.shape[1] != expected_dimension:
            raise ModelFileError(
                f"{self.model_id} returned {vectors.shape[1]} numbers per image, expected {expected_dimension}"
            )
        # Lite2 already normalises inside the graph; custom models usually do not. Renormalising is idempotent.
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)

    def run_outputs(self, batch: np.ndarray, output_names: list[str]) -> list[np.ndarray]:
        """The raw named outputs for a preprocessed batch (what benchmarks of pooling variants need)."""
        return self._run_chunked(list(output_names), self._check_batch(batch))

    def object_colour(self, tensor: np.ndarray, feature_map: np.ndarray) -> np.ndarray:
        """The colour descriptor of the very pixels the network saw (a grid of about 48 x 48 of them, undoing the
        normalisation), weighted by where the network found the object."""
        stride = self._colour_stride()
        sampled = tensor[:, ::stride, ::stride]
        std, mean = (
            np.asarray(self.spec.std, np.float32)[:, None, None],
            np.asarray(self.spec.mean, np.float32)[:, None, None],
        )
        return self._colour((sampled * std + mean).transpose(1, 2, 0), feature_map)

    def _pixel_grid(self, pixels: np.ndarray) -> np.ndarray:
        """The same grid as object_colour's from uint8 (size, size, 3) pixels, as float32 RGB."""
        stride = self._colour_stride()
        return pixels[::stride, ::stride].astype(np.float32)

    def _colour_stride(self) -> int:
        return max(1, self.spec.size_px // _COLOUR_GRID_PX)

    def _colour(self, rgb: np.ndarray, feature_map: np.ndarray) -> np.ndarray:
        saliency = activation_regions.activation_saliency(feature_map)
        return colour_signature.colour_descriptor(rgb, activation_regions.pixel_weights(saliency, *rgb.shape[:2]))

    def classify(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Class scores before softmax, float32 (len(images), classes); ImageNet-1k order for Lite2.

        Raises ModelFileError when the model has no logits output.
        """
        if not self.model.logits_output:
            raise ModelFileError(f"the model {self.model_id} has no classifier output")
        batch = self._check_batch(np.stack([to_model_input(image, self.spec) for image in images]))
        return self._run_chunked([self.model.logits_output], batch)[0].astype(np.float32, copy=False)

    def warm_up(self) -> None:
        """Creates the session now rather than on the first request."""
        self._get_session()

    def _check_batch(self, batch: np.ndarray) -> np.ndarray:
        size = self.spec.size_px
        if batch.ndim != 4 or batch.shape[1:] != (3, size, size):
            raise ValueError(f"expected a float32 batch of shape (N, 3, {size}, {size}), got {batch.shape}")
        return np.ascontiguousarray(batch, dtype=np.float32)

    def _run_chunked(self, output_names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        """Runs the batch in streams (`_in_streams`); one array per output, rows in input order."""
        return _concatenate_outputs(self._in_streams(batch, lambda part, _on_stream: self._run(output_names, part)))

    def _in_streams(
        self, inputs: Sequence[np.ndarray] | np.ndarray, work: Callable[[Any, bool], _Result]
    ) -> list[_Result]:
        """`work(part, on_stream)` on chunks of at most batch_size, `streams` of them at a time, results in input
        order. `on_stream` tells whether it runs on a stream thread, whose memory may be kept between calls."""
        chunk = min(self.batch_size, -(-len(inputs) // self.streams))
        chunks = [inputs[i : i + chunk] for i in range(0, len(inputs), chunk)]
        if self.streams == 1 or len(chunks) == 1:
            return [work(part, False) for part in chunks]
        return list(self._stream_pool().map(lambda part: work(part, True), chunks))

    def _run(self, output_names: list[str], batch: np.ndarray) -> list[np.ndarray]:
        return self._get_session().run(output_names, {self.model.input_name: batch})

    def _get_session(self):
        if self._session is None:
            with self._session_lock:
                if self._session is None:
                    self._session = self._create_session()
        return self._session

    def _create_session(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1  # the graph is a chain; parallel branches would only contend for cores
        if not self.spinning:
            # Idle pool threads sleep instead of spinning, leaving the cores to the decode, numpy and index work
            # around each run (and to other processes) rather than burning them between requests.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return onnxruntime.InferenceSession(str(self.model.onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception:
            # ONNX Runtime's own text names its internals (status codes, protobuf): the log keeps it for whoever
            # debugs; the person running the command gets what to do.
            logger.warning("ONNX Runtime could not load %s", self.model.onnx_path, exc_info=True)
            raise ModelFileError(
                f"ONNX Runtime cannot load {self.model.onnx_path}: the file is damaged or needs a newer ONNX "
                "Runtime; if it is a cached model, delete it to rebuild"
            ) from None


def _concatenate_outputs(results: list[list[np.ndarray]]) -> list[np.ndarray]:
    return [np.concatenate(parts) for parts in zip(*results)]
