#!/usr/bin/python3
"""Self-tests of the PyTorch reference (plain asserts). Run: /usr/bin/python3 tools/reference/test_reference.py"""

import math
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sage_ref  # noqa: E402


def small_config(**keys) -> dict:
    cfg = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
               num_key_value_heads=2, head_dim=8, rms_norm_eps=1e-5, rope_theta=10000.0, loop_num=2,
               loop_window_size=4)
    cfg.update(keys)
    return {k: v for k, v in cfg.items() if v is not None}


def make_model(seed=0, dtype=torch.float32, **keys) -> sage_ref.SageModel:
    cfg = sage_ref.SageConfig.from_dict(small_config(**keys))
    return sage_ref.SageModel(cfg, sage_ref.random_weights(cfg, seed), dtype)


def tokens(n, vocab=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [1] + torch.randint(3, vocab, (n - 1,), generator=g).tolist()


def max_abs(a, b) -> float:
    return float((a - b).abs().max())


def test_safetensors_round_trip():
    weights = sage_ref.random_weights(sage_ref.SageConfig.from_dict(small_config()), 1)
    with tempfile.TemporaryDirectory() as d:
        for dtype, store in (("f32", torch.float32), ("f16", torch.float16), ("bf16", torch.bfloat16)):
            for shards in (1, 2):
                path = os.path.join(d, f"{dtype}{shards}")
                sage_ref.write_checkpoint(path, small_config(), weights, dtype, shards)
                loaded, name = sage_ref.load_weights(path)
                assert name == {"f32": "F32", "f16": "F16", "bf16": "BF16"}[dtype]
                assert sorted(loaded) == sorted(weights)
                for k, t in weights.items():
                    assert torch.equal(loaded[k], t.to(store)), (dtype, shards, k)
                with open(os.path.join(path, "model.safetensors" if shards == 1 else
                                       "model-00001-of-00002.safetensors"), "rb") as f:
                    header_len = int.from_bytes(f.read(8), "little")
                    assert (8 + header_len) % 8 == 0


def test_prefill_equals_decode():
    for keys in ({}, {"loop_num": 3, "loop_window_size": 3},
                 {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
                  "shared_expert_intermediate_size": 24, "norm_topk_prob": True}):
        model = make_model(**keys)
        ids = tokens(16)
        full = model.forward(ids)  # [T, V]
        state = model.new_state()
        stepped = torch.stack([model.decode_step(state, t) for t in ids])  # [T, V]
        assert max_abs(full, stepped) < 1e-4, (keys, max_abs(full, stepped))
        pre, state = model.prefill(ids[:7])
        rest = torch.stack([model.decode_step(state, t) for t in ids[7:]])
        assert max_abs(full, torch.cat([pre, rest])) < 1e-4, keys
        # The loop-2 caches keep only the last W tokens.
        assert state.kw[0][0].shape[0] == model.cfg.loop_window_size and state.k1[0].shape[0] == len(ids)


def plain_llama(model: sage_ref.SageModel, ids):
    """An independent textbook Llama forward (per-head loops, explicit triangular mask, HF rotate_half)."""
    c, w = model.cfg, model.w
    T, hd = len(ids), c.head_dim
    inv_freq = 1.0 / (c.rope_theta ** (torch.arange(0, hd, 2).float() / hd))  # [hd/2]
    ang = torch.arange(T).float()[:, None] * inv_freq[None]  # [T, hd/2]
    cos, sin = torch.cat([ang.cos(), ang.cos()], -1), torch.cat([ang.sin(), ang.sin()], -1)  # [T, hd]

    def rot(x):  # x [T, hd]
        return x * cos + torch.cat([-x[:, hd // 2:], x[:, :hd // 2]], -1) * sin

    def norm(x, weight):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + c.rms_norm_eps) * weight

    h = w["model.embed_tokens.weight"][ids]  # [T, D]
    for L in range(c.num_hidden_layers):
        p = f"model.layers.{L}."
        x = norm(h, w[p + "input_layernorm.weight"])
        q = x @ w[p + "self_attn.q_proj.weight"].T  # [T, H*hd]
        k = x @ w[p + "self_attn.k_proj.weight"].T  # [T, KV*hd]
        v = x @ w[p + "self_attn.v_proj.weight"].T
        heads = []
        for hh in range(c.num_attention_heads):
            kv = hh // (c.num_attention_heads // c.num_key_value_heads)
            qh = rot(q[:, hh * hd:(hh + 1) * hd])
            kh = rot(k[:, kv * hd:(kv + 1) * hd])
            s = qh @ kh.T / math.sqrt(hd) + torch.triu(torch.full((T, T), float("-inf")), 1)  # [T, T]
            heads.append(torch.softmax(s, -1) @ v[:, kv * hd:(kv + 1) * hd])
        h = h + torch.cat(heads, -1) @ w[p + "self_attn.o_proj.weight"].T
        y = norm(h, w[p + "post_attention_layernorm.weight"])
        a = torch.nn.functional.silu(y @ w[p + "mlp.gate_proj.weight"].T) * (y @ w[p + "mlp.up_proj.weight"].T)
        h = h + a @ w[p + "mlp.down_proj.weight"].T
    return norm(h, w["model.norm.weight"]) @ w["lm_head.weight"].T


def test_one_loop_is_llama():
    model = make_model(seed=3)
    ids = tokens(20, seed=3)
    one = model.forward(ids, max_loops=1)
    assert max_abs(one, plain_llama(model, ids)) < 1e-4
    assert max_abs(one, model.forward(ids)) > 1e-2  # the second loop does change the logits
    state = model.new_state(max_loops=1)
    stepped = torch.stack([model.decode_step(state, t) for t in ids])
    assert max_abs(one, stepped) < 1e-4


def test_wide_window_is_full_local_attention():
    ids = tokens(12, seed=5)
    wide = make_model(seed=5, loop_window_size=len(ids))
    wider = make_model(seed=5, loop_window_size=1000)
    narrow = make_model(seed=5, loop_window_size=3)
    _, rec = sage_ref.capture(wide, ids)
    # With W >= T the local stream is plain causal attention over all loop-2 keys.
    original = sage_ref.local_mask
    sage_ref.local_mask = lambda T, W: sage_ref.causal_mask(T)
    try:
        reference = wide.forward(ids)
    finally:
        sage_ref.local_mask = original
    assert max_abs(wide.forward(ids), reference) < 1e-6
    assert max_abs(wider.forward(ids), reference) < 1e-6
    assert max_abs(narrow.forward(ids), reference) > 1e-3
    # Captured rows: local probabilities sum to one and, with W >= T, equal the causal pattern's support.
    local = [r["attn_local"] for r in rec if "attn_local" in r][0]  # [H, T, T]
    assert torch.allclose(local.sum(-1), torch.ones(local.shape[:2]))
    assert bool(((local > 0) == sage_ref.causal_mask(len(ids))).all())
    # A narrow window puts zero probability outside i-W+1..i.
    _, rec = sage_ref.capture(narrow, ids)
    local = [r["attn_local"] for r in rec if "attn_local" in r][0]
    assert float(local[:, ~sage_ref.local_mask(len(ids), 3)].abs().max()) == 0.0


def test_moe_all_experts_is_softmax_mixture():
    model = make_model(seed=7, num_experts=4, num_experts_per_tok=4, moe_intermediate_size=16,
                       norm_topk_prob=True)
    y = torch.randn(9, 32, generator=torch.Generator().manual_seed(7))  # [T, D]
    p = "model.layers.0.mlp."
    probs = torch.softmax(y @ model.w[p + "gate.weight"].T, -1)  # [T, E]
    mixture = sum(probs[:, e:e + 1] * model.swiglu(p + f"experts.{e}.", y) for e in range(4))
    assert max_abs(model.moe(0, y), mixture) < 1e-5


def test_moe_layer_selection():
    cfg = sage_ref.SageConfig.from_dict(small_config(num_hidden_layers=4, num_experts=4, num_experts_per_tok=2,
                                                     moe_intermediate_size=8, decoder_sparse_step=2,
                                                     mlp_only_layers=[3]))
    assert [cfg.is_moe_layer(L) for L in range(4)] == [False, True, False, False]


def test_rope_scaling():
    base = sage_ref.SageConfig.from_dict(small_config(rope_theta=10000.0))
    inv = sage_ref.rope_inv_freq(base)
    linear = sage_ref.SageConfig.from_dict(small_config(rope_scaling={"type": "linear", "factor": 4.0}))
    assert torch.allclose(sage_ref.rope_inv_freq(linear), inv / 4)
    llama3 = sage_ref.SageConfig.from_dict(small_config(rope_scaling={
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64}))
    got = sage_ref.rope_inv_freq(llama3)  # wavelengths 6.3, 62.8, 628, 6283 against bands 16 and 64
    smooth = (64 / (2 * math.pi / float(inv[1])) - 1) / 3
    assert float(got[0]) == float(inv[0])
    assert abs(float(got[1]) - ((1 - smooth) * float(inv[1]) / 8 + smooth * float(inv[1]))) < 1e-7
    assert torch.allclose(got[2:], inv[2:] / 8)


def test_start_offset():
    # Shifting all positions leaves attention scores (relative RoPE) and so one-loop logits unchanged ...
    model = make_model(seed=11)
    ids = tokens(10, seed=11)
    assert max_abs(model.forward(ids, max_loops=1), model.forward(ids, max_loops=1, start_pos=37)) < 1e-4
    # ... but the loop gate reads the post-RoPE query, so from loop 2 on absolute positions matter.
    assert max_abs(model.forward(ids), model.forward(ids, start_pos=37)) > 1e-3


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    for name, fn in tests:
        fn()
        print(f"PASS {name}")
    print(f"{len(tests)} tests passed")


if __name__ == "__main__":
    main()
