#!/usr/bin/python3
"""Regenerates tests/data/golden/ deterministically from tools/reference/sage_ref.py.

Each case folder holds a tiny random checkpoint (config.json, weights, sometimes generation_config.json),
golden.json (tokens, description, dtype, tolerance, outputs) and golden.safetensors (F32 logits).
Before anything is written every case is self-checked:
  - prefill == token-by-token decode, and half prefill + half decode (max abs diff < 1e-4),
  - float32 against float64 evaluation of the same stored weights (the size of pure rounding noise, which
    must be well inside the tolerance),
  - MoE routing is never near a tie (top-k margin), so an engine cannot legitimately pick other experts,
  - loop gates actually vary over (0, 1).
Run:  /usr/bin/python3 tools/reference/make_golden.py [--out tests/data/golden]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sage_ref  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# |engine - golden| <= abs + rel * |golden| elementwise, for every stored logits tensor.
TOLERANCE = {"abs": 2e-4, "rel": 1e-4}
DECODE_LIMIT = 1e-4  # prefill vs incremental decode in the reference itself
ROUNDING_LIMIT = TOLERANCE["abs"] / 10  # float32 vs float64 evaluation must leave a 10x margin
MIN_ROUTER_MARGIN = 1e-3  # probability gap between the k-th and (k+1)-th expert

SAGE = {"model_type": "sageloopcoder", "architectures": ["SAGELoopCoderForCausalLM"]}
IQUEST = {"model_type": "iquestloopcoder", "architectures": ["IQuestLoopCoderForCausalLM"]}
LLAMA = {"model_type": "llama", "architectures": ["LlamaForCausalLM"]}


def config(family: dict, **keys) -> dict:
    """A small config of the given family; keys override the defaults, a value of None drops the key."""
    base = dict(family)
    base.update(vocab_size=96, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=8, hidden_act="silu",
                rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=256, tie_word_embeddings=False,
                attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2, use_cache=True)
    if family is not LLAMA:
        base.update(loop_num=2, loop_window_size=4)
    base.update(keys)
    return {k: v for k, v in base.items() if v is not None}


# name, config, tokens T, storage dtype, shards, generation_config, description
CASES = [
    ("llama_dense", config(LLAMA, num_attention_heads=2, num_key_value_heads=1, head_dim=None, vocab_size=128,
                           rms_norm_eps=1e-6),
     24, "f32", 1, {"bos_token_id": 1, "eos_token_id": 2},
     "Plain Llama: no loop_num key (=> 1 loop), head_dim absent (32/2 = 16), GQA ratio 2."),
    ("loop2_dense_w4", config(SAGE, mch_heads=[[0, 1], [1, 0]], eos_token_id=[2, 5]),
     32, "f32", 1, {"bos_token_id": 1, "eos_token_id": [2, 5, 7]},
     "SAGE loop_num 2, window 4 < T, GQA ratio 2, mch_heads [[0,1],[1,0]]; generation_config overrides eos."),
    ("loop3_dense", config(SAGE, loop_num=3, loop_window_size=6, head_dim=16),
     28, "f32", 1, None,
     "SAGE loop_num 3, window 6; head_dim 16 given explicitly (hidden 32 / 4 heads would be 8)."),
    ("loop2_gqa1", config(SAGE, num_key_value_heads=4, head_dim=None, loop_window_size=64),
     24, "f32", 1, None,
     "SAGE loop_num 2, KV heads = heads (no grouping), window 64 >= T (local stream sees the whole prefix)."),
    ("loop2_gqa4", config(SAGE, num_attention_heads=8, num_key_value_heads=2, head_dim=8, loop_window_size=5),
     26, "f32", 1, None,
     "SAGE loop_num 2, 8 query heads on 2 KV heads (ratio 4), window 5; heads*head_dim = 64 > hidden 32."),
    ("loop2_moe", config(SAGE, num_hidden_layers=3, num_experts=4, num_experts_per_tok=2,
                         moe_intermediate_size=16, norm_topk_prob=False, decoder_sparse_step=1,
                         mlp_only_layers=[1]),
     30, "f32", 1, None,
     "SAGE loop_num 2 with MoE: 4 experts top-2, norm_topk_prob false, no shared expert; "
     "mlp_only_layers [1] makes layer 1 dense, layers 0 and 2 MoE."),
    ("loop2_moe_shared_norm", config(SAGE, num_hidden_layers=3, num_experts=4, num_experts_per_tok=2,
                                     moe_intermediate_size=24, norm_topk_prob=True,
                                     shared_expert_intermediate_size=48, decoder_sparse_step=2),
     30, "f32", 1, None,
     "SAGE loop_num 2 with MoE: 4 experts top-2 renormalised, shared expert with sigmoid shared_expert_gate; "
     "decoder_sparse_step 2 makes only layer 1 MoE, layers 0 and 2 dense."),
    ("loop2_tied", config(SAGE, tie_word_embeddings=True),
     24, "f32", 1, None,
     "SAGE loop_num 2 with tie_word_embeddings true: no lm_head.weight, the head is the embedding."),
    ("loop2_bf16", config(SAGE),
     32, "bf16", 1, None,
     "SAGE loop_num 2 with BF16 weights; logits computed in float32 from the stored BF16 values."),
    ("loop2_f16", config(SAGE),
     32, "f16", 1, None,
     "SAGE loop_num 2 with F16 weights; logits computed in float32 from the stored F16 values."),
    ("loop2_sharded", config(SAGE),
     24, "f32", 2, None,
     "SAGE loop_num 2 split over two safetensors shards with model.safetensors.index.json."),
    ("loop2_rope_llama3", config(SAGE, rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                     "high_freq_factor": 4.0,
                                                     "original_max_position_embeddings": 64}),
     32, "f32", 1, None,
     "SAGE loop_num 2 with llama3 rope_scaling (factor 8, low 1, high 4, original 64): with head_dim 8 one "
     "frequency is kept, one interpolated and two divided by the factor."),
    ("loop2_rope_linear", config(SAGE, rope_theta=500000.0, rope_scaling={"type": "linear", "factor": 2.0}),
     32, "f32", 1, None,
     "SAGE loop_num 2 with linear rope_scaling (legacy 'type' key, factor 2) and rope_theta 500000."),
    ("iquest_loop2", config(IQUEST, loop_window_size=8, eos_token_id=[2, 3]),
     40, "f32", 1, None,
     "IQuestLoopCoder layout: loop_num 2, window 8 < T, no mch_heads key."),
]


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def check_case(name, cfg_dict, model_dir, tokens):
    """Self-checks of one written case; returns the golden logits {name: [T, V] float32} and a report line."""
    cfg = sage_ref.SageConfig.from_dict(cfg_dict)
    weights, dtype = sage_ref.load_weights(model_dir)
    model = sage_ref.SageModel(cfg, weights, torch.float32)
    model64 = sage_ref.SageModel(cfg, weights, torch.float64)

    outputs = {}
    for loops in range(cfg.loop_num, 0, -1):
        key = "logits" if loops == cfg.loop_num else f"logits_loops{loops}"
        outputs[key] = model.forward(tokens, max_loops=loops)  # [T, V]
    report = {"dtype": dtype}

    # Prefill against decode: all tokens one by one, then half prefilled and the rest decoded.
    state = model.new_state()
    stepped = torch.stack([model.decode_step(state, t) for t in tokens])  # [T, V]
    half = len(tokens) // 2
    pre, state = model.prefill(tokens[:half])
    mixed = torch.cat([pre, torch.stack([model.decode_step(state, t) for t in tokens[half:]])])
    report["decode"] = max(max_abs(stepped, outputs["logits"]), max_abs(mixed, outputs["logits"]))
    assert report["decode"] < DECODE_LIMIT, f"{name}: prefill vs decode differ by {report['decode']:.3g}"

    # Rounding noise: float32 against float64 evaluation of identical weights.
    report["f32_vs_f64"] = max(max_abs(model64.forward(tokens, max_loops=loops), outputs[key])
                               for key, loops in output_loops(cfg).items())
    assert report["f32_vs_f64"] < ROUNDING_LIMIT, f"{name}: f32 vs f64 {report['f32_vs_f64']:.3g}"

    _, records = sage_ref.capture(model, tokens)
    gates = [r["gate"] for r in records if "gate" in r]
    if gates:
        g = torch.cat([x.flatten() for x in gates])
        report["gate"] = (float(g.min()), float(g.max()))
        assert report["gate"][0] < 0.3 and report["gate"][1] > 0.7, f"{name}: gates barely vary {report['gate']}"
    margins = []
    for r in records:
        if "router_probs" in r:
            p = torch.sort(r["router_probs"], dim=-1, descending=True).values  # [T, E]
            k = cfg.num_experts_per_tok
            margins.append(float((p[:, k - 1] - p[:, k]).min()))
    if margins:
        report["router_margin"] = min(margins)
    report["logit_absmax"] = float(outputs["logits"].abs().max())
    return outputs, report


def output_loops(cfg) -> dict:
    return {("logits" if n == cfg.loop_num else f"logits_loops{n}"): n for n in range(cfg.loop_num, 0, -1)}


def build_case(out_root, name, cfg_dict, T, dtype, shards, gen_cfg, description, seed):
    """Writes the case, retrying with the next seed while MoE routing is too close to a tie."""
    cfg = sage_ref.SageConfig.from_dict(cfg_dict)
    while True:
        case_dir = os.path.join(out_root, name)
        shutil.rmtree(case_dir, ignore_errors=True)
        sage_ref.write_random_checkpoint(case_dir, cfg_dict, seed=seed, dtype=dtype, shards=shards)
        rng = np.random.default_rng(seed + 7919)
        tokens = [1] + rng.integers(3, cfg.vocab_size, T - 1).tolist()
        outputs, report = check_case(name, cfg_dict, case_dir, tokens)
        if report.get("router_margin", 1.0) >= MIN_ROUTER_MARGIN:
            break
        print(f"  {name}: seed {seed} routes within {report['router_margin']:.2g} of a tie, trying {seed + 1}")
        seed += 1
    if gen_cfg is not None:
        with open(os.path.join(case_dir, "generation_config.json"), "w") as f:
            json.dump(gen_cfg, f, indent=2)
            f.write("\n")
    golden = {"tokens": tokens, "description": description, "dtype": report["dtype"], "tolerance": TOLERANCE,
              "outputs": output_loops(cfg), "seed": seed}
    with open(os.path.join(case_dir, "golden.json"), "w") as f:
        # One key per line, each value compact, so the token list stays readable in a diff.
        f.write("{\n" + ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in golden.items()) + "\n}\n")
    sage_ref.write_safetensors(os.path.join(case_dir, "golden.safetensors"),
                               {k: v.float().contiguous() for k, v in outputs.items()})
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(REPO, "tests", "data", "golden"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # one summation order, so reruns on one machine are bit-identical
    torch.use_deterministic_algorithms(True)

    # Build everything in a scratch folder first so a failing self-check leaves the committed data untouched.
    scratch = tempfile.mkdtemp(prefix="golden-")
    try:
        total = 0
        print(f"{'case':24} {'dtype':5} {'decode':>9} {'f32-f64':>9} {'|logit|':>8} {'gate range':>13} "
              f"{'route gap':>9} {'bytes':>8}")
        for i, (name, cfg_dict, T, dtype, shards, gen_cfg, description) in enumerate(CASES):
            report = build_case(scratch, name, cfg_dict, T, dtype, shards, gen_cfg, description, seed=1000 + 17 * i)
            size = sum(os.path.getsize(os.path.join(scratch, name, f)) for f in os.listdir(os.path.join(scratch, name)))
            total += size
            gate = "%.3f..%.3f" % report["gate"] if "gate" in report else "-"
            margin = "%.3g" % report["router_margin"] if "router_margin" in report else "-"
            print(f"{name:24} {report['dtype']:5} {report['decode']:9.2e} {report['f32_vs_f64']:9.2e} "
                  f"{report['logit_absmax']:8.2f} {gate:>13} {margin:>9} {size:8d}")
        print(f"total {total} bytes ({total / 2**20:.2f} MiB)")
        assert total < 3 * 2**20, "golden data must stay well under 3 MB"
        shutil.rmtree(args.out, ignore_errors=True)
        shutil.copytree(scratch, args.out)
        print(f"wrote {len(CASES)} cases to {os.path.relpath(args.out, REPO)}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
