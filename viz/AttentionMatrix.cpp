#include "viz/AttentionMatrix.h"

#include "engine/capture/StreamRecompute.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sage {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

enum class RowKind { Full, Partial, Missing };

// Adds weight * (the captured row of head h, stream s) into out[cols]; returns what was available.
RowKind addCapturedRow(const LayerRecord& r, int head, int stream, float weight, float* out, int cols)
{
    for (const FullAttentionRow& f : r.fullRows)
        if (f.head == head && f.stream == stream) {
            const int n = std::min<int>(int(f.probs.size()), cols - f.firstKey);
            for (int j = 0; j < n; ++j) out[f.firstKey + j] += weight * f.probs[size_t(j)];
            return RowKind::Full;
        }
    const int k = r.topK;
    const int slot = head * r.streams + stream;
    if (k <= 0 || r.streams <= stream || r.topKeys.size() < size_t((slot + 1) * k)) return RowKind::Missing;
    if (!r.restMass.empty() && std::isnan(r.restMass[size_t(slot)])) return RowKind::Missing; // row not observed
    for (int e = 0; e < k; ++e) {
        const int32_t key = r.topKeys[size_t(slot * k + e)];
        if (key >= 0 && key < cols) out[key] += weight * r.topProbs[size_t(slot * k + e)];
    }
    return RowKind::Partial;
}

// Adds weight * (the exact row of head h, stream s at query position p) into out.
void addExactRow(const HeadStreams& x, int64_t hi, int stream, int64_t p, float weight, float* out, int cols)
{
    const std::vector<float>& map = stream == 0 ? x.global : x.local;
    const float* row = map.data() + (hi * x.tokens + p) * x.tokens;
    const int n = int(std::min<int64_t>(x.tokens, cols));
    for (int j = 0; j < n; ++j) out[j] += weight * row[j];
}

RowKind worse(RowKind a, RowKind b)
{
    return std::max(a, b);
}

} // namespace

AttentionMatrix buildAttentionMatrix(const std::vector<Trace::StepPtr>& steps, int64_t heads,
                                     const AttentionSelection& sel, const HeadStreams* exact,
                                     const std::function<bool()>& stale)
{
    AttentionMatrix m;
    if (steps.empty() || heads <= 0) return m;
    m.rows = int(steps.size());
    m.rowOrigin = int(steps.front()->position);
    m.cols = m.rowOrigin + m.rows;
    m.values.assign(size_t(m.rows) * size_t(m.cols), 0.0f);

    const AttentionSelection::Stream stream = sel.effectiveStream();
    std::vector<int> headList;
    if (sel.isMean())
        for (int h = 0; h < heads; ++h) headList.push_back(h);
    else if (sel.head < heads)
        headList.push_back(sel.head);
    if (headList.empty()) {
        std::fill(m.values.begin(), m.values.end(), kNaN);
        m.missingRows = m.rows;
        return m;
    }
    // Exact rows apply when the recomputed map is of this (loop, layer) and holds every head needed.
    bool useExact = exact && exact->loop == sel.loop && exact->layer == sel.layer;
    std::vector<int64_t> exactIndex;
    if (useExact)
        for (int h : headList) {
            exactIndex.push_back(exact->headIndex(h));
            if (exactIndex.back() < 0) useExact = false;
        }
    const float headWeight = 1.0f / float(headList.size());

    for (int r = 0; r < m.rows; ++r) {
        if (stale && (r & 63) == 0 && stale()) return {};
        float* out = m.values.data() + size_t(r) * size_t(m.cols);
        const StepRecord& step = *steps[size_t(r)];
        const int64_t p = step.position;
        if (useExact && p < exact->tokens) {
            for (size_t k = 0; k < headList.size(); ++k) {
                const int64_t hi = exactIndex[k];
                if (stream == AttentionSelection::Stream::Mixed) {
                    const float g = exact->gate[size_t(hi * exact->tokens + p)];
                    addExactRow(*exact, hi, 0, p, headWeight * g, out, m.cols);
                    addExactRow(*exact, hi, 1, p, headWeight * (1.0f - g), out, m.cols);
                } else {
                    addExactRow(*exact, hi, int(stream), p, headWeight, out, m.cols);
                }
            }
            ++m.fullRows;
            ++m.exactRows;
            continue;
        }
        const LayerRecord* rec = step.layer(sel.loop, sel.layer);
        RowKind kind = rec ? RowKind::Full : RowKind::Missing;
        for (size_t k = 0; k < headList.size() && kind != RowKind::Missing; ++k) {
            const int h = headList[k];
            if (stream == AttentionSelection::Stream::Mixed) {
                const float g = size_t(h) < rec->gate.size() ? rec->gate[size_t(h)] : kNaN;
                if (std::isnan(g)) {
                    kind = RowKind::Missing;
                    break;
                }
                kind = worse(kind, addCapturedRow(*rec, h, 0, headWeight * g, out, m.cols));
                kind = worse(kind, addCapturedRow(*rec, h, 1, headWeight * (1.0f - g), out, m.cols));
            } else {
                kind = worse(kind, addCapturedRow(*rec, h, int(stream), headWeight, out, m.cols));
            }
        }
        switch (kind) {
        case RowKind::Full: ++m.fullRows; break;
        case RowKind::Partial: ++m.partialRows; break;
        case RowKind::Missing:
            std::fill(out, out + m.cols, kNaN);
            ++m.missingRows;
            break;
        }
    }
    for (float v : m.values)
        if (v > m.maxValue) m.maxValue = v; // NaN compares false
    return m;
}

AttentionMatrix differenceMatrix(const AttentionMatrix& a, const AttentionMatrix& b)
{
    AttentionMatrix d;
    if (a.isEmpty() || b.isEmpty() || a.rowOrigin != b.rowOrigin) return d;
    d.rows = std::min(a.rows, b.rows);
    d.cols = std::min(a.cols, b.cols);
    d.rowOrigin = a.rowOrigin;
    d.values.resize(size_t(d.rows) * size_t(d.cols));
    for (int r = 0; r < d.rows; ++r)
        for (int c = 0; c < d.cols; ++c) {
            const float v = a.at(r, c) - b.at(r, c);
            d.values[size_t(r) * size_t(d.cols) + size_t(c)] = v;
            if (std::fabs(v) > d.maxValue) d.maxValue = std::fabs(v);
        }
    d.fullRows = std::min(a.fullRows, b.fullRows);
    d.partialRows = std::max(a.partialRows, b.partialRows);
    d.missingRows = std::max(a.missingRows, b.missingRows);
    return d;
}

} // namespace sage
