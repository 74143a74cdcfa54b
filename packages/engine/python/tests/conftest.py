import os
import sys
from pathlib import Path

import torch

# Tests import eaglet_engine from this checkout, whatever the working folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The Qwen2-Audio target plugin ships its engine adapter beside its TypeScript (enginePath).
sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "plugins" / "qwen2-audio" / "python"))

# Tiny models on a shared 2-core machine: one intra-op thread is many times faster than two
# contending ones. Engine subprocesses started by tests inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
