"""What the benchmark scripts share: running one tool in its own process and measuring it."""
import os
import subprocess
import sys
import time


def run(cmd, ok_statuses=(0,)):
    """Runs `cmd`; returns (stdout, wall seconds, peak RSS in MB) of that process alone.

    `ok_statuses` are the raw wait statuses that count as success (exit code << 8).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status not in ok_statuses:
        sys.exit(f"{' '.join(cmd)} failed:\n{err.decode()[-2000:]}")
    return out.decode(), wall, usage.ru_maxrss / 1024
