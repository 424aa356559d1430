#!/usr/bin/python3
"""Readable PyTorch reference of the SAGELoopCoder model (docs: tools/reference/README.md).

Implements the forward pass of the design's MODEL.md on the CPU in float32 (or float64 for error estimates):
Llama layers applied in `loop_num` loops, loops >= 2 mixing a gated global stream (loop-1 K/V, causal) with a
local stream (this loop's K/V, last `loop_window_size` keys), dense SwiGLU or Qwen2-MoE feed-forward blocks.

Besides the whole-sequence forward pass there is an incremental decoder with the KV caches of MODEL.md
("Incremental decoding"): loop-1 K/V for every token and, per further loop, only the last W tokens.

Also here: a minimal safetensors reader/writer (F32/F16/BF16), a random checkpoint writer and a command line:
    sage_ref.py score  --model DIR --tokens 1,2,3 [--max-loops N]
    sage_ref.py bench  --model DIR --prompt-tokens N --decode-tokens M [--threads N]
    sage_ref.py random --out DIR --config CONFIG.json [--dtype f32|f16|bf16] [--seed S] [--shards 1|2]
"""

import argparse
import json
import math
import os
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

# ----------------------------------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then the data.

_ST_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
_ST_NAMES = {v: k for k, v in _ST_DTYPES.items()}


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """Returns every tensor of the file in its stored dtype (F32, F16 or BF16)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: file is {len(blob)} bytes, too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if 8 + header_len > len(blob):
        raise ValueError(f"{path}: header length {header_len} exceeds the file size {len(blob)}")
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    data = memoryview(blob)[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {info['dtype']}; supported are F32, F16, BF16")
        dtype = _ST_DTYPES[info["dtype"]]
        shape = list(info["shape"])
        begin, end = info["data_offsets"]
        nbytes = math.prod(shape) * torch.tensor([], dtype=dtype).element_size()
        if end - begin != nbytes or end > len(data):
            raise ValueError(f"{path}: tensor {name} data_offsets {begin}..{end} do not fit shape {shape}")
        raw = bytearray(data[begin:end])  # a writable copy: torch.frombuffer warns on read-only buffers
        tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(shape) if nbytes else torch.zeros(shape, dtype=dtype)
    return tensors


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None):
    """Writes tensors (already in their storage dtype) in name order; the header is space-padded to 8 bytes."""
    assert sys.byteorder == "little"
    header = {"__metadata__": metadata or {"format": "pt"}}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if t.dtype not in _ST_NAMES:
            raise ValueError(f"tensor {name}: dtype {t.dtype} cannot be stored (F32, F16, BF16 only)")
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * ((8 - (8 + len(head)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for raw in chunks:
            f.write(raw)


# ----------------------------------------------------------------------------------------------------------------------
# Configuration

@dataclass
class SageConfig:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: Optional[dict] = None
    max_position_embeddings: int = 2048
    tie_word_embeddings: bool = False
    loop_num: int = 1
    loop_window_size: int = 64
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    norm_topk_prob: bool = False
    shared_expert_intermediate_size: int = 0
    decoder_sparse_step: int = 1
    mlp_only_layers: List[int] = field(default_factory=list)
    mch_heads: List[List[int]] = field(default_factory=list)

    @staticmethod
    def from_dict(d: dict) -> "SageConfig":
        heads = d["num_attention_heads"]
        head_dim = d.get("head_dim") or d["hidden_size"] // heads
        return SageConfig(
            vocab_size=d["vocab_size"],
            hidden_size=d["hidden_size"],
            intermediate_size=d["intermediate_size"],
            num_hidden_layers=d["num_hidden_layers"],
            num_attention_heads=heads,
            num_key_value_heads=d.get("num_key_value_heads") or heads,
            head_dim=head_dim,
            rms_norm_eps=d.get("rms_norm_eps", 1e-6),
            rope_theta=d.get("rope_theta", 10000.0),
            rope_scaling=d.get("rope_scaling"),
            max_position_embeddings=d.get("max_position_embeddings", 2048),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
            loop_num=d.get("loop_num", 1),
            loop_window_size=d.get("loop_window_size", 64),
            num_experts=d.get("num_experts") or 0,
            num_experts_per_tok=d.get("num_experts_per_tok") or 0,
            moe_intermediate_size=d.get("moe_intermediate_size") or 0,
            norm_topk_prob=bool(d.get("norm_topk_prob", False)),
            shared_expert_intermediate_size=d.get("shared_expert_intermediate_size") or 0,
            decoder_sparse_step=d.get("decoder_sparse_step") or 1,
            mlp_only_layers=list(d.get("mlp_only_layers") or []),
            mch_heads=[list(p) for p in d.get("mch_heads") or []],
        )

    def is_moe_layer(self, layer: int) -> bool:
        """Qwen2-MoE rule for which layers carry the MoE block."""
        return (self.num_experts > 0 and layer not in self.mlp_only_layers
                and (layer + 1) % self.decoder_sparse_step == 0)


def expected_shapes(cfg: SageConfig) -> Dict[str, List[int]]:
    """Every tensor a checkpoint of this config must hold, with its [out, in] shape."""
    D, V, hd = cfg.hidden_size, cfg.vocab_size, cfg.head_dim
    H, KV = cfg.num_attention_heads, cfg.num_key_value_heads
    shapes = {"model.embed_tokens.weight": [V, D], "model.norm.weight": [D]}
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = [V, D]

    def swiglu(prefix, F):
        shapes[prefix + "gate_proj.weight"] = [F, D]
        shapes[prefix + "up_proj.weight"] = [F, D]
        shapes[prefix + "down_proj.weight"] = [D, F]

    for L in range(cfg.num_hidden_layers):
        p = f"model.layers.{L}."
        shapes[p + "input_layernorm.weight"] = [D]
        shapes[p + "post_attention_layernorm.weight"] = [D]
        shapes[p + "self_attn.q_proj.weight"] = [H * hd, D]
        shapes[p + "self_attn.k_proj.weight"] = [KV * hd, D]
        shapes[p + "self_attn.v_proj.weight"] = [KV * hd, D]
        shapes[p + "self_attn.o_proj.weight"] = [D, H * hd]
        if cfg.is_moe_layer(L):
            shapes[p + "mlp.gate.weight"] = [cfg.num_experts, D]
            for e in range(cfg.num_experts):
                swiglu(p + f"mlp.experts.{e}.", cfg.moe_intermediate_size)
            if cfg.shared_expert_intermediate_size > 0:
                swiglu(p + "mlp.shared_expert.", cfg.shared_expert_intermediate_size)
                shapes[p + "mlp.shared_expert_gate.weight"] = [1, D]
        else:
            swiglu(p + "mlp.", cfg.intermediate_size)
        if cfg.loop_num > 1:
            shapes[f"model.gate_projections.{L}.weight"] = [H, hd]
            shapes[f"model.gate_projections.{L}.bias"] = [H]
    return shapes


def rope_inv_freq(cfg: SageConfig) -> torch.Tensor:
    """inv_freq [hd/2] in float32, computed exactly as HF transformers' rope init functions do."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    scaling = cfg.rope_scaling or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / scaling["factor"]
    if kind == "llama3":
        factor = scaling["factor"]
        low_freq_factor = scaling["low_freq_factor"]
        high_freq_factor = scaling["high_freq_factor"]
        old_context_len = scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        # Long wavelengths are slowed down by `factor`, short ones kept, the band between interpolated smoothly.
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    raise ValueError(f"rope_scaling type '{kind}' is not supported (default, linear, llama3)")


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoint loading

def load_config(model_dir: str) -> Tuple[dict, SageConfig]:
    with open(os.path.join(model_dir, "config.json")) as f:
        raw = json.load(f)
    return raw, SageConfig.from_dict(raw)


def load_weights(model_dir: str) -> Tuple[Dict[str, torch.Tensor], str]:
    """All tensors of model.safetensors or of the shards named by model.safetensors.index.json, in stored dtype.
    Also returns the storage dtype name (F32/F16/BF16, or 'mixed')."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            part = read_safetensors(os.path.join(model_dir, shard))
            for name, t in part.items():
                if weight_map.get(name) != shard:
                    raise ValueError(f"{shard}: tensor {name} is not mapped to this shard by the index")
                tensors[name] = t
        missing = set(weight_map) - set(tensors)
        if missing:
            raise ValueError(f"index names tensors missing from their shards: {sorted(missing)[:5]}")
    else:
        tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    dtypes = {_ST_NAMES[t.dtype] for t in tensors.values()}
    return tensors, dtypes.pop() if len(dtypes) == 1 else "mixed"


# ----------------------------------------------------------------------------------------------------------------------
# Model

def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # x [T, D], weight [D]
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor]):
    """q [T, H, hd], k/v [S, KV, hd], mask [T, S] (True = may attend) or None (all keys).
    Query head h reads KV head h // (H / KV). Returns out [T, H, hd] and probabilities [H, T, S]."""
    H, KV, hd = q.shape[1], k.shape[1], q.shape[2]
    group = H // KV
    k = k.repeat_interleave(group, dim=1)  # [S, H, hd]
    v = v.repeat_interleave(group, dim=1)  # [S, H, hd]
    scores = torch.einsum("thd,shd->hts", q, k) * hd ** -0.5  # [H, T, S]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)  # [H, T, S]
    return torch.einsum("hts,shd->thd", probs, v), probs


def causal_mask(T: int) -> torch.Tensor:
    """[T, T]: query i sees keys j <= i."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    return j <= i


def local_mask(T: int, window: int) -> torch.Tensor:
    """[T, T]: query i sees keys i-W+1 <= j <= i (W keys including itself)."""
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    return (j <= i) & (j > i - window)


@dataclass
class DecodeState:
    """KV caches for incremental decoding. k1/v1[L]: [n, KV, hd] for every token so far (loop 1).
    kw/vw[loop-2][L]: [min(n, W), KV, hd], the last W tokens of loop `loop` (>= 2)."""
    pos: int
    k1: List[torch.Tensor]
    v1: List[torch.Tensor]
    kw: List[List[torch.Tensor]]
    vw: List[List[torch.Tensor]]
    loops: int


class SageModel:
    def __init__(self, cfg: SageConfig, weights: Dict[str, torch.Tensor], dtype=torch.float32):
        self.cfg = cfg
        self.dtype = dtype
        shapes = expected_shapes(cfg)
        for name, shape in shapes.items():
            if name not in weights:
                raise ValueError(f"checkpoint lacks tensor {name} (shape {shape}) that the config implies")
            if list(weights[name].shape) != shape:
                raise ValueError(f"tensor {name} has shape {list(weights[name].shape)}, config implies {shape}")
        extra = sorted(set(weights) - set(shapes))
        if extra:
            raise ValueError(f"checkpoint holds tensors the config does not use: {extra[:5]}")
        self.w = {name: t.to(dtype) for name, t in weights.items()}  # compute copies in float32/float64
        if cfg.tie_word_embeddings:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.inv_freq = rope_inv_freq(cfg)  # [hd/2] float32, as HF computes it

    @staticmethod
    def load(model_dir: str, dtype=torch.float32) -> "SageModel":
        _, cfg = load_config(model_dir)
        weights, _ = load_weights(model_dir)
        return SageModel(cfg, weights, dtype)

    # --- building blocks -------------------------------------------------------------------------------------------

    def rope(self, positions: torch.Tensor):
        """positions [T] -> cos, sin [T, 1, hd] (HF: freqs in float32, emb = cat(freqs, freqs))."""
        freqs = positions.to(self.dtype)[:, None] * self.inv_freq.to(self.dtype)[None, :]  # [T, hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)  # [T, hd]
        return emb.cos()[:, None, :], emb.sin()[:, None, :]

    def qkv(self, L: int, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """x [T, D] (normed) -> q [T, H, hd], k/v [T, KV, hd], q and k rotated."""
        c, p = self.cfg, f"model.layers.{L}.self_attn."
        T = x.shape[0]
        q = (x @ self.w[p + "q_proj.weight"].T).view(T, c.num_attention_heads, c.head_dim)
        k = (x @ self.w[p + "k_proj.weight"].T).view(T, c.num_key_value_heads, c.head_dim)
        v = (x @ self.w[p + "v_proj.weight"].T).view(T, c.num_key_value_heads, c.head_dim)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        return q, k, v

    def loop_gate(self, L: int, q: torch.Tensor) -> torch.Tensor:
        """q [T, H, hd] post-RoPE, unscaled -> g [T, H] = sigmoid(q . Wg[h] + bg[h])."""
        wg = self.w[f"model.gate_projections.{L}.weight"]  # [H, hd]
        bg = self.w[f"model.gate_projections.{L}.bias"]  # [H]
        return torch.sigmoid((q * wg[None]).sum(-1) + bg[None])

    def swiglu(self, prefix: str, y: torch.Tensor) -> torch.Tensor:
        # y [T, D] -> [T, D]
        gate = y @ self.w[prefix + "gate_proj.weight"].T  # [T, F]
        up = y @ self.w[prefix + "up_proj.weight"].T  # [T, F]
        return (torch.nn.functional.silu(gate) * up) @ self.w[prefix + "down_proj.weight"].T

    def moe(self, L: int, y: torch.Tensor, record: Optional[dict] = None) -> torch.Tensor:
        """Qwen2-MoE block. y [T, D] -> [T, D]."""
        c, p = self.cfg, f"model.layers.{L}.mlp."
        router_probs = torch.softmax(y @ self.w[p + "gate.weight"].T, dim=-1)  # [T, E]
        top_w, top_e = torch.topk(router_probs, c.num_experts_per_tok, dim=-1)  # [T, k] each
        if c.norm_topk_prob:
            top_w = top_w / top_w.sum(-1, keepdim=True)
        out = torch.zeros_like(y)  # [T, D]
        for e in range(c.num_experts):
            chosen = top_e == e  # [T, k]
            weight_e = (top_w * chosen).sum(-1)  # [T], 0 where e was not chosen
            rows = torch.nonzero(chosen.any(-1)).flatten()
            if rows.numel():
                out[rows] += weight_e[rows, None] * self.swiglu(p + f"experts.{e}.", y[rows])
        if c.shared_expert_intermediate_size > 0:
            shared_gate = torch.sigmoid(y @ self.w[p + "shared_expert_gate.weight"].T)  # [T, 1]
            out = out + shared_gate * self.swiglu(p + "shared_expert.", y)
        if record is not None:
            record["router_probs"] = router_probs
            record["experts"] = top_e
            record["expert_weights"] = top_w
        return out

    def ffn(self, L: int, h: torch.Tensor, record: Optional[dict] = None) -> torch.Tensor:
        y = rms_norm(h, self.w[f"model.layers.{L}.post_attention_layernorm.weight"], self.cfg.rms_norm_eps)
        if self.cfg.is_moe_layer(L):
            return self.moe(L, y, record)
        return self.swiglu(f"model.layers.{L}.mlp.", y)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        # h [T, D] -> logits [T, V]
        return rms_norm(h, self.w["model.norm.weight"], self.cfg.rms_norm_eps) @ self.w["lm_head.weight"].T

    def num_loops(self, max_loops: Optional[int]) -> int:
        return self.cfg.loop_num if max_loops is None else max(1, min(max_loops, self.cfg.loop_num))

    # --- whole-sequence forward ------------------------------------------------------------------------------------

    @torch.no_grad()
    def forward(self, ids: List[int], max_loops: Optional[int] = None, start_pos: int = 0,
                trace: Optional[list] = None, return_state: bool = False):
        """ids: T token ids at positions start_pos..start_pos+T-1, no cache. Returns logits [T, V]
        (and a DecodeState holding this pass's caches when return_state). When `trace` is a list, one record per
        (loop, layer) is appended with attention probabilities, gates and routing, and one per loop with the
        residual stream after it (see capture())."""
        c = self.cfg
        loops = self.num_loops(max_loops)
        T, W = len(ids), c.loop_window_size
        cos, sin = self.rope(torch.arange(start_pos, start_pos + T))  # [T, 1, hd] each
        causal, local = causal_mask(T), local_mask(T, W)  # [T, T] each
        h = self.w["model.embed_tokens.weight"][torch.tensor(ids)]  # [T, D]
        k1: List[torch.Tensor] = [None] * c.num_hidden_layers  # [T, KV, hd] per layer
        v1: List[torch.Tensor] = [None] * c.num_hidden_layers
        kw = [[None] * c.num_hidden_layers for _ in range(loops - 1)]  # loop >= 2: [min(T, W), KV, hd]
        vw = [[None] * c.num_hidden_layers for _ in range(loops - 1)]
        for loop in range(1, loops + 1):
            for L in range(c.num_hidden_layers):
                record = {"loop": loop, "layer": L} if trace is not None else None
                x = rms_norm(h, self.w[f"model.layers.{L}.input_layernorm.weight"], c.rms_norm_eps)
                q, k, v = self.qkv(L, x, cos, sin)
                if loop == 1:
                    k1[L], v1[L] = k, v
                    mixed, probs = attention(q, k, v, causal)  # [T, H, hd]
                    if record is not None:
                        record["attn"] = probs
                else:
                    g = self.loop_gate(L, q)  # [T, H]
                    a, probs_a = attention(q, k1[L], v1[L], causal)  # global stream [T, H, hd]
                    b, probs_b = attention(q, k, v, local)  # local stream [T, H, hd]
                    mixed = g[..., None] * a + (1 - g[..., None]) * b
                    kw[loop - 2][L], vw[loop - 2][L] = k[-W:], v[-W:]
                    if record is not None:
                        record.update(attn_global=probs_a, attn_local=probs_b, gate=g, stream_global=a,
                                      stream_local=b)
                o_w = self.w[f"model.layers.{L}.self_attn.o_proj.weight"]  # [D, H*hd]
                h = h + mixed.reshape(T, -1) @ o_w.T
                h = h + self.ffn(L, h, record)
                if record is not None:
                    record["residual"] = h.clone()
                    trace.append(record)
            if trace is not None:
                trace.append({"loop": loop, "hidden": h.clone()})
        logits = self.head(h)
        if return_state:
            return logits, DecodeState(start_pos + T, k1, v1, kw, vw, loops)
        return logits

    # --- incremental decoding --------------------------------------------------------------------------------------

    def new_state(self, max_loops: Optional[int] = None) -> DecodeState:
        n, loops = self.cfg.num_hidden_layers, self.num_loops(max_loops)
        c = self.cfg
        empty = torch.zeros(0, c.num_key_value_heads, c.head_dim, dtype=self.dtype)  # [0, KV, hd]
        return DecodeState(0, [empty] * n, [empty] * n,
                           [[empty] * n for _ in range(loops - 1)], [[empty] * n for _ in range(loops - 1)], loops)

    @torch.no_grad()
    def prefill(self, ids: List[int], max_loops: Optional[int] = None) -> Tuple[torch.Tensor, DecodeState]:
        """Whole-prompt forward pass that also leaves the caches for decode_step. Returns logits [T, V], state."""
        return self.forward(ids, max_loops=max_loops, return_state=True)

    @torch.no_grad()
    def decode_step(self, state: DecodeState, token: int) -> torch.Tensor:
        """One token at position state.pos; updates the caches in place. Returns logits [V]."""
        c = self.cfg
        W = c.loop_window_size
        cos, sin = self.rope(torch.tensor([state.pos]))  # [1, 1, hd] each
        h = self.w["model.embed_tokens.weight"][torch.tensor([token])]  # [1, D]
        for loop in range(1, state.loops + 1):
            for L in range(c.num_hidden_layers):
                x = rms_norm(h, self.w[f"model.layers.{L}.input_layernorm.weight"], c.rms_norm_eps)
                q, k, v = self.qkv(L, x, cos, sin)  # [1, H, hd], [1, KV, hd], [1, KV, hd]
                if loop == 1:
                    state.k1[L] = torch.cat([state.k1[L], k])  # [n+1, KV, hd]
                    state.v1[L] = torch.cat([state.v1[L], v])
                    mixed, _ = attention(q, state.k1[L], state.v1[L], None)
                else:
                    g = self.loop_gate(L, q)  # [1, H]
                    # Global stream: every loop-1 key, the current token's included (loop 1 already ran for it).
                    a, _ = attention(q, state.k1[L], state.v1[L], None)
                    # Local stream: ring of the last W keys of this loop; append self, evict the oldest (t - W).
                    i = loop - 2
                    state.kw[i][L] = torch.cat([state.kw[i][L], k])[-W:]  # [<=W, KV, hd]
                    state.vw[i][L] = torch.cat([state.vw[i][L], v])[-W:]
                    b, _ = attention(q, state.kw[i][L], state.vw[i][L], None)
                    mixed = g[..., None] * a + (1 - g[..., None]) * b
                o_w = self.w[f"model.layers.{L}.self_attn.o_proj.weight"]
                h = h + mixed.reshape(1, -1) @ o_w.T
                h = h + self.ffn(L, h)
        state.pos += 1
        return self.head(h)[0]


def capture(model: SageModel, ids: List[int], max_loops: Optional[int] = None):
    """Intermediates of one forward pass, for comparing the engine's capture hooks.
    Returns (logits [T, V], records). Per (loop, layer) record: 'loop', 'layer', and
      loop 1:  'attn' [H, T, T] causal attention probabilities
      loop>=2: 'attn_global' [H, T, T] (loop-1 keys, causal), 'attn_local' [H, T, T] (zero outside the window),
               'gate' [T, H], 'stream_global'/'stream_local' [T, H, hd] (the A and B mixed by the gate)
      MoE layers: 'router_probs' [T, E] (softmax over all experts), 'experts' [T, k], 'expert_weights' [T, k]
      every layer: 'residual' [T, D] (the residual stream after the layer)
    and after each loop a record {'loop', 'hidden' [T, D]} (residual stream before the final norm)."""
    records: list = []
    logits = model.forward(ids, max_loops=max_loops, trace=records)
    return logits, records


# ----------------------------------------------------------------------------------------------------------------------
# Random checkpoints

def random_weights(cfg: SageConfig, seed: int) -> Dict[str, torch.Tensor]:
    """float32 weights with O(1) activations: peaked but not one-hot attention, gates spread over (0, 1), routers
    far from uniform, norms near (not at) 1. numpy's Generator keeps the values identical across machines."""
    rng = np.random.default_rng(seed)
    D, hd = cfg.hidden_size, cfg.head_dim
    out = {}
    for name, shape in expected_shapes(cfg).items():
        fan_in = shape[-1]
        if name.endswith("norm.weight"):  # every RMSNorm weight
            t = 1.0 + 0.1 * rng.standard_normal(shape)
        elif name == "model.embed_tokens.weight":
            t = rng.standard_normal(shape)
        elif name == "lm_head.weight":
            t = 2.0 / math.sqrt(D) * rng.standard_normal(shape)
        elif name.endswith(("q_proj.weight", "k_proj.weight")):
            t = 1.5 / math.sqrt(fan_in) * rng.standard_normal(shape)
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            t = 0.5 / math.sqrt(fan_in) * rng.standard_normal(shape)
        elif name.endswith("mlp.gate.weight"):  # router
            t = 2.0 / math.sqrt(D) * rng.standard_normal(shape)
        elif name.startswith("model.gate_projections.") and name.endswith(".weight"):
            t = 1.0 / math.sqrt(hd) * rng.standard_normal(shape)
        elif name.startswith("model.gate_projections.") and name.endswith(".bias"):
            t = 0.5 * rng.standard_normal(shape)
        else:  # v_proj, gate_proj, up_proj, shared_expert_gate
            t = 1.0 / math.sqrt(fan_in) * rng.standard_normal(shape)
        out[name] = torch.from_numpy(np.asarray(t, dtype=np.float32))
    return out


_DTYPE_ARGS = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
_TORCH_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def write_checkpoint(model_dir: str, config: dict, weights: Dict[str, torch.Tensor], dtype: str = "f32",
                     shards: int = 1):
    """Writes config.json (torch_dtype set) and the weights rounded to dtype (f32/f16/bf16), in one file or
    sharded by layer into `shards` files plus model.safetensors.index.json."""
    os.makedirs(model_dir, exist_ok=True)
    store = _DTYPE_ARGS[dtype]
    config = dict(config, torch_dtype=_TORCH_DTYPE_NAMES[store])
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    stored = {name: t.to(store) for name, t in weights.items()}
    if shards == 1:
        write_safetensors(os.path.join(model_dir, "model.safetensors"), stored)
        return
    # Split in name order into `shards` files of about equal tensor count; the index maps each tensor to its file.
    names = sorted(stored)
    per_shard = math.ceil(len(names) / shards)
    weight_map, total = {}, 0
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: stored[n] for n in names[s * per_shard:(s + 1) * per_shard]}
        write_safetensors(os.path.join(model_dir, file), part)
        for n, t in part.items():
            weight_map[n] = file
            total += t.numel() * t.element_size()
    with open(os.path.join(model_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


def write_random_checkpoint(model_dir: str, config: dict, seed: int = 0, dtype: str = "f32", shards: int = 1):
    write_checkpoint(model_dir, config, random_weights(SageConfig.from_dict(config), seed), dtype, shards)


# ----------------------------------------------------------------------------------------------------------------------
# Command line

def _cmd_score(args):
    model = SageModel.load(args.model)
    ids = [int(t) for t in args.tokens.split(",") if t.strip()]
    logits = model.forward(ids, max_loops=args.max_loops)  # [T, V]
    json.dump({"tokens": ids, "logits": logits.tolist()}, sys.stdout)
    sys.stdout.write("\n")


def _cmd_bench(args):
    torch.set_num_threads(args.threads)
    model = SageModel.load(args.model)
    rng = np.random.default_rng(0)
    prompt = [1] + rng.integers(3, model.cfg.vocab_size, args.prompt_tokens - 1).tolist()

    def run(prompt_ids, steps):
        t0 = time.perf_counter()
        logits, state = model.prefill(prompt_ids)
        t1 = time.perf_counter()
        token = int(logits[-1].argmax())
        for _ in range(steps):
            token = int(model.decode_step(state, token).argmax())
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    run(prompt[:min(8, len(prompt))], 4)  # warm-up: allocator, kernels
    prefill_s, decode_s = run(prompt, args.decode_tokens)
    json.dump({"prefill_tokens_per_s": args.prompt_tokens / prefill_s,
               "decode_tokens_per_s": args.decode_tokens / decode_s if args.decode_tokens else 0.0,
               "threads": args.threads, "prompt_tokens": args.prompt_tokens,
               "decode_tokens": args.decode_tokens, "loop_num": model.cfg.loop_num}, sys.stdout)
    sys.stdout.write("\n")


def _cmd_random(args):
    with open(args.config) as f:
        config = json.load(f)
    write_random_checkpoint(args.out, config, seed=args.seed, dtype=args.dtype, shards=args.shards)
    print(f"wrote {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="PyTorch reference of the SAGELoopCoder model")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="logits of a token sequence (all positions) as JSON")
    p.add_argument("--model", required=True)
    p.add_argument("--tokens", required=True, help="comma-separated token ids")
    p.add_argument("--max-loops", type=int, default=None)
    p.set_defaults(func=_cmd_score)
    p = sub.add_parser("bench", help="prefill and cached-decode throughput as JSON")
    p.add_argument("--model", required=True)
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_cmd_bench)
    p = sub.add_parser("random", help="write a random checkpoint for a config.json")
    p.add_argument("--out", required=True)
    p.add_argument("--config", required=True)
    p.add_argument("--dtype", choices=sorted(_DTYPE_ARGS), default="f32")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shards", type=int, default=1)
    p.set_defaults(func=_cmd_random)
    args = parser.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    args.func(args)


if __name__ == "__main__":
    main()
