"""The offline model file (`.ocm`): one file holding a compiled model's graph, its target, its
kernels (C source and binaries) and its weights in safetensors layout, memory-mapped on load.
Loading compiles nothing.

Layout (little-endian):

    b"OPENCANN" | u64 header length | JSON header | padding to 64 | sections...

The header names the format version, the target backend and, for binaries, the `target` they were
built for (`isa`: the host CPU description that binaries need to be equal; `compiler`, `flags`),
and each section's offset, size and CRC-32. Sections (each 64-byte aligned):

- `graph`: the IR text form; big constants refer to the weights.
- `weights`: a safetensors blob: u64 length, JSON index, 64-byte-aligned data.
- `kernels` (format 2): u64 length, JSON index `{"kernels": [{"source_key", "key", "sha256",
  "binary": [begin, end], "source": [begin, end]}, ...]}`, then the 64-byte-aligned data; offsets
  count from the data's start. `source_key` is what the kernel layer asks the backend for, `key`
  the binary's name in the backend's kernel cache, `source` the UTF-8 C source.

Format 1 files (no `kernels` section) still load; their kernels compile on first run. A
truncated, corrupted or wrong-target file raises `ModelLoadError` saying which.
"""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np

from .. import dtypes
from ..errors import ModelLoadError
from ..ir import Graph, parse
from ..ir.text import print_graph

MAGIC = b"OPENCANN"
FORMAT = 2
READS = (1, 2)  # the formats this version reads
ALIGN = 64

# safetensors' dtype names; opencann's other element types use an "OC_" extension of the same layout
_ST_NAMES = {dtypes.float64: "F64", dtypes.float32: "F32", dtypes.float16: "F16", dtypes.bfloat16: "BF16",
             dtypes.int64: "I64", dtypes.int32: "I32", dtypes.int16: "I16", dtypes.int8: "I8",
             dtypes.uint8: "U8", dtypes.uint16: "U16", dtypes.uint32: "U32", dtypes.uint64: "U64",
             dtypes.bool_: "BOOL", dtypes.float8e4m3fn: "F8_E4M3", dtypes.float8e5m2: "F8_E5M2"}
_FROM_ST = {v: k for k, v in _ST_NAMES.items()}


def _st_name(dt: dtypes.DType) -> str:
    return _ST_NAMES.get(dt, "OC_" + dt.name)


def _st_dtype(name: str) -> dtypes.DType:
    if name in _FROM_ST:
        return _FROM_ST[name]
    if name.startswith("OC_"):
        return dtypes.by_name(name[3:])
    raise ValueError(f"unknown weight dtype {name!r}")


def _pad(n: int) -> int:
    return (-n) % ALIGN


def _safetensors_blob(weights: dict[str, np.ndarray]) -> list[bytes]:
    index, offset, chunks = {}, 0, []
    for name, a in weights.items():
        a = np.ascontiguousarray(a)
        raw = a.tobytes()
        index[name] = {"dtype": _st_name(dtypes.from_numpy(a.dtype)), "shape": list(a.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        chunks.append(b"\0" * _pad(len(raw)))
        offset += len(raw) + _pad(len(raw))
    index["__metadata__"] = {"format": "opencann"}
    head = json.dumps(index, separators=(",", ":")).encode()
    head += b" " * _pad(8 + len(head))  # safetensors allows trailing spaces: aligns the data
    return [struct.pack("<Q", len(head)), head] + chunks


def _kernels_blob(kernels: list[dict]) -> list[bytes]:
    index, offset, chunks = [], 0, []
    for k in kernels:
        e = {"source_key": k["source_key"], "key": k["key"], "sha256": k["sha256"]}
        for part, raw in (("binary", bytes(k["binary"])), ("source", (k.get("source") or "").encode())):
            e[part] = [offset, offset + len(raw)]
            chunks.append(raw)
            chunks.append(b"\0" * _pad(len(raw)))
            offset += len(raw) + _pad(len(raw))
        index.append(e)
    head = json.dumps({"kernels": index}, separators=(",", ":")).encode()
    head += b" " * _pad(8 + len(head))
    return [struct.pack("<Q", len(head)), head] + chunks


def save(path: str | os.PathLike, graph: Graph, backend: str, meta: dict | None = None,
         kernels: list[dict] | None = None, target: dict | None = None) -> None:
    """Write `graph` (compiled for `backend`) to `path`, with `kernels` (entries with
    `source_key`, `key`, `sha256`, `binary` bytes and `source` text) built for `target`."""
    weights: dict[str, np.ndarray] = {}
    text = print_graph(graph, weights=weights).encode()
    sections = {"graph": [text], "weights": _safetensors_blob(weights),
                "kernels": _kernels_blob(kernels or [])}
    header = {"format": FORMAT, "backend": backend, "name": graph.name, "meta": meta or {},
              "target": target or {}, "kernel_count": len(kernels or []), "sections": {}}
    # sizes and checksums first, offsets once the header's own size is known
    sizes, crcs = {}, {}
    for name, chunks in sections.items():
        sizes[name] = sum(len(c) for c in chunks)
        crc = 0
        for c in chunks:
            crc = zlib.crc32(c, crc)
        crcs[name] = crc
    for _ in range(3):  # the header's length depends on the offsets it records
        head = json.dumps(header, sort_keys=True).encode()
        offset = 16 + len(head) + _pad(16 + len(head))
        for name in sections:
            header["sections"][name] = {"offset": offset, "size": sizes[name], "crc32": crcs[name]}
            offset += sizes[name] + _pad(sizes[name])
    head = json.dumps(header, sort_keys=True).encode()
    head += b" " * _pad(16 + len(head))
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(head)) + head)
        for name, chunks in sections.items():
            assert f.tell() == header["sections"][name]["offset"], "section offsets were miscomputed"
            for c in chunks:
                f.write(c)
            f.write(b"\0" * _pad(sizes[name]))
    os.replace(tmp, path)


def read_header(path: str | os.PathLike) -> dict:
    """The header of an .ocm file, after checking that the file is one and is complete."""
    where = os.fspath(path)
    try:
        size = os.path.getsize(where)
        with open(where, "rb") as f:
            start = f.read(16)
            if len(start) < 16 or start[:8] != MAGIC:
                raise ModelLoadError(f"{where!r} is not an opencann model (.ocm) file")
            (hlen,) = struct.unpack("<Q", start[8:])
            if hlen > size - 16:
                raise ModelLoadError(f"{where!r} is truncated: its header claims {hlen} bytes, the file has {size}")
            header = json.loads(f.read(hlen))
    except OSError as e:
        raise ModelLoadError(f"cannot read {where!r}: {e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{where!r} is corrupted: its header is not valid ({e})") from None
    if not isinstance(header, dict) or header.get("format") not in READS:
        got = header.get("format") if isinstance(header, dict) else None
        raise ModelLoadError(f"{where!r} has .ocm format {got}; this opencann reads formats "
                             f"{', '.join(map(str, READS))}. Compile the model again with this version.")
    try:
        secs = header["sections"]
        for name in ("graph", "weights"):
            if name not in secs:
                raise ModelLoadError(f"{where!r} is corrupted: it has no {name!r} section. "
                                     "Copy or compile the model again.")
        for name, s in secs.items():
            if s["offset"] + s["size"] > size:
                raise ModelLoadError(f"{where!r} is truncated: section {name!r} ends at byte "
                                     f"{s['offset'] + s['size']}, the file has {size}. Copy or compile it again.")
        header["backend"]  # present in every file
    except (KeyError, TypeError, AttributeError) as e:
        raise ModelLoadError(f"{where!r} is corrupted: its header lacks {e}. Copy or compile the model again.") from None
    return header


def load(path: str | os.PathLike, verify: bool = True, expect_backend: str | None = None) -> tuple[Graph, dict]:
    """Read an .ocm file: returns (graph, header). Weights are memory-mapped, read-only. With
    `verify`, every section's CRC-32 is checked (a corrupted file is refused, not run)."""
    where = os.fspath(path)
    header = read_header(where)
    if expect_backend is not None and header["backend"] != expect_backend:
        raise ModelLoadError(f"{where!r} was compiled for backend {header['backend']!r}, not {expect_backend!r}; "
                             f"compile it again with --backend {expect_backend}")
    mm = np.memmap(where, dtype=np.uint8, mode="r")
    secs = header["sections"]
    if verify:
        for name, s in secs.items():
            if zlib.crc32(mm[s["offset"]:s["offset"] + s["size"]]) != s["crc32"]:
                raise ModelLoadError(f"{where!r} is corrupted: section {name!r} fails its checksum. "
                                     "Copy or compile the model again.")
    w = secs["weights"]
    base = w["offset"]
    (ilen,) = struct.unpack("<Q", bytes(mm[base:base + 8]))
    index = json.loads(bytes(mm[base + 8:base + 8 + ilen]))
    data0 = base + 8 + ilen
    weights = {}
    for name, e in index.items():
        if name == "__metadata__":
            continue
        dt = _st_dtype(e["dtype"])
        b, end = e["data_offsets"]
        weights[name] = np.ndarray(tuple(e["shape"]), dtype=dt.np, buffer=mm, offset=data0 + b)
    g = secs["graph"]
    try:
        graph = parse(bytes(mm[g["offset"]:g["offset"] + g["size"]]).decode(), weights=weights)
    except ValueError as e:
        raise ModelLoadError(f"{where!r} is corrupted: its graph does not parse ({e})") from None
    return graph, header


def read_kernels(path: str | os.PathLike, header: dict | None = None) -> list[dict]:
    """The kernels an .ocm file carries (format 2; none for format 1): entries with `source_key`,
    `key`, `sha256`, `binary` (a read-only view of the mapped file) and `source` (text). Checks
    the index fits its section; the caller checks each binary's SHA-256 before using it."""
    where = os.fspath(path)
    header = header if header is not None else read_header(where)
    s = header["sections"].get("kernels")
    if s is None or s["size"] == 0:
        return []
    mm = np.memmap(where, dtype=np.uint8, mode="r")
    base, end = s["offset"], s["offset"] + s["size"]
    bad = f"{where!r} is corrupted: its kernels section is not valid"
    try:
        (ilen,) = struct.unpack("<Q", bytes(mm[base:base + 8]))
        if base + 8 + ilen > end:
            raise ValueError("index runs past the section")
        index = json.loads(bytes(mm[base + 8:base + 8 + ilen]))
        data0 = base + 8 + ilen
        out = []
        for e in index["kernels"]:
            parts = {}
            for part in ("binary", "source"):
                b, stop = (int(x) for x in e[part])
                if not 0 <= b <= stop or data0 + stop > end:
                    raise ValueError(f"kernel {e['key']}: its {part} lies outside the section")
                parts[part] = memoryview(mm[data0 + b:data0 + stop])
            out.append({"source_key": str(e["source_key"]), "key": str(e["key"]), "sha256": str(e["sha256"]),
                        "binary": parts["binary"], "source": bytes(parts["source"]).decode()})
    except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{bad} ({e}). Copy or compile the model again.") from None
    return out
