"""The OpenMP wait policy opencann's kernels run with, set as early as `import opencann`.

OpenMP threads that spin-wait at a barrier stall a whole kernel launch for a scheduler time slice
when a core is busy elsewhere (measured on 2 loaded cores: MiniLM 7x slower than onnxruntime with
libgomp's default spin, 0.84x with passive waiting). libgomp reads the policy once, when it loads;
torch brings its own copy, which our kernels may bind to, so this runs at `import opencann`, before
any kernel library loads. A user's own setting wins.
"""

import os

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"
