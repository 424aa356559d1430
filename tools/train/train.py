#!/usr/bin/python3
"""Trains the bundled SAGELoopCoder model (sage-mini-coder) on the Python standard library.

Steps (docs: docs/bundled-model.md):
  1. corpus: every .py file under /usr/lib/python3.11 (Debian's python3.11; site-packages/dist-packages excluded),
     split by file into train / held-out with a hash of the relative path (deterministic, no RNG);
  2. tokenizer: spm_train on the training files only (BPE, byte fallback, <unk>=0 <s>=1 </s>=2);
  3. model: a looped (loop_num 2) GQA transformer with MoE feed-forward blocks, trained in float32 with AdamW,
     warmup + cosine, a Switch-style load-balancing loss per (loop, layer) and a small early-exit loss on loop 1;
  4. checkpoint: Hugging Face layout, weights stored in BF16, tensor names exactly as the design's MODEL.md;
  5. check: the BF16 checkpoint loaded by tools/reference/sage_ref.py gives the training module's logits;
  6. evaluation (evaluate.py) on the held-out files -> eval.json, then the card (make_card.py).

The batched forward here (BatchModel) is a [B, T] version of sage_ref.SageModel.forward without caches; step 5
asserts that both compute the same function.

Usage (the shipped model):
  /usr/bin/python3 tools/train/train.py --out resources/models/sage-mini-coder --seed 1 --steps 220 --warmup 20 \\
      --lr 3e-3 --aux-coef 0.1
"""

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import sage_ref  # noqa: E402

CORPUS_ROOT = "/usr/lib/python3.11"
HELDOUT_PERCENT = 5


# ----------------------------------------------------------------------------------------------------------------------
# Corpus and tokenizer

def corpus_files(root: str = CORPUS_ROOT):
    """Sorted relative paths of the .py files of the standard library (no third-party packages)."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in ("site-packages", "dist-packages", "__pycache__"))
        for f in sorted(files):
            if f.endswith(".py"):
                out.append(os.path.relpath(os.path.join(d, f), root))
    if not out:
        raise SystemExit(f"no .py files under {root}: install Debian's python3.11 (apt-get install python3.11)")
    return sorted(out)


def is_heldout(rel: str) -> bool:
    """About HELDOUT_PERCENT % of the files, chosen by a hash of the path (stable across machines and runs)."""
    return int(hashlib.sha1(rel.encode()).hexdigest(), 16) % 100 < HELDOUT_PERCENT


def read_text(root: str, rel: str) -> str:
    with open(os.path.join(root, rel), "rb") as f:
        return f.read().decode("utf-8", errors="replace")


def split_corpus(root: str = CORPUS_ROOT):
    files = corpus_files(root)
    train = [f for f in files if not is_heldout(f)]
    held = [f for f in files if is_heldout(f)]
    return train, held


def train_tokenizer(root, train_files, vocab_size, out_dir):
    """spm_train on the training files (one sentence per line; newlines themselves encode by byte fallback)."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "train.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            for rel in train_files:
                f.write(read_text(root, rel))
                f.write("\n")
        prefix = os.path.join(tmp, "tok")
        # Relative paths, run inside the temporary folder: the trainer records them in tokenizer.model.
        cmd = ["spm_train", "--input=train.txt", "--model_prefix=tok", "--model_type=bpe",
               f"--vocab_size={vocab_size}", "--byte_fallback=true", "--unk_id=0", "--bos_id=1", "--eos_id=2",
               "--pad_id=-1", "--split_digits=true", "--allow_whitespace_only_pieces=true",
               "--remove_extra_whitespaces=false", "--normalization_rule_name=identity",
               "--add_dummy_prefix=false", "--character_coverage=1.0", "--max_sentence_length=16384",
               "--input_sentence_size=0", "--shuffle_input_sentence=false", "--num_threads=2",
               "--minloglevel=1"]
        print("tokenizer:", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, cwd=tmp)
        os.makedirs(out_dir, exist_ok=True)
        with open(prefix + ".model", "rb") as src, open(os.path.join(out_dir, "tokenizer.model"), "wb") as dst:
            dst.write(src.read())


def encode_docs(sp, root, files):
    """Per file: [BOS] + sp.encode(text), exactly what sage-cli's tokenizer does with add_bos_token true."""
    return [[1] + sp.encode(read_text(root, rel)) for rel in files]


# ----------------------------------------------------------------------------------------------------------------------
# Model: a batched [B, T] forward computing sage_ref.SageModel.forward

def model_config(args, vocab_size):
    return {
        "model_type": "sageloopcoder",
        "architectures": ["SAGELoopCoderForCausalLM"],
        "vocab_size": vocab_size,
        "hidden_size": args.hidden,
        "intermediate_size": args.moe_intermediate,  # unused: every layer is MoE (kept for Llama loaders)
        "num_hidden_layers": args.layers,
        "num_attention_heads": args.heads,
        "num_key_value_heads": args.kv_heads,
        "head_dim": args.hidden // args.heads,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
        "loop_num": 2,
        "loop_window_size": args.window,
        "num_experts": args.experts,
        "num_experts_per_tok": args.top_k,
        "moe_intermediate_size": args.moe_intermediate,
        "norm_topk_prob": False,
        "shared_expert_intermediate_size": 0,
        "decoder_sparse_step": 1,
        "mlp_only_layers": [],
        "bos_token_id": 1,
        "eos_token_id": 2,
    }


def init_weights(cfg: sage_ref.SageConfig, gen: torch.Generator):
    """float32 weights, GPT-2 style: N(0, 0.02), residual output projections scaled by 1/sqrt(2 * applications)."""
    applications = cfg.num_hidden_layers * cfg.loop_num
    out = {}
    for name, shape in sage_ref.expected_shapes(cfg).items():
        if name.endswith("norm.weight"):
            t = torch.ones(shape)
        elif name.startswith("model.gate_projections.") and name.endswith(".bias"):
            t = torch.zeros(shape)  # gates start at 0.5: both streams equally
        elif name.startswith("model.gate_projections."):
            t = torch.randn(shape, generator=gen) * 0.02
        elif name.endswith(("o_proj.weight", "down_proj.weight")):
            t = torch.randn(shape, generator=gen) * (0.02 / math.sqrt(2 * applications))
        else:
            t = torch.randn(shape, generator=gen) * 0.02
        out[name] = t
    return out


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class BatchModel(torch.nn.Module):
    """Parameters keyed by their checkpoint names ('.' -> '__' for the ParameterDict)."""

    def __init__(self, cfg: sage_ref.SageConfig, weights):
        super().__init__()
        self.cfg = cfg
        self.p = torch.nn.ParameterDict({n.replace(".", "__"): torch.nn.Parameter(t.clone().float())
                                         for n, t in weights.items()})
        self.register_buffer("inv_freq", sage_ref.rope_inv_freq(cfg), persistent=False)

    def w(self, name):
        return self.p[name.replace(".", "__")]

    def named_weights(self):
        return {n.replace("__", "."): t for n, t in self.p.items()}

    def attn(self, q, k, v, mask):
        """q [B, T, H, hd], k/v [B, S, KV, hd], mask [T, S] bool -> [B, T, H, hd]. Query head h reads KV head
        h // (H / KV), as sage_ref.attention's repeat_interleave."""
        B, T, H, hd = q.shape
        KV = k.shape[2]
        G = H // KV
        qg = q.view(B, T, KV, G, hd).permute(0, 2, 3, 1, 4)  # [B, KV, G, T, hd]
        kg = k.permute(0, 2, 1, 3).unsqueeze(2)  # [B, KV, 1, S, hd]
        vg = v.permute(0, 2, 1, 3).unsqueeze(2)  # [B, KV, 1, S, hd]
        scores = (qg @ kg.transpose(-1, -2)) * hd ** -0.5  # [B, KV, G, T, S]
        scores = scores.masked_fill(~mask, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ vg  # [B, KV, G, T, hd]
        return out.permute(0, 3, 1, 2, 4).reshape(B, T, H, hd)

    def moe(self, L, y, stats):
        """y [B, T, D] -> [B, T, D]; Qwen2-MoE top-k over softmax(router). Appends (probs, top_e) to stats."""
        c, p = self.cfg, f"model.layers.{L}.mlp."
        B, T, D = y.shape
        yf = y.reshape(-1, D)  # [N, D]
        probs = torch.softmax(yf @ self.w(p + "gate.weight").T, dim=-1)  # [N, E]
        top_w, top_e = torch.topk(probs, c.num_experts_per_tok, dim=-1)  # [N, k]
        if c.norm_topk_prob:
            top_w = top_w / top_w.sum(-1, keepdim=True)
        out = torch.zeros_like(yf)
        for e in range(c.num_experts):
            chosen = top_e == e  # [N, k]
            rows = torch.nonzero(chosen.any(-1)).flatten()
            if rows.numel() == 0:
                continue
            we = (top_w * chosen).sum(-1)[rows]  # [n]
            ye = yf[rows]
            pe = p + f"experts.{e}."
            hmid = F.silu(ye @ self.w(pe + "gate_proj.weight").T) * (ye @ self.w(pe + "up_proj.weight").T)
            out = out.index_add(0, rows, we[:, None] * (hmid @ self.w(pe + "down_proj.weight").T))
        stats.append((probs, top_e))
        return out.view(B, T, D)

    def forward(self, ids, loops=None, exit_loops=(), trace=None):
        """ids [B, T] at positions 0..T-1. Returns (logits [B, T, V] after `loops` loops, {loop: logits} for the
        loops in exit_loops (early exits through the final norm and head), router stats [(probs, top_e)] per
        (loop, layer)). trace (a list) receives per loop-2 layer {'layer', 'gate' [B,T,H], 'a', 'b' [B,T,H,hd]}."""
        c = self.cfg
        loops = loops or c.loop_num
        B, T = ids.shape
        W = c.loop_window_size
        pos = torch.arange(T, device=ids.device)
        freqs = pos.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)  # [T, hd]
        cos, sin = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]  # [1, T, 1, hd]
        i, j = pos[:, None], pos[None, :]
        causal = j <= i
        local = causal & (j > i - W)
        h = self.w("model.embed_tokens.weight")[ids]  # [B, T, D]
        k1, v1 = [None] * c.num_hidden_layers, [None] * c.num_hidden_layers
        stats, exits = [], {}
        H, KV, hd = c.num_attention_heads, c.num_key_value_heads, c.head_dim
        for loop in range(1, loops + 1):
            for L in range(c.num_hidden_layers):
                pre = f"model.layers.{L}."
                x = rms_norm(h, self.w(pre + "input_layernorm.weight"), c.rms_norm_eps)
                q = (x @ self.w(pre + "self_attn.q_proj.weight").T).view(B, T, H, hd)
                k = (x @ self.w(pre + "self_attn.k_proj.weight").T).view(B, T, KV, hd)
                v = (x @ self.w(pre + "self_attn.v_proj.weight").T).view(B, T, KV, hd)
                q = q * cos + rotate_half(q) * sin
                k = k * cos + rotate_half(k) * sin
                if loop == 1:
                    k1[L], v1[L] = k, v
                    mixed = self.attn(q, k, v, causal)
                else:
                    wg = self.w(f"model.gate_projections.{L}.weight")  # [H, hd]
                    bg = self.w(f"model.gate_projections.{L}.bias")  # [H]
                    g = torch.sigmoid((q * wg).sum(-1) + bg)  # [B, T, H]
                    a = self.attn(q, k1[L], v1[L], causal)
                    b = self.attn(q, k, v, local)
                    mixed = g[..., None] * a + (1 - g[..., None]) * b
                    if trace is not None:
                        trace.append({"layer": L, "gate": g, "a": a, "b": b})
                h = h + mixed.reshape(B, T, H * hd) @ self.w(pre + "self_attn.o_proj.weight").T
                y = rms_norm(h, self.w(pre + "post_attention_layernorm.weight"), c.rms_norm_eps)
                h = h + self.moe(L, y, stats)
            if loop in exit_loops and loop != loops:
                exits[loop] = self.head(h)
        return self.head(h), exits, stats

    def head(self, h):
        return rms_norm(h, self.w("model.norm.weight"), self.cfg.rms_norm_eps) @ self.w("lm_head.weight").T


def balance_loss(stats, num_experts, top_k):
    """Switch/Qwen2-MoE auxiliary loss, mean over (loop, layer): E * sum_e f_e * P_e, f_e = share of the top-k
    assignments that went to e, P_e = mean router probability of e. Equals 1 when balanced."""
    total = 0.0
    for probs, top_e in stats:
        counts = torch.zeros(num_experts, device=probs.device).index_add_(
            0, top_e.flatten(), torch.ones(top_e.numel(), device=probs.device))
        f = counts / top_e.numel()
        total = total + num_experts * (f * probs.mean(0)).sum()
    return total / len(stats)


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoint

def save_checkpoint(out_dir, config, weights, tokenizer_ok=True):
    os.makedirs(out_dir, exist_ok=True)
    sage_ref.write_checkpoint(out_dir, config, {n: t.detach().cpu().float() for n, t in weights.items()}, "bf16")
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2, "do_sample": True, "temperature": 0.8, "top_p": 0.95,
                   "max_new_tokens": 256}, f, indent=2)
        f.write("\n")
    tok = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": None,
        "model_max_length": config["max_position_embeddings"],
        "legacy": False,
        "clean_up_tokenization_spaces": False,
        "sp_model_kwargs": {},
        "added_tokens_decoder": {
            str(i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False,
                     "special": True}
            for i, s in ((0, "<unk>"), (1, "<s>"), (2, "</s>"))
        },
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tok, f, indent=2)
        f.write("\n")


def check_against_reference(out_dir, device, docs, seq_len):
    """Loads the stored BF16 checkpoint with sage_ref.SageModel and with BatchModel; their logits must agree."""
    ref = sage_ref.SageModel.load(out_dir)
    weights, dtype = sage_ref.load_weights(out_dir)
    assert dtype == "BF16", dtype
    model = BatchModel(ref.cfg, {n: t.float() for n, t in weights.items()}).to(device).eval()
    worst = 0.0
    for n, doc in enumerate(docs[:3]):
        ids = doc[:min(len(doc), 96 + 32 * n)]
        with torch.no_grad():
            mine, exits, _ = model(torch.tensor([ids], device=device), exit_loops=(1,))
        for loops, got in ((2, mine[0]), (1, exits[1][0])):
            want = ref.forward(ids, max_loops=loops)
            diff = (got.cpu() - want).abs().max().item()
            worst = max(worst, diff)
            print(f"reference check: doc {n} T={len(ids)} loops={loops} max|diff|={diff:.2e}", flush=True)
    if worst > 1e-3:
        raise SystemExit(f"the training forward differs from tools/reference/sage_ref.py by {worst:.3g} (> 1e-3)")
    return worst


# ----------------------------------------------------------------------------------------------------------------------
# Training

def make_windows(docs, seq_len):
    """The training stream: all documents concatenated (each starting with BOS), cut into seq_len + 1 windows
    (inputs and shifted targets), overlapping by one token. Returns int64 [N, seq_len + 1]."""
    stream = np.concatenate([np.asarray(d, dtype=np.int64) for d in docs])
    n = (len(stream) - 1) // seq_len
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return torch.from_numpy(stream[idx])


def heldout_windows(docs, seq_len):
    """Evaluation windows as the card defines them: per document, non-overlapping windows of seq_len tokens;
    every token but a window's first is predicted. Returns a list of token lists."""
    out = []
    for d in docs:
        for s in range(0, len(d), seq_len):
            w = d[s:s + seq_len]
            if len(w) >= 2:
                out.append(w)
    return out


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_ratio + (1 - args.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def quick_val(model, val, device, batch):
    """Mean next-token loss (2 loops) over a fixed set of held-out windows [n, seq_len + 1]."""
    model.eval()
    total, count = 0.0, 0
    for s in range(0, len(val), batch):
        xb = val[s:s + batch].to(device)
        logits, _, _ = model(xb[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), xb[:, 1:].reshape(-1), reduction="sum")
        total += loss.item()
        count += xb[:, 1:].numel()
    model.train()
    return total / count


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="model folder to write (Hugging Face layout)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", default=CORPUS_ROOT)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=4)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--moe-intermediate", type=int, default=384)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=4, help="sequences per forward pass (cache-friendly on CPU)")
    ap.add_argument("--steps", type=int, default=220)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--aux-coef", type=float, default=0.1, help="load-balancing loss coefficient")
    ap.add_argument("--exit-coef", type=float, default=0.1, help="weight of the loop-1 early-exit loss")
    # One thread: on a shared 2-core machine two threads were several times slower (OpenMP threads waiting for
    # each other); it also fixes the summation order, so a run is reproducible bit for bit.
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=25)
    ap.add_argument("--skip-eval", action="store_true", help="stop after the checkpoint and the reference check")
    ap.add_argument("--testdata", default=None, help="folder for the engine test data (default: tests/data/bundled)")
    args = ap.parse_args(argv)

    t_start = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    print(f"device {device}, threads {torch.get_num_threads()}, seed {args.seed}", flush=True)

    train_files, held_files = split_corpus(args.corpus)
    print(f"corpus: {len(train_files)} training files, {len(held_files)} held-out files", flush=True)
    train_tokenizer(args.corpus, train_files, args.vocab, args.out)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.out, "tokenizer.model"))
    assert sp.get_piece_size() == args.vocab and sp.unk_id() == 0 and sp.bos_id() == 1 and sp.eos_id() == 2
    train_docs = encode_docs(sp, args.corpus, train_files)
    held_docs = encode_docs(sp, args.corpus, held_files)
    n_train_tok = sum(len(d) for d in train_docs)
    n_held_tok = sum(len(d) for d in held_docs)
    print(f"tokens: train {n_train_tok}, held-out {n_held_tok}; tokenizer t={time.time() - t_start:.0f}s",
          flush=True)

    config = model_config(args, args.vocab)
    cfg = sage_ref.SageConfig.from_dict(config)
    gen = torch.Generator().manual_seed(args.seed)
    model = BatchModel(cfg, init_weights(cfg, gen)).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {n_params}", flush=True)

    windows = make_windows(train_docs, args.seq_len)
    order_gen = torch.Generator().manual_seed(args.seed + 1)
    order = torch.randperm(len(windows), generator=order_gen)
    # A fixed held-out sample for the loss curve (the card's numbers come from the full evaluation).
    val = make_windows(held_docs, args.seq_len)
    val = val[torch.randperm(len(val), generator=torch.Generator().manual_seed(args.seed + 2))[:16]]

    decay = [p for n, p in model.p.items() if p.dim() == 2 and "gate_projections" not in n]
    no_decay = [p for n, p in model.p.items() if not (p.dim() == 2 and "gate_projections" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.95), eps=1e-8)
    log = {"train": [], "val": []}
    cursor = 0
    t_train = time.time()
    for step in range(args.steps):
        if cursor + args.batch > len(order):  # next epoch: a new fixed permutation
            order = torch.randperm(len(windows), generator=order_gen)
            cursor = 0
        xb = windows[order[cursor:cursor + args.batch]].to(device)
        cursor += args.batch
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        opt.zero_grad(set_to_none=True)
        parts = xb.split(args.micro_batch)  # gradient accumulation: the same step as one [batch] pass
        lm_sum = exit_sum = aux_sum = 0.0
        for part in parts:
            logits, exits, stats = model(part[:, :-1], exit_loops=(1,) if args.exit_coef > 0 else ())
            targets = part[:, 1:].reshape(-1)
            lm = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets)
            loss = lm
            exit_loss = torch.zeros(())
            if args.exit_coef > 0:
                exit_loss = F.cross_entropy(exits[1].reshape(-1, logits.shape[-1]), targets)
                loss = loss + args.exit_coef * exit_loss
            aux = balance_loss(stats, cfg.num_experts, cfg.num_experts_per_tok)
            loss = loss + args.aux_coef * aux
            (loss * (len(part) / len(xb))).backward()
            lm_sum += lm.item() * len(part) / len(xb)
            exit_sum += exit_loss.item() * len(part) / len(xb)
            aux_sum += aux.item() * len(part) / len(xb)
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()
        opt.step()
        elapsed = time.time() - t_train
        log["train"].append({"step": step + 1, "loss": lm_sum, "exit_loss": exit_sum, "aux": aux_sum,
                             "lr": lr_at(step, args), "time_s": elapsed})
        if (step + 1) % 10 == 0 or step == 0:
            tok_s = (step + 1) * args.batch * args.seq_len / elapsed
            print(f"step {step + 1}/{args.steps} loss {lm_sum:.4f} exit {exit_sum:.4f} "
                  f"aux {aux_sum:.4f} gnorm {gnorm:.2f} lr {lr_at(step, args):.2e} {tok_s:.0f} tok/s "
                  f"t={elapsed:.0f}s", flush=True)
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            v = quick_val(model, val, device, args.micro_batch)
            log["val"].append({"step": step + 1, "loss": v, "time_s": elapsed})
            print(f"  val loss {v:.4f} (ppl {math.exp(v):.2f})", flush=True)
    train_s = time.time() - t_train

    save_checkpoint(args.out, config, model.named_weights())
    worst = check_against_reference(args.out, device, held_docs, args.seq_len)
    total_s = time.time() - t_start
    meta = {
        "command": "/usr/bin/python3 tools/train/train.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed,
        "args": vars(args),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "train_files": len(train_files),
        "heldout_files": len(held_files),
        "heldout_file_list": held_files,
        "train_tokens": n_train_tok,
        "heldout_tokens": n_held_tok,
        "tokens_seen": args.steps * args.batch * args.seq_len,
        "epochs": args.steps * args.batch / len(windows),
        "parameters": n_params,
        "train_wall_s": train_s,
        "wall_s_to_checkpoint": total_s,
        "reference_max_abs_diff": worst,
        "log": log,
    }
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"checkpoint written to {args.out}; training {train_s:.0f}s, total {total_s:.0f}s", flush=True)
    if args.skip_eval:
        return
    import evaluate
    evaluate.run(args.out, args.corpus, testdata=args.testdata)


if __name__ == "__main__":
    main()
