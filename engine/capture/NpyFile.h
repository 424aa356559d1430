#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace sage {

// NumPy .npy files (format version 1.0): float32, little-endian ('<f4'), C order. Enough for exporting
// captured arrays to Python and for reading golden arrays in tests.
class NpyFile
{
public:
    // data holds prod(shape) floats. Throws SageError when the file cannot be written.
    static void write(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape);
    // Reads a '<f4' C-order array; throws SageError naming the file and the problem otherwise.
    static std::vector<float> read(const std::filesystem::path& path, std::vector<int64_t>* shape = nullptr);
};

} // namespace sage
