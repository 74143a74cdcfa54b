"""Runs a command and reports its wall time, CPU time and peak memory, descendants included.

    python3 tools/bench/measure.py CMD [ARGS...]

Prints the command's stdout, then one JSON line: {"wall_s", "cpu_s", "max_rss_mb", "exit"}.
CPU and peak RSS come from wait4(), which counts the child and every descendant it waited for
(ffmpeg processes spawned by node included); max_rss_mb is the largest single process.
"""

import json
import os
import subprocess
import sys
import time

start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
out = proc.stdout.read()
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
sys.stdout.write(out.decode())
print(json.dumps({
    "wall_s": wall,
    "cpu_s": usage.ru_utime + usage.ru_stime,
    "max_rss_mb": usage.ru_maxrss / 1024,
    "exit": os.waitstatus_to_exitcode(status),
}))
