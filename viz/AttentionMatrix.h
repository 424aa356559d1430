#pragma once

#include "engine/capture/Trace.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace sage {

struct HeadStreams;

// Which attention map a view shows. Loops are 1-based, layers 0-based; head -1 is the mean over heads.
// Mixed is the effective loop >= 2 attention g * A_global + (1 - g) * A_local on the same key positions
// (MODEL.md); loop 1 has only the global (causal) stream.
struct AttentionSelection {
    enum class Stream { Global = 0, Local = 1, Mixed = 2 };
    int loop = 1;
    int layer = 0;
    int head = 0;
    Stream stream = Stream::Global;

    bool operator==(const AttentionSelection&) const = default;
    bool isMean() const { return head < 0; }
    // Loop 1 has only the global stream: Local and Mixed fall back to it there.
    Stream effectiveStream() const { return loop <= 1 ? Stream::Global : stream; }
};

// A dense attention map built from a trace: row r is the query at position rowOrigin + r, column j the key at
// position j. Cells the capture did not keep are 0 in a partial row (only the top-k entries were kept) and NaN
// in a missing row (nothing was kept for that row).
struct AttentionMatrix {
    int rows = 0;
    int cols = 0;
    int rowOrigin = 0;
    std::vector<float> values; // [rows, cols]
    int fullRows = 0;          // rows with the exact row (captured in full or recomputed)
    int partialRows = 0;       // rows with only the kept top-k entries (or some heads so, for the mean)
    int missingRows = 0;       // rows with nothing kept
    int exactRows = 0;         // rows taken from a recomputed exact map
    float maxValue = 0.0f;

    bool isEmpty() const { return rows == 0; }
    bool isPartial() const { return partialRows + missingRows > 0; }
    float at(int r, int c) const { return values[size_t(r) * size_t(cols) + size_t(c)]; }
};

// Builds the map of `sel` from the trace steps (row r = steps[r]). `exact`, when given and covering sel's loop,
// layer and head(s), supplies its rows (the first exact->tokens positions) instead of the captured ones.
// `stale`, polled between rows, aborts the build (returns an empty matrix) when it turns true.
AttentionMatrix buildAttentionMatrix(const std::vector<Trace::StepPtr>& steps, int64_t heads,
                                     const AttentionSelection& sel, const HeadStreams* exact = nullptr,
                                     const std::function<bool()>& stale = {});

// Element-wise a - b over the common rows and columns (both built for the same positions).
AttentionMatrix differenceMatrix(const AttentionMatrix& a, const AttentionMatrix& b);

} // namespace sage
