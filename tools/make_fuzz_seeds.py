#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/): small valid inputs taken
from the bundled model's files and the test data, plus a few hand-made variants that reach more branches.

    python3 tools/make_fuzz_seeds.py [--cli build/dev/app/cli/sage-cli]

With --cli, the session seeds are captured from the bundled model with that sage-cli; without it the
session corpus is left as it is. Seeds stay small (libFuzzer's -max_len in tools/fuzz.sh bounds inputs)."""
import argparse
import json
import os
import struct
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
MODEL = os.path.join(ROOT, "resources", "models", "sage-mini-coder")
TOKDATA = os.path.join(ROOT, "tests", "data", "tokenizer")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] laid out in order, header padded to 8 bytes."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", help="sage-cli to capture the session seeds with")
    args = ap.parse_args()

    f32 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
    put("safetensors", "f32_bf16_f16", safetensors([
        ("model.embed_tokens.weight", "F32", [2, 3], f32),
        ("model.norm.weight", "BF16", [3], b"\x80\x3f" * 3),
        ("lm_head.weight", "F16", [2, 3], b"\x00\x3c" * 6)], {"format": "pt"}))
    put("safetensors", "scalar_and_empty", safetensors([
        ("a", "F32", [], struct.pack("<f", 7)), ("b", "F16", [0, 4], b""), ("c", "BF16", [1, 1, 2], b"\0" * 4)]))
    put("safetensors", "unaligned", safetensors([("x", "BF16", [1], b"\x80\x3f"), ("y", "F32", [2], f32[:8])]))

    shards = {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
              "model.norm.weight": "model-00001-of-00002.safetensors",
              "lm_head.weight": "model-00002-of-00002.safetensors"}
    put("safetensors_index", "two_shards", json.dumps({"metadata": {"total_size": 32}, "weight_map": shards}, indent=2))
    put("safetensors_index", "one_shard", json.dumps({"weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}))

    config = json.loads(read(os.path.join(MODEL, "config.json")))
    put("model_config", "bundled", read(os.path.join(MODEL, "config.json")))
    dense = dict(config)
    for k in ("num_experts", "num_experts_per_tok", "moe_intermediate_size", "norm_topk_prob",
              "shared_expert_intermediate_size", "decoder_sparse_step", "mlp_only_layers", "mch_heads"):
        dense.pop(k)
    dense.update({"model_type": "llama", "loop_num": 1, "tie_word_embeddings": True, "eos_token_id": [2, 3],
                  "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}})
    put("model_config", "llama_dense", json.dumps(dense))
    moe = dict(config)
    moe.update({"shared_expert_intermediate_size": 64, "decoder_sparse_step": 2, "mlp_only_layers": [0],
                "rope_scaling": {"type": "linear", "factor": 2.0}, "model_type": "iquestloopcoder"})
    put("model_config", "moe_shared", json.dumps(moe))

    put("generation_config", "bundled", read(os.path.join(MODEL, "generation_config.json")))
    put("generation_config", "full", json.dumps({"bos_token_id": 1, "eos_token_id": [2, 75864, 75869],
                                                 "temperature": 0.6, "top_p": 0.9, "top_k": 40,
                                                 "repetition_penalty": 1.05, "max_new_tokens": 512,
                                                 "do_sample": False}))

    put("tokenizer_config", "test_config", b"\0" + read(os.path.join(TOKDATA, "tokenizer_config.json")))
    put("tokenizer_config", "bundled_config", b"\0" + read(os.path.join(MODEL, "tokenizer_config.json")))
    put("tokenizer_config", "legacy_config", b"\0" + json.dumps({
        "legacy": True, "add_prefix_space": False, "model_max_length": 1e30, "add_bos_token": True,
        "chat_template": [{"name": "default", "template": "{{x}}"}], "bos_token": {"content": "<s>"},
        "additional_special_tokens": ["<|im_start|>", {"content": "<|im_end|>"}]}).encode())
    put("tokenizer_config", "special_tokens_map", b"\1" + json.dumps({
        "bos_token": "<s>", "eos_token": {"content": "</s>"}, "unk_token": "<unk>", "pad_token": None,
        "additional_special_tokens": ["<|im_start|>"]}).encode())
    put("tokenizer_config", "added_tokens", b"\2" + json.dumps({"<|extra|>": 300, "<tool>": 301}).encode())

    put("sentencepiece", "test_tokenizer", read(os.path.join(TOKDATA, "tokenizer.model")))

    # Capture selections: loops, layers, heads, streams, full heads, top-k, full-row key limit (one per line).
    put("capture_selection", "empty", "\n\n\n\n\n-1\n-1\n")
    put("capture_selection", "narrow", "2\n0,2-5,79\n1-3\nlocal\n2:3,5:1\n8\n512\n")
    put("capture_selection", "all", "all\nall\n0-39\nboth\nall\n0\n0\n")
    put("capture_selection", "bad", "1\n3-1\nx\nlocal\n0-1\n99\n-5\n")

    if args.cli:
        with tempfile.TemporaryDirectory() as tmp:
            for policy, tokens, new in (("summary", "1,5,9", 2), ("standard", "1,7", 1)):
                out = os.path.join(tmp, policy + ".sagetrace")
                # The model path relative to the repository: the session records it, and seeds must not name
                # a folder of the machine that made them.
                subprocess.run([os.path.abspath(args.cli), "capture", "--model", os.path.relpath(MODEL, ROOT),
                                "--tokens", tokens, "--max-tokens", str(new), "--policy", policy, "--out", out],
                               check=True, stderr=subprocess.DEVNULL, cwd=ROOT)
                raw = read(out)
                put("session", policy + "_payload", raw[24:-8])  # the harness adds header and checksum
                put("session", policy + "_file", raw)


if __name__ == "__main__":
    main()
