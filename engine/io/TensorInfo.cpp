#include "engine/io/TensorInfo.h"

namespace sage
{

WeightView TensorInfo::view() const
{
    // Rank 0 (a scalar) is [1, 1]; rank 1 is one row; rank >= 2 keeps the outer dimension as rows, which
    // for nn.Linear weights ([out, in]) and stacked expert tensors is the output dimension.
    int64_t rows = 1;
    int64_t cols = 1;
    if (shape.size() == 1) {
        cols = shape[0];
    } else if (shape.size() >= 2) {
        rows = shape[0];
        for (size_t i = 1; i < shape.size(); ++i) cols *= shape[i];
    }
    return WeightView{data, dtype, rows, cols};
}

std::string TensorInfo::shapeString() const
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        s += std::to_string(shape[i]);
    }
    s += ']';
    return s;
}

} // namespace sage
