#pragma once

#include <cstdint>

namespace sage {

// What a capture hook may ask for (a bit mask). Layer kinds are asked per (loop, layer); forward kinds once per
// forward call (CaptureHook::beginForward).
namespace CaptureKind {
// per (loop, layer)
inline constexpr uint32_t Attention = 1u << 0; // attention rows; which heads and streams is asked per head (askHead)
inline constexpr uint32_t Gates = 1u << 1;     // loop gates g [n, H] (loops >= 2)
inline constexpr uint32_t StreamStats =
    1u << 2; // per head: both streams before mixing (norms after o_proj's slice, divergence)
inline constexpr uint32_t RouterProbs = 1u << 3;  // full router softmax [n, E] (MoE layers)
inline constexpr uint32_t RouterChoice = 1u << 4; // chosen experts and their weights [n, K] (MoE layers)
inline constexpr uint32_t Residual = 1u << 5;     // residual stream after the layer [n, D]
inline constexpr uint32_t LensLayer = 1u << 6; // logit lens after this layer (delivered at the end of the forward call)
inline constexpr uint32_t LayerMask = (1u << 8) - 1;
// per forward call
inline constexpr uint32_t LogitLens = 1u << 8; // logit lens after every loop
inline constexpr uint32_t Logits = 1u << 9;    // final logits of every position [n, V]
// Not a kind but how the lens is delivered: the hook computes every lens itself from the residual rows
// (observeLensInput, and observeLogits for the final distribution) instead of receiving lens logits
// (observeLens) from the session.
inline constexpr uint32_t LensInput = 1u << 10;
inline constexpr uint32_t ForwardMask = LogitLens | Logits;
} // namespace CaptureKind

// The two context streams of a loop >= 2 head (MODEL.md, "MCH context streams"). Loop 1 has only Global.
enum class AttentionStream : uint8_t { Global = 0, Local = 1 };

// askHead() answers with these bits.
namespace StreamBits {
inline constexpr uint32_t Global = 1u << 0;
inline constexpr uint32_t Local = 1u << 1;
inline constexpr uint32_t Both = Global | Local;
} // namespace StreamBits

} // namespace sage
