"""Breaks the engine on purpose in every Python process started with this folder on PYTHONPATH:
``EAGLET_QUALITY_VARIANT=NAME`` applies that variant of ``../variants.py`` (``no-hidden-input``,
``zero-loss-mask``, ...) at interpreter start. Shows that the draft-quality regression test catches
a broken objective (docs/perf/quality.md):

    EAGLET_QUALITY_VARIANT=zero-loss-mask PYTHONPATH=$PWD/tools/bench/quality/controls \\
        npx vitest run packages/flows/test/draft-quality.test.ts   # must fail

Without the variable it does nothing. (It shadows any other sitecustomize, such as Debian's, for
those processes only.)
"""

import os
import sys
from pathlib import Path

_name = os.environ.get("EAGLET_QUALITY_VARIANT")
if _name:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from variants import VARIANTS

    if _name not in VARIANTS:
        raise SystemExit(f"EAGLET_QUALITY_VARIANT={_name}: not one of {sorted(VARIANTS)}")
    VARIANTS[_name]()
    print(f"[quality control] engine variant {_name} applied", file=sys.stderr)
