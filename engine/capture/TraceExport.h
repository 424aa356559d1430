#pragma once

#include <filesystem>
#include <string>

namespace sage {

class Trace;

// Exports of a Trace for other tools. Each throws SageError naming the file when writing fails.
namespace TraceExport {

// NumPy arrays in `dir` (created if needed), loops 1-based, T = trace length:
//   attn.global.loop{l}.layer{L}.npy [H, T, T]   (every loop; loop 1 has only this stream)
//   attn.local.loop{l}.layer{L}.npy  [H, T, T]   (loops >= 2; zero outside the window)
//   gate.loop{l}.layer{L}.npy [T, H], norm.global|norm.local|divergence.loop{l}.layer{L}.npy [T, H]
//   router.loop{l}.layer{L}.npy [T, E] (MoE layers, full softmax), resid_norm.npy [loops, N, T],
//   lens_kl.npy [loops, T], logits.npy [T, V]
// Only what the trace holds for every step is written. Attention maps are exact where the policy kept full
// rows; other heads hold their kept top-k entries only (the remaining mass is not spread). manifest.json names
// every file with its kind, loop, layer and shape, plus the tokens and the model shape.
void writeNpy(const Trace& trace, const std::filesystem::path& dir);

// One JSON document: model shape, policy and per step the token, generated flag, its choice (probability,
// entropy, margin, alternatives), the logit lens and the expert routing of every MoE layer.
void writeJson(const Trace& trace, const std::filesystem::path& file);

// Two CSV files in `dir`: steps.csv (position, token, generated, p, entropy, margin, alternatives as
// "token:p" joined by ';') and routing.csv (position, loop, layer, rank, expert, weight, router_p).
void writeCsv(const Trace& trace, const std::filesystem::path& dir);

} // namespace TraceExport

} // namespace sage
