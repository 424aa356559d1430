#include "engine/model/WeightScan.h"

#include "engine/core/SageError.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/io/TensorStore.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace sage {

namespace {

// A value is NaN or Inf exactly when its exponent bits are all ones; NaN when the mantissa is non-zero too.
template <typename Bits> struct Format {
    Bits exponent;
    Bits mantissa;
};
constexpr Format<uint32_t> kF32{0x7F800000u, 0x007FFFFFu};
constexpr Format<uint16_t> kF16{0x7C00u, 0x03FFu};
constexpr Format<uint16_t> kBF16{0x7F80u, 0x007Fu};

struct ChunkResult {
    int64_t count = 0;
    int64_t first = std::numeric_limits<int64_t>::max(); // element index within the tensor
    bool firstIsNan = false;
};

// Elements [begin, end) of one tensor; data may be unaligned (safetensors allows any offset), hence memcpy.
template <typename Bits> ChunkResult scan(const uint8_t* data, int64_t begin, int64_t end, Format<Bits> f)
{
    ChunkResult r;
    // Counting first is a branch-free loop the compiler vectorises; the rare bad chunk is scanned again.
    int64_t count = 0;
    for (int64_t i = begin; i < end; ++i) {
        Bits v;
        std::memcpy(&v, data + i * int64_t(sizeof(Bits)), sizeof(Bits));
        count += (v & f.exponent) == f.exponent;
    }
    r.count = count;
    if (count == 0) return r;
    for (int64_t i = begin; i < end; ++i) {
        Bits v;
        std::memcpy(&v, data + i * int64_t(sizeof(Bits)), sizeof(Bits));
        if ((v & f.exponent) == f.exponent) {
            r.first = i;
            r.firstIsNan = (v & f.mantissa) != 0;
            break;
        }
    }
    return r;
}

struct Chunk {
    size_t tensor;
    int64_t begin, end;
};

} // namespace

std::optional<NonFiniteWeight> findNonFiniteWeight(const TensorStore& store, cpu::ThreadPool& pool)
{
    const std::vector<std::string> names = store.names();
    std::vector<const TensorInfo*> tensors;
    tensors.reserve(names.size());
    for (const std::string& n : names) tensors.push_back(&store.get(n));

    // Chunks of at most 4 MB, so that a few large tensors still spread over every thread.
    constexpr int64_t kChunkBytes = 4 << 20;
    std::vector<Chunk> chunks;
    for (size_t t = 0; t < tensors.size(); ++t) {
        const int64_t esz = int64_t(dtypeSize(tensors[t]->dtype));
        const int64_t n = int64_t(tensors[t]->byteSize) / esz;
        const int64_t step = kChunkBytes / esz;
        for (int64_t b = 0; b < n; b += step) chunks.push_back({t, b, std::min(n, b + step)});
    }
    std::vector<ChunkResult> results(chunks.size()); // [chunks]
    pool.parallelFor(int64_t(chunks.size()), [&](int64_t begin, int64_t end) {
        for (int64_t c = begin; c < end; ++c) {
            const Chunk& ch = chunks[size_t(c)];
            const TensorInfo& t = *tensors[ch.tensor];
            const auto* data = static_cast<const uint8_t*>(t.data);
            switch (t.dtype) {
            case DType::F32: results[size_t(c)] = scan(data, ch.begin, ch.end, kF32); break;
            case DType::F16: results[size_t(c)] = scan(data, ch.begin, ch.end, kF16); break;
            case DType::BF16: results[size_t(c)] = scan(data, ch.begin, ch.end, kBF16); break;
            }
        }
    });

    std::vector<ChunkResult> perTensor(tensors.size()); // [tensors]
    for (size_t c = 0; c < chunks.size(); ++c) {
        ChunkResult& t = perTensor[chunks[c].tensor];
        const ChunkResult& r = results[c];
        t.count += r.count;
        if (r.first < t.first) {
            t.first = r.first;
            t.firstIsNan = r.firstIsNan;
        }
    }
    std::optional<NonFiniteWeight> out;
    for (size_t t = 0; t < tensors.size(); ++t) {
        if (perTensor[t].count == 0) continue;
        if (!out) {
            out = NonFiniteWeight{tensors[t]->name,   tensors[t]->file,        perTensor[t].first,
                                  perTensor[t].count, perTensor[t].firstIsNan, 0};
        }
        ++out->tensorsWithNonFinite;
    }
    return out;
}

void requireFiniteWeights(const TensorStore& store, cpu::ThreadPool& pool)
{
    const std::optional<NonFiniteWeight> bad = findNonFiniteWeight(store, pool);
    if (!bad) return;
    std::string msg = bad->file + ": tensor " + bad->tensor + " holds " + (bad->isNan ? "NaN" : "an infinity") +
                      " at element " + std::to_string(bad->index) + " (" + std::to_string(bad->count) +
                      " non-finite value" + (bad->count == 1 ? "" : "s") + " in this tensor";
    if (bad->tensorsWithNonFinite > 1)
        msg += ", " + std::to_string(bad->tensorsWithNonFinite - 1) + " more tensor" +
               (bad->tensorsWithNonFinite == 2 ? "" : "s") + " affected";
    msg += "); the checkpoint is damaged or was saved after training diverged, and every output would be NaN: "
           "re-download or re-export it (to inspect it anyway, skip the weight check: sage-cli "
           "--skip-weight-check, LoadOptions::checkWeights = false)";
    throw SageError(msg);
}

} // namespace sage
