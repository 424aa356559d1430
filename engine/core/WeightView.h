#pragma once

#include "engine/core/DType.h"

#include <cstdint>
#include <cstring>

namespace sage {

// A read-only 2-D weight matrix in its stored type, row-major: [rows = out features, cols = in features],
// as safetensors stores nn.Linear weights. A 1-D tensor (norm weights, biases) has rows = 1.
struct WeightView {
    const void* data = nullptr;
    DType dtype = DType::F32;
    int64_t rows = 0;
    int64_t cols = 0;

    bool empty() const { return data == nullptr; }
    // Element (r, c) converted to float; for tests and cold paths only.
    float at(int64_t r, int64_t c) const;
    // Row r as a view with rows = 1.
    WeightView row(int64_t r) const;
};

inline float WeightView::at(int64_t r, int64_t c) const
{
    // Data may be unaligned (safetensors allows any offset), so elements are read with memcpy.
    const int64_t i = r * cols + c;
    const char* p = static_cast<const char*>(data) + i * int64_t(dtypeSize(dtype));
    if (dtype == DType::F32) {
        float f;
        std::memcpy(&f, p, 4);
        return f;
    }
    uint16_t h;
    std::memcpy(&h, p, 2);
    return dtype == DType::F16 ? f16ToFloat(h) : bf16ToFloat(h);
}

inline WeightView WeightView::row(int64_t r) const
{
    return WeightView{static_cast<const char*>(data) + r * cols * int64_t(dtypeSize(dtype)), dtype, 1, cols};
}

} // namespace sage
