#!/usr/bin/python3
"""Writes the model card (README.md) and loss.png of the bundled model from train_log.json and eval.json.

Usage: /usr/bin/python3 tools/train/make_card.py resources/models/sage-mini-coder
"""

import json
import math
import os
import sys


def plot_loss(meta, ev, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    train = meta["log"]["train"]
    val = meta["log"]["val"]
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=90)
    steps = [r["step"] for r in train]
    # A 10-step running mean: single batches of 2k tokens are noisy.
    loss = [r["loss"] for r in train]
    smooth = [sum(loss[max(0, i - 9):i + 1]) / len(loss[max(0, i - 9):i + 1]) for i in range(len(loss))]
    ax.plot(steps, loss, color="#bbbbbb", linewidth=0.6, label="train (batch)")
    ax.plot(steps, smooth, color="#1f77b4", linewidth=1.4, label="train (10-step mean)")
    ax.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", color="#d62728", markersize=3,
            linewidth=1.2, label="held-out sample (16 windows)")
    ax.axhline(ev["loss_unigram"], color="#2ca02c", linestyle="--", linewidth=1, label="unigram baseline")
    ax.set_xlabel("step")
    ax.set_ylabel("next-token loss (nats)")
    ax.set_ylim(0, max(8.5, ev["loss_unigram"] + 0.5))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("sage-mini-coder training", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def fence(text):
    return "```python\n" + text + "\n```"


def card(meta, ev, config):
    a = meta["args"]
    c = config
    E, N = c["num_experts"], c["num_hidden_layers"]
    size_mb = meta.get("model_bytes", 0) / 1e6
    lines = []
    w = lines.append
    w("---")
    w("license: psf-2.0")
    w("language: code")
    w("tags: [sageloopcoder, looped-transformer, mixture-of-experts, python]")
    w("---")
    w("# sage-mini-coder")
    w("")
    w("The default model of SAGE Workbench and `sage-cli`: a small looped (LoopCoder) Mixture-of-Experts "
      "transformer trained on the Python standard library, so that every view of the workbench (loop-2 gates, "
      "global vs local streams, expert routing, Inverse Reasoning) has real, structured behaviour to show out of "
      "the box. It is a teaching and testing model, not a useful assistant: trained for about "
      f"{meta['train_wall_s'] / 60:.0f} minutes on {meta['threads']} CPU thread(s) ({meta['tokens_seen']:,} tokens, {meta['epochs']:.2f} epochs), its completions have the "
      "surface of standard-library Python (indentation, `self.` attributes, docstrings, `return`) but little "
      "meaning; its perplexity is well below a unigram model's, and loop 2 measurably improves on loop 1.")
    w("")
    w("## Architecture")
    w("")
    w("| key | value |")
    w("|---|---|")
    w(f"| model_type / architectures | `{c['model_type']}` / `{c['architectures'][0]}` |")
    w(f"| parameters | {meta['parameters']:,} (BF16 weights, {size_mb:.1f} MB) |")
    w(f"| vocab_size | {c['vocab_size']} (SentencePiece BPE, byte fallback) |")
    w(f"| hidden_size | {c['hidden_size']} |")
    w(f"| num_hidden_layers | {N} |")
    w(f"| attention heads / KV heads / head_dim | {c['num_attention_heads']} / {c['num_key_value_heads']} / "
      f"{c['head_dim']} (GQA) |")
    w(f"| loop_num / loop_window_size | {c['loop_num']} / {c['loop_window_size']} |")
    w(f"| MoE | {E} experts, top-{c['num_experts_per_tok']}, moe_intermediate_size {c['moe_intermediate_size']}, "
      f"no shared expert, norm_topk_prob false, every layer |")
    w(f"| rope_theta / max_position_embeddings | {c['rope_theta']:g} / {c['max_position_embeddings']} |")
    w(f"| rms_norm_eps | {c['rms_norm_eps']} |")
    w(f"| tie_word_embeddings | {str(c['tie_word_embeddings']).lower()} |")
    w(f"| mch_heads ([layer, head]) | {c.get('mch_heads')} |")
    w("")
    w(f"The loop window ({c['loop_window_size']} tokens) is shorter than typical prompts, so in loop 2 the local "
      "stream (the last W keys of loop 2) and the global stream (every loop-1 key) differ.")
    w("")
    w("## Training")
    w("")
    w(f"- Corpus: the `.py` files of the Python 3.11 standard library as Debian's `python3.11` installs them "
      f"(`/usr/lib/python3.11`, without site-packages/dist-packages; Debian 12 package `{ev.get('corpus_package')}`): "
      f"{meta['train_files']} training files "
      f"({meta['train_tokens']:,} tokens) and {meta['heldout_files']} held-out files ({meta['heldout_tokens']:,} "
      "tokens), split by file with a hash of the path (the held-out list is in `train_log.json`). The corpus is "
      "not shipped; the script reads it from the system.")
    w(f"- Tokenizer: `spm_train` on the training files only, BPE, {c['vocab_size']} pieces, byte fallback, "
      "identity normalisation, whitespace kept (indentation runs are pieces; a newline is the byte piece "
      "`<0x0A>`), no dummy prefix, digits split; `<unk>`=0, `<s>`=1, `</s>`=2. Text is encoded as "
      "`[<s>] + encode(text)` (`add_bos_token` true).")
    w(f"- Objective: next-token cross-entropy after both loops, plus {a['exit_coef']} x the same loss for an early "
      f"exit after loop 1 (final norm and head applied to loop 1's output, so the logit lens after loop 1 is "
      f"meaningful), plus {a['aux_coef']} x a Switch/Qwen2-MoE load-balancing loss "
      "(E * sum_e f_e P_e, averaged over every (loop, layer)).")
    w(f"- Optimiser: AdamW (betas 0.9/0.95, weight decay {a['weight_decay']} on matrices), peak lr {a['lr']}, "
      f"{a['warmup']} warmup steps, cosine to {a['min_lr_ratio']} x peak, gradient clipping 1.0, float32.")
    w(f"- {a['steps']} steps of {a['batch']} sequences x {a['seq_len']} tokens = {meta['tokens_seen']:,} tokens "
      f"({meta['epochs']:.2f} epochs); sequences are windows of the concatenated training files in a seeded "
      "random order.")
    w(f"- Seed {meta['seed']}; {meta['device']}, {meta['threads']} thread(s), torch {meta['torch']}. Training "
      f"wall time {meta['train_wall_s'] / 60:.1f} min, {meta['wall_s_to_checkpoint'] / 60:.1f} min including the "
      f"tokenizer and the checkpoint; the evaluation below took {ev['eval_wall_s'] / 60:.1f} min.")
    w("")
    w("Exact command (from the repository root, Debian 12 with `tools/setup-debian.sh`):")
    w("")
    w("```")
    w(meta["command"])
    w("```")
    w("")
    w("It rewrites this folder and `tests/data/bundled/`. Training is deterministic for a given seed, thread "
      "count and torch build. After training, the script loads the stored BF16 checkpoint with the PyTorch "
      "reference (`tools/reference/sage_ref.py`) and checks that the training forward gives the same logits "
      f"(max |diff| {meta['reference_max_abs_diff']:.1e} after training, "
      f"{ev['reference_max_abs_diff_excerpt']:.1e} on the {ev['excerpt']['tokens']}-token excerpt; 0 means "
      "bit-identical: on one thread both run the same float32 operations in the same order).")
    w("")
    w("![loss curve](loss.png)")
    w("")
    w("## Held-out evaluation")
    w("")
    w(f"From the shipped BF16 weights, on the {ev['heldout_files']} held-out files: each file is encoded as "
      f"`[<s>] + encode(text)`, cut into non-overlapping windows of {ev['seq_len']} tokens ({ev['windows']} "
      f"windows), and the mean next-token loss is taken over every predicted token "
      f"({ev['heldout_tokens_predicted']:,}).")
    w("")
    w("| model | loss (nats/token) | perplexity |")
    w("|---|---|---|")
    w(f"| 2 loops (the model) | {ev['loss_2_loops']:.4f} | {ev['ppl_2_loops']:.2f} |")
    w(f"| early exit after loop 1 | {ev['loss_1_loop']:.4f} | {ev['ppl_1_loop']:.2f} |")
    w(f"| unigram baseline (training-set token frequencies, add-one) | {ev['loss_unigram']:.4f} | "
      f"{ev['ppl_unigram']:.2f} |")
    w("")
    gain = ev["loss_1_loop"] - ev["loss_2_loops"]
    w(f"Loop 2 lowers the loss by {gain:.3f} nats/token ({100 * (1 - ev['ppl_2_loops'] / ev['ppl_1_loop']):.0f}% "
      "lower perplexity than the early exit).")
    w("")
    ex = ev["excerpt"]
    w(f"Engine check: `tests/data/bundled/heldout_excerpt.py` (the beginning of the held-out `{ex['source']}`, "
      f"{ex['tokens']} tokens with `<s>`) scored as one sequence has loss {ex['nll']:.4f}, perplexity "
      f"**{ex['perplexity']:.3f}** (early exit: {ex['perplexity_loops1']:.3f}). "
      "`sage-cli score --model resources/models/sage-mini-coder --text-file tests/data/bundled/heldout_excerpt.py` "
      "reports the same value (test `tst_bundled_model`).")
    w("")
    w("## Expert load")
    w("")
    w(f"Share of the top-{c['num_experts_per_tok']} assignments each expert receives on the held-out tokens "
      f"(uniform = {100 / E:.1f}%). Smallest share: {100 * ev['min_expert_load']:.1f}%.")
    w("")
    w("| loop | layer | " + " | ".join(f"expert {e}" for e in range(E)) + " |")
    w("|---|---|" + "---|" * E)
    for loop, per_layer in enumerate(ev["expert_load"]):
        for L, loads in enumerate(per_layer):
            w(f"| {loop + 1} | {L} | " + " | ".join(f"{100 * x:.1f}%" for x in loads) + " |")
    w("")
    w("## Loop-2 gates")
    w("")
    w("The gate g = sigmoid(q . Wg + bg) weighs the global stream (g) against the local stream (1 - g), per head "
      "and token. Distribution over all heads and held-out tokens, per layer:")
    w("")
    w("| layer | mean | min | p10 | p20 | p30 | p40 | median | p60 | p70 | p80 | p90 | max | g<0.3 | g>0.7 |")
    w("|---|" + "---|" * 14)
    for g in ev["gates"]:
        d = g["deciles"]
        w(f"| {g['layer']} | {g['mean']:.3f} | " + " | ".join(f"{x:.3f}" for x in d) +
          f" | {100 * g['share_below_0.3']:.0f}% | {100 * g['share_above_0.7']:.0f}% |")
    w("")
    w("Histogram (share of gate values per bin of width 0.1):")
    w("")
    w("| layer | " + " | ".join(f"{i / 10:.1f}-{(i + 1) / 10:.1f}" for i in range(10)) + " |")
    w("|---|" + "---|" * 10)
    for g in ev["gates"]:
        w(f"| {g['layer']} | " + " | ".join(f"{100 * x:.1f}%" for x in g["histogram"]) + " |")
    w("")
    w("Mean gate per head (rows: layers, columns: heads):")
    w("")
    H = c["num_attention_heads"]
    w("| layer | " + " | ".join(f"h{h}" for h in range(H)) + " |")
    w("|---|" + "---|" * H)
    for L, row in enumerate(ev["head_gate_mean"]):
        w(f"| {L} | " + " | ".join(f"{x:.2f}" for x in row) + " |")
    w("")
    w("## Multi-context heads (`mch_heads`)")
    w("")
    w("`mch_heads` lists the loop-2 heads with the highest mean of (1 - cos(A, B)) x min(g, 1 - g) over the "
      "held-out tokens, A and B being the head's global and local stream outputs before mixing: heads whose two "
      "streams say different things and that actually mix both (a gate stuck near 0 or 1 scores low). This is the "
      "same ranking the workbench applies to models without the key. Scores (rows: layers, columns: heads; "
      "chosen heads in bold):")
    w("")
    chosen = {tuple(p) for p in ev["mch_heads"]}
    w("| layer | " + " | ".join(f"h{h}" for h in range(H)) + " |")
    w("|---|" + "---|" * H)
    for L, row in enumerate(ev["head_mch_score"]):
        cells = [(f"**{x:.3f}**" if (L, h) in chosen else f"{x:.3f}") for h, x in enumerate(row)]
        w(f"| {L} | " + " | ".join(cells) + " |")
    w("")
    w("Mean stream divergence 1 - cos(A, B) per head:")
    w("")
    w("| layer | " + " | ".join(f"h{h}" for h in range(H)) + " |")
    w("|---|" + "---|" * H)
    for L, row in enumerate(ev["head_divergence"]):
        w(f"| {L} | " + " | ".join(f"{x:.2f}" for x in row) + " |")
    w("")
    w("## Sample completions")
    w("")
    w(f"From the shipped weights with the reference's cached decoder, {64} new tokens at most (stop at `</s>`). "
      "The prompt is shown first, the completion follows it directly. A prompt that ends in a space (`class `) "
      "ends in a lone `▁` piece, which is rare in training text because the tokenizer merges a space with the "
      "word after it; the model then falls back on other rare continuations.")
    w("")
    for s in ev["samples"]:
        w(f"**Prompt** `{json.dumps(s['prompt'])}`, {s['mode']}:")
        w("")
        w(fence(s["prompt"] + s["completion"]))
        w("")
    w("## Files")
    w("")
    w("| file | content |")
    w("|---|---|")
    w("| `config.json` | the model config (SAGELoopCoder keys, MoE extension, `mch_heads`) |")
    w("| `generation_config.json` | bos/eos and default sampling (temperature 0.8, top-p 0.95) |")
    w("| `tokenizer.model`, `tokenizer_config.json` | SentencePiece model; `add_bos_token` true |")
    w("| `model.safetensors` | BF16 weights, tensor names as in the design's MODEL.md |")
    w("| `train_log.json` | the command, arguments, held-out file list and the loss log |")
    w("| `eval.json` | every number of this card |")
    w("| `loss.png` | the loss curve |")
    w("")
    w("Regenerate everything with the command above (see also `docs/bundled-model.md`); the card alone with "
      "`/usr/bin/python3 tools/train/make_card.py resources/models/sage-mini-coder`.")
    w("")
    w("## License")
    w("")
    w("Trained on the Python standard library (Python Software Foundation License); the weights and the "
      "tokenizer are derived from it and are distributed under the same terms.")
    return "\n".join(lines) + "\n"


def main(model_dir):
    with open(os.path.join(model_dir, "train_log.json")) as f:
        meta = json.load(f)
    with open(os.path.join(model_dir, "eval.json")) as f:
        ev = json.load(f)
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    meta["model_bytes"] = os.path.getsize(os.path.join(model_dir, "model.safetensors"))
    plot_loss(meta, ev, os.path.join(model_dir, "loss.png"))
    with open(os.path.join(model_dir, "README.md"), "w") as f:
        f.write(card(meta, ev, config))
    print(f"wrote {model_dir}/README.md and loss.png")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: make_card.py MODEL_DIR")
    main(sys.argv[1])
