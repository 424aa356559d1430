#pragma once

#include "engine/core/DType.h"
#include "engine/core/WeightView.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sage {

// One tensor of a safetensors file, validated: data points into the file's read-only memory map
// and holds exactly product(shape) * dtypeSize(dtype) bytes.
struct TensorInfo {
    std::string name;
    DType dtype = DType::F32;
    std::vector<int64_t> shape;
    const void* data = nullptr;
    uint64_t byteSize = 0;
    std::string file; // the file it lives in (for error messages)

    int64_t numel() const
    {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        return n;
    }
    // A 2-D view ([rows, cols]); 1-D tensors become [1, n]; higher ranks are flattened to [shape[0], rest].
    WeightView view() const;
    std::string shapeString() const; // "[64, 32]"
};

} // namespace sage
