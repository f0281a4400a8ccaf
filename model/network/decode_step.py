"""One decoder step over a static cache, replayed from a CUDA graph where there is one.

A decode step of the released model is ~250 small kernels; at batch 1 on a GPU their launch overhead,
not the arithmetic, sets the speed (the official loop takes ~20 s per clip). Recording the step once
as a CUDA graph and replaying it removes that overhead. The step reads its inputs from fixed buffers
(``ids``, ``position``) and uses :meth:`CodeDecoder.static_step`, whose tensor shapes never change.
Elsewhere (CPU, MPS) the same step runs eagerly.
"""

from __future__ import annotations

import logging

import torch

from .transformer import CodeDecoder, DecoderCache

log = logging.getLogger(__name__)


class StaticDecodeStep:
    """Feeds one pattern row per call and returns the last decoder state.

    Args:
        decoder: the code decoder.
        cache: its static cache (positions already filled are kept).
        rows: decoder batch rows N (guidance variants x clips).
        use_graph: record a CUDA graph on the first call (CUDA only); falls back to eager if recording
            fails.
    """

    def __init__(self, decoder: CodeDecoder, cache: DecoderCache, rows: int, *, use_graph: bool) -> None:
        device = cache.self_keys.device
        self.decoder = decoder
        self.cache = cache
        self.ids = torch.full((rows, 1, decoder.num_rows), decoder.pad_id, dtype=torch.long, device=device)
        self.position = torch.zeros((), dtype=torch.long, device=device)
        self.use_graph = use_graph and device.type == "cuda"
        self._graph: torch.cuda.CUDAGraph | None = None
        self._out: torch.Tensor | None = None

    def _run(self) -> torch.Tensor:
        emb = self.decoder.embed(self.ids, prepend_bos=False)
        return self.decoder.static_step(emb, self.cache, self.position)[:, -1]  # [N, D]

    def __call__(self, row: torch.Tensor, position: int) -> torch.Tensor:
        """Decoder state [N, D] after feeding ``row`` [N, K] at decoder ``position``."""
        self.ids.copy_(row[:, None])
        self.position.fill_(position)
        self.cache.length = position + 1
        if not self.use_graph:
            return self._run()
        if self._graph is None:
            self._record()
            if self._graph is None:  # recording failed: eager from now on
                return self._run()
        self._graph.replay()
        return self._out  # type: ignore[return-value]

    def _record(self) -> None:
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                # Warm-up at the current position: it writes the slot the replay writes again.
                self._run()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self._out = self._run()
            self._graph = graph
        except Exception as exc:  # pragma: no cover - depends on the GPU stack
            log.warning("CUDA graph recording failed (%s); decoding eagerly", exc)
            self.use_graph = False
            self._graph = None
