"""Host memory policy: freed buffers are reused, not faulted in again."""

import os
import resource
import subprocess
import sys

import pytest

CHILD = r"""
import resource, numpy as np
from opencann.runtime.host import keep_freed_host_memory
ok = keep_freed_host_memory()
def faults():
    x = np.empty(8 << 20, np.uint8); x[::4096] = 1; del x   # 8 MiB, every page touched
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        x = np.empty(8 << 20, np.uint8); x[::4096] = 1; del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0
print(ok, faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc policy")
def test_freed_buffers_are_reused_without_page_faults():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    if out[0] != "True":
        pytest.skip("not glibc")
    assert int(out[1]) < 200  # 20 x 2048 pages would fault without the policy


def test_a_users_setting_wins():
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_="131072")
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "False"
