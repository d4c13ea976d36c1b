"""The OpenMP wait policy opencann's kernels run with, set as early as `import opencann`.

Two costs pull against each other. Threads that sleep as soon as a kernel ends must be woken for
the next launch, and on a virtual machine waking an idle vCPU takes long: with a passive policy a
128x384x384 GEMM took 650 us on 2 threads, slower than on one (600 us), and 270-320 us with
spinning. Threads that spin for long stall every launch for a scheduler time slice when a core is
busy elsewhere (libgomp's default spin made MiniLM 7x slower than onnxruntime on 2 loaded cores).
So the threads spin a bounded while (GOMP_SPINCOUNT=30000, well under a millisecond) and then
sleep: long enough to cover the Python between two launches of one model run, short enough to give
the cores back between runs.

libgomp reads the policy once, when it loads; torch brings its own copy, which our kernels may bind
to, so this runs at `import opencann`, before any kernel library loads. A user's own
OMP_WAIT_POLICY or GOMP_SPINCOUNT wins.
"""

import os

SPINCOUNT = "30000"

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
