#pragma once

// Writes a random-weight checkpoint of any config (Hugging Face layout) for benchmarks and tests of
// everything but numerics, streaming each tensor into the file so that multi-gigabyte checkpoints never sit
// in memory. Weights are uniform noise scaled to std ~1/sqrt(fan-in); norm weights are 1.
#include "engine/core/DType.h"
#include "engine/io/SafeTensorsWriter.h"
#include "engine/model/ModelConfig.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

namespace sage {

inline void writeRandomCheckpoint(const std::filesystem::path& dir, const nlohmann::json& config, DType dtype,
                                  uint64_t seed)
{
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "config.json") << config.dump(2);
    const ModelConfig c = ModelConfig::fromJson(config, (dir / "config.json").string());
    SafeTensorsWriter w;
    uint64_t salt = seed * 0x9E3779B97F4A7C15ull + 1;
    for (const TensorSpec& spec : c.tensorSpecs()) {
        const bool isNorm = spec.name.find("norm") != std::string::npos;
        const double fanIn = double(spec.shape.back());
        const float scale = isNorm ? 0.0f : float(1.7 / std::sqrt(fanIn)); // uniform(-s, s) has std ~ 1/sqrt(fan-in)
        const uint64_t tensorSeed = (salt += 0x9E3779B97F4A7C15ull);
        w.addGenerated(spec.name, dtype, spec.shape, [=](uint8_t* dst, uint64_t bytes) {
            uint64_t s = tensorSeed | 1;
            const size_t esz = dtypeSize(dtype);
            for (uint64_t i = 0; i < bytes / esz; ++i) {
                s ^= s << 13; // xorshift64: fast enough to fill gigabytes
                s ^= s >> 7;
                s ^= s << 17;
                const float u = float(int64_t(s >> 40) - (1ll << 23)) / float(1ll << 23); // [-1, 1)
                const float v = isNorm ? 1.0f : u * scale;
                if (dtype == DType::F32)
                    std::memcpy(dst + i * 4, &v, 4);
                else {
                    const uint16_t h = dtype == DType::BF16 ? floatToBf16(v) : floatToF16(v);
                    std::memcpy(dst + i * 2, &h, 2);
                }
            }
        });
    }
    w.write(dir / "model.safetensors");
}

} // namespace sage
