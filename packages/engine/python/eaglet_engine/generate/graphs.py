"""CUDA graphs captured once and replayed: the fast path's way around per-kernel launch cost.

A decode step of a 7B model is a few hundred small kernels; launched one by one from Python the
host, not the GPU, sets the pace. `GraphBank` captures a step function (which must read and write
only buffers allocated before the capture) into a `torch.cuda.CUDAGraph` per key, all in one
memory pool: graphs run one at a time and keep nothing alive between runs, so they can share it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable

import torch


class GraphBank:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.pool = torch.cuda.graph_pool_handle()
        self.graphs: dict[Hashable, torch.cuda.CUDAGraph] = {}
        self.seconds = 0.0

    def capture(self, key: Hashable, step: Callable[[], None], warmup: int = 2) -> None:
        """Runs `step` `warmup` times on a side stream (lazy initialisation, torch.compile, cuBLAS
        workspaces happen outside the capture), then captures one run."""
        t0 = time.perf_counter()
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                step()
            # capture_begin/end rather than `torch.cuda.graph`, which collects garbage before every
            # capture: a tenth of a second each with a large model loaded, times ~50 graphs.
            graph.capture_begin(pool=self.pool)
            try:
                step()
            finally:
                graph.capture_end()
        torch.cuda.current_stream(self.device).wait_stream(stream)
        torch.cuda.synchronize(self.device)
        self.graphs[key] = graph
        self.seconds += time.perf_counter() - t0

    def __contains__(self, key: Hashable) -> bool:
        return key in self.graphs

    def replay(self, key: Hashable) -> None:
        self.graphs[key].replay()
