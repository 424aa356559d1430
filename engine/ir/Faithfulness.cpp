#include "engine/ir/Faithfulness.h"

#include <algorithm>
#include <random>

namespace sage {

std::vector<int64_t> Faithfulness::pickRandom(std::span<const int64_t> eligible, int64_t count, uint64_t seed)
{
    std::vector<int64_t> pool(eligible.begin(), eligible.end());
    std::mt19937_64 rng(seed);
    const int64_t n = std::min<int64_t>(count, int64_t(pool.size()));
    for (int64_t i = 0; i < n; ++i) {
        const uint64_t span = uint64_t(pool.size()) - uint64_t(i);
        const size_t j = size_t(i) + size_t(rng() % span);
        std::swap(pool[size_t(i)], pool[j]);
    }
    pool.resize(size_t(std::max<int64_t>(n, 0)));
    std::sort(pool.begin(), pool.end());
    return pool;
}

IrFaithfulness Faithfulness::compute(std::span<const float> decisionChanges, std::span<const float> randomChanges,
                                     std::vector<int64_t> randomPositions)
{
    auto mean = [](std::span<const float> v) {
        double s = 0;
        for (float x : v) s += x;
        return v.empty() ? 0.0f : float(s / double(v.size()));
    };
    IrFaithfulness f;
    f.flips = int64_t(decisionChanges.size());
    f.decisionChange = mean(decisionChanges);
    f.randomChange = mean(randomChanges);
    f.score = f.decisionChange - f.randomChange;
    f.randomPositions = std::move(randomPositions);
    return f;
}

} // namespace sage
