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


def _resident_kib(a) -> int:
    """KiB resident of the file mapping that holds `a` (/proc/self/smaps), exact where the
    process's RSS would also count whatever else allocates meanwhile."""
    addr = a.__array_interface__["data"][0]
    with open("/proc/self/smaps") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        head = line.split()
        if "-" in head[0] and not head[0].endswith(":"):
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            if lo <= addr < hi:
                for rest in lines[i + 1:]:
                    if rest.startswith("Rss:"):
                        return int(rest.split()[1])
    raise AssertionError("mapping not found")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_release_file_pages_drops_a_mapped_weights_pages(tmp_path):
    import numpy as np

    from opencann.runtime.host import release_file_pages

    path = tmp_path / "w.bin"
    data = np.arange(1 << 20, dtype=np.float32)
    data.tofile(path)
    m = np.memmap(path, dtype=np.float32, mode="r", offset=4096, shape=(512, 510))
    w = np.asarray(m, np.float32)
    total = float(w.sum())  # faults every page in
    assert _resident_kib(w) >= 1000
    assert release_file_pages(w)
    assert _resident_kib(w) < 16  # at most the partial pages at the ends
    assert float(w.sum()) == total  # read again from the file, unchanged
    assert not release_file_pages(np.zeros(10, np.float32))  # not a file mapping
    assert not release_file_pages(data)
