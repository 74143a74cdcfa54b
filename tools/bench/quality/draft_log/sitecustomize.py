"""Logs every verification's accepted draft count, per request, from any engine process started
with this folder on PYTHONPATH and ``EAGLET_DRAFT_LOG=FILE`` set (one JSON line per verification:
``{"draft": i, "accepted": a}``, i counting from 0 within each request; the warm-up request too).

    EAGLET_DRAFT_LOG=drafts.jsonl PYTHONPATH=$PWD/tools/bench/quality/draft_log npx eaglet bench ...
    node tools/python.mjs tools/bench/quality/summarise.py --draft-log drafts.jsonl

How docs/perf/quality.md found that the first draft of every request was rejected: the bench's
acceptance per position pools all drafts, this keeps their order.
"""

import json
import os

if os.environ.get("EAGLET_DRAFT_LOG"):
    from eaglet_engine.generate import speculative

    record = speculative.SpecCounters.record

    def logged(self, accepted: int) -> None:
        index = getattr(self, "_logged_drafts", 0)
        self._logged_drafts = index + 1
        with open(os.environ["EAGLET_DRAFT_LOG"], "a") as f:
            f.write(json.dumps({"draft": index, "accepted": int(accepted)}) + "\n")
        record(self, accepted)

    speculative.SpecCounters.record = logged
