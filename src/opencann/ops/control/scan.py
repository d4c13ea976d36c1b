"""Scan: runs a body subgraph once per slice of its scan inputs, carrying state values across
iterations and stacking per-iteration outputs.

Scan-8 has a leading batch axis on every input (scanned along axis 1) and an optional
`sequence_lens`; Scan-9 and later drop the batch axis and choose scan axes and directions per input
and output.
"""

from __future__ import annotations

import numpy as np

from ...ir.types import TensorType
from ..context import run_graph
from ..infer import InferError, normalize_axis, tensor
from ..registry import REQUIRED, defop
from ._types import body_inputs, drop_axis, join, output_types


def _check_body(body, n_state: int, n_scan_in: int) -> list:
    outs = output_types(body)
    if len(body.inputs) != n_state + n_scan_in:
        raise InferError(f"the body takes {len(body.inputs)} inputs; it needs {n_state} state values "
                         f"and {n_scan_in} scan slices")
    if len(outs) < n_state:
        raise InferError(f"the body has {len(outs)} outputs, fewer than the {n_state} state values")
    return outs


def _state_types(states, outs):
    return [join(v.type, t) if v is not None and v.type is not None else t for v, t in zip(states, outs)]


# --- Scan-9 and later ---------------------------------------------------------------------------
def _infer_scan(*inputs, body, num_scan_inputs, scan_input_axes, scan_input_directions,
                scan_output_axes, scan_output_directions):
    n_state = len(inputs) - num_scan_inputs
    if n_state < 0:
        raise InferError(f"num_scan_inputs={num_scan_inputs} exceeds the {len(inputs)} inputs")
    outs = _check_body(body, n_state, num_scan_inputs)
    in_axes = scan_input_axes or [0] * num_scan_inputs
    seq_len = None
    for v, ax in zip(inputs[n_state:], in_axes):
        if v.shape is not None:
            d = v.shape[normalize_axis(ax, len(v.shape), "scan_input_axes")]
            if isinstance(d, int) or seq_len is None:
                seq_len = d
    n_scan_out = len(outs) - n_state
    out_axes = scan_output_axes or [0] * n_scan_out
    result = _state_types(inputs[:n_state], outs[:n_state])
    for t, ax in zip(outs[n_state:], out_axes):
        if not isinstance(t, TensorType):
            result.append(t)
            continue
        if t.shape is None:
            result.append(tensor(t.dtype, None))
            continue
        rank = len(t.shape) + 1
        ax = normalize_axis(ax, rank, "scan_output_axes")
        result.append(tensor(t.dtype, t.shape[:ax] + (seq_len,) + t.shape[ax:]))
    return tuple(result)


def _scan(states, scan_inputs, body, in_axes, in_dirs, out_axes, out_dirs):
    """One unbatched scan; returns (final states, scan outputs)."""
    in_axes = [normalize_axis(a, x.ndim) for a, x in zip(in_axes, scan_inputs)]
    lengths = {x.shape[a] for a, x in zip(in_axes, scan_inputs)}
    if len(lengths) > 1:
        raise ValueError(f"the scan inputs have different lengths along their scan axes: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    # move each scan axis first (reversed where scanned backwards) so step t is simply x[t]
    seqs = []
    for x, a, d in zip(scan_inputs, in_axes, in_dirs):
        x = np.moveaxis(x, a, 0)
        seqs.append(x[::-1] if d else x)
    states = list(states)
    n_state = len(states)
    n_out = len(body.outputs) - n_state
    acc: list[list] = [[] for _ in range(n_out)]
    for t in range(n):
        outs = run_graph(body, states + [s[t] for s in seqs])
        states = list(outs[:n_state])
        for a, y in zip(acc, outs[n_state:]):
            a.append(np.asarray(y))
    scans = []
    for j, a in enumerate(acc):
        if a:
            y = np.stack(a[::-1] if out_dirs[j] else a)
        else:
            t = body.outputs[n_state + j].type
            shape = tuple(d if isinstance(d, int) else 0 for d in (t.shape or ())) if t is not None else ()
            y = np.zeros((0,) + shape, dtype=t.dtype.np if t is not None else np.float32)
        scans.append(np.moveaxis(y, 0, normalize_axis(out_axes[j], y.ndim)))
    return states, scans


_SCAN9_ATTRS = {"body": REQUIRED, "num_scan_inputs": REQUIRED, "scan_input_axes": None,
                "scan_input_directions": None, "scan_output_axes": None, "scan_output_directions": None}


@defop("Scan", inputs=["initial_state_and_scan_inputs*"], outputs=["final_state_and_scan_outputs*"],
       attrs=_SCAN9_ATTRS, infer=_infer_scan, since=9)
def scan(*inputs, body, num_scan_inputs, scan_input_axes, scan_input_directions, scan_output_axes,
         scan_output_directions):
    """Runs `body(*state, *slices) -> (*state, *scan_out)` over the scan inputs' slices; returns the
    final states, then the per-iteration outputs stacked along `scan_output_axes`."""
    n_state = len(inputs) - num_scan_inputs
    n_out = len(body.outputs) - n_state
    states, scans = _scan(inputs[:n_state], inputs[n_state:], body,
                          scan_input_axes or [0] * num_scan_inputs,
                          scan_input_directions or [0] * num_scan_inputs,
                          scan_output_axes or [0] * n_out,
                          scan_output_directions or [0] * n_out)
    return tuple(states + scans)


# --- Scan-8: batched, with sequence_lens ----------------------------------------------------------
def _infer_scan8(sequence_lens, *inputs, body, num_scan_inputs, directions):
    n_state = len(inputs) - num_scan_inputs
    if n_state < 0:
        raise InferError(f"num_scan_inputs={num_scan_inputs} exceeds the {len(inputs)} inputs")
    outs = _check_body(body, n_state, num_scan_inputs)
    batch = seq_len = None
    for v in inputs:
        if v is not None and v.shape:
            batch = v.shape[0] if batch is None else batch
    for v in inputs[n_state:]:
        if v.shape is not None and len(v.shape) >= 2:
            seq_len = v.shape[1] if seq_len is None else seq_len
    result = []
    for v, t in zip(inputs[:n_state], outs[:n_state]):
        result.append(v.type if t is None or t.shape is None else tensor(t.dtype, (batch,) + t.shape))
    for t in outs[n_state:]:
        if not isinstance(t, TensorType):
            result.append(None)
        else:
            result.append(tensor(t.dtype, None if t.shape is None else (batch, seq_len) + t.shape))
    return tuple(result)


@defop("Scan", inputs=["sequence_lens?", "initial_state_and_scan_inputs*"],
       outputs=["final_state_and_scan_outputs*"],
       attrs={"body": REQUIRED, "num_scan_inputs": REQUIRED, "directions": None},
       infer=_infer_scan8, since=8)
def scan8(sequence_lens, *inputs, body, num_scan_inputs, directions):
    """Scan-8: every input has a leading batch axis and scan inputs are scanned along axis 1, each
    batch entry for its own `sequence_lens` steps (outputs past them are zero)."""
    n_state = len(inputs) - num_scan_inputs
    n_out = len(body.outputs) - n_state
    batch = inputs[0].shape[0]
    max_len = inputs[n_state].shape[1] if num_scan_inputs else 0
    lens = (np.full(batch, max_len, np.int64) if sequence_lens is None
            else np.asarray(sequence_lens).reshape(-1).astype(np.int64))
    dirs = directions or [0] * num_scan_inputs
    finals: list[list] = [[] for _ in range(n_state)]
    stacked: list[list] = [[] for _ in range(n_out)]
    for b in range(batch):
        k = int(lens[b])
        slices = [x[b, :k] for x in inputs[n_state:]]
        states, scans = _scan([x[b] for x in inputs[:n_state]], slices, body,
                              [0] * num_scan_inputs, dirs, [0] * n_out, [0] * n_out)
        for f, s in zip(finals, states):
            f.append(np.asarray(s))
        for acc, y in zip(stacked, scans):
            if k < max_len:
                y = np.concatenate([y, np.zeros((max_len - k,) + y.shape[1:], y.dtype)])
            acc.append(y)
    return tuple([np.stack(f) for f in finals] + [np.stack(a) for a in stacked])


@body_inputs("Scan", since=9)
def _scan_body_inputs(*inputs, body, num_scan_inputs, scan_input_axes, scan_input_directions,
                      scan_output_axes, scan_output_directions):
    n_state = len(inputs) - num_scan_inputs
    axes = scan_input_axes or [0] * num_scan_inputs
    return {"body": [v.type for v in inputs[:n_state]]
            + [drop_axis(v.type, a) for v, a in zip(inputs[n_state:], axes)]}


@body_inputs("Scan", since=8)
def _scan8_body_inputs(sequence_lens, *inputs, body, num_scan_inputs, directions):
    n_state = len(inputs) - num_scan_inputs
    return {"body": [drop_axis(v.type, 0) for v in inputs[:n_state]]
            + [drop_axis(v.type, 0, 2) for v in inputs[n_state:]]}
