#!/usr/bin/python3
"""Writes tests/data/capture/: what the engine's capture hooks must reproduce, from sage_ref.capture().

For a few golden checkpoints (tests/data/golden/<case>, their golden.json tokens) this evaluates the reference in
float64 and writes float32 .npy arrays named exactly as `sage-cli capture --policy full --format npy` names them
(loops 1-based):
  attn.global.loop{l}.layer{L}.npy [H, T, T]  attn.local.loop{l}.layer{L}.npy [H, T, T] (loops >= 2)
  gate.loop{l}.layer{L}.npy [T, H]            router.loop{l}.layer{L}.npy [T, E] (MoE layers)
  norm.global|norm.local.loop{l}.layer{L}.npy [T, H]: ||o_proj[:, h*hd:(h+1)*hd] @ (g*A_h)||, same with (1-g)*B_h
  divergence.loop{l}.layer{L}.npy [T, H]: 1 - cos(A_h, B_h) (the stream outputs before o_proj)
  resid_norm.npy [loops, N, T]: ||h|| after each layer;  lens_kl.npy [loops, T]: KL(final || lens after loop l)
  logits.npy [T, V]
and manifest.json (tokens, case, tolerances).
Run:  /usr/bin/python3 tools/reference/make_capture_golden.py [--out tests/data/capture]
"""

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sage_ref  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CASES = ["loop2_moe", "loop3_dense", "loop2_dense_w4"]
# |engine - reference| <= abs + rel * |reference|, per kind.
TOLERANCE = {"probabilities": {"abs": 1e-5, "rel": 0.0},  # attention, gates, router
             "norms": {"abs": 1e-4, "rel": 1e-4},          # stream norms, divergence, residual norms, lens KL
             "logits": {"abs": 2e-4, "rel": 1e-4}}


def write_npy(path: str, a: np.ndarray):
    np.save(path, np.ascontiguousarray(a, dtype="<f4"))


def make_case(name: str, out_root: str):
    model_dir = os.path.join(REPO, "tests", "data", "golden", name)
    with open(os.path.join(model_dir, "golden.json")) as f:
        tokens = json.load(f)["tokens"]
    model = sage_ref.SageModel.load(model_dir, dtype=torch.float64)
    cfg = model.cfg
    logits, records = sage_ref.capture(model, tokens)
    T, H, hd, N = len(tokens), cfg.num_attention_heads, cfg.head_dim, cfg.num_hidden_layers
    loops = cfg.loop_num
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    files = []

    def emit(fname, arr):
        write_npy(os.path.join(out, fname), arr.detach().numpy() if torch.is_tensor(arr) else arr)
        files.append(fname)

    resid = np.zeros((loops, N, T))
    final_logp = torch.log_softmax(logits, dim=-1)  # [T, V]
    kl = np.zeros((loops, T))
    for r in records:
        loop = r["loop"]
        if "layer" not in r:
            lens_logp = torch.log_softmax(model.head(r["hidden"]), dim=-1)
            kl[loop - 1] = (final_logp.exp() * (final_logp - lens_logp)).sum(-1).numpy()
            continue
        L = r["layer"]
        tag = f".loop{loop}.layer{L}.npy"
        resid[loop - 1, L] = r["residual"].norm(dim=-1).numpy()
        if loop == 1:
            emit("attn.global" + tag, r["attn"])
        else:
            emit("attn.global" + tag, r["attn_global"])
            emit("attn.local" + tag, r["attn_local"])
            g = r["gate"]  # [T, H]
            emit("gate" + tag, g)
            a, b = r["stream_global"], r["stream_local"]  # [T, H, hd]
            o_w = model.w[f"model.layers.{L}.self_attn.o_proj.weight"]  # [D, H*hd]
            ng = torch.zeros(T, H, dtype=torch.float64)
            nl = torch.zeros(T, H, dtype=torch.float64)
            for h in range(H):
                wh = o_w[:, h * hd:(h + 1) * hd]  # [D, hd]
                ng[:, h] = ((g[:, h:h + 1] * a[:, h]) @ wh.T).norm(dim=-1)
                nl[:, h] = (((1 - g[:, h:h + 1]) * b[:, h]) @ wh.T).norm(dim=-1)
            emit("norm.global" + tag, ng)
            emit("norm.local" + tag, nl)
            emit("divergence" + tag, 1 - torch.nn.functional.cosine_similarity(a, b, dim=-1))
        if "router_probs" in r:
            emit("router" + tag, r["router_probs"])
    emit("resid_norm.npy", resid)
    emit("lens_kl.npy", kl)
    emit("logits.npy", logits)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"case": name, "tokens": tokens, "tolerance": TOLERANCE, "files": sorted(files),
                   "generator": "tools/reference/make_capture_golden.py (float64 reference, stored as float32)"},
                  f, indent=1)
        f.write("\n")
    return sum(os.path.getsize(os.path.join(out, x)) for x in os.listdir(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "data", "capture"))
    args = parser.parse_args()
    torch.use_deterministic_algorithms(True)
    total = 0
    for name in CASES:
        size = make_case(name, args.out)
        total += size
        print(f"{name}: {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
