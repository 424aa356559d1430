#pragma once

#include "engine/core/DType.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace sage
{

// Writes a safetensors file that the reference implementation (and SafeTensorsFile) reads: the header is
// padded with spaces to a multiple of 8 bytes and tensors are laid out without gaps, largest element size
// first and then by name, so every tensor's data is aligned to its element size.
// Used by tests and benchmark tools to build checkpoints; invalid arguments throw SageError.
class SafeTensorsWriter
{
public:
    // Fills `bytes` bytes at dst (the tensor's whole data, in its stored dtype, row-major).
    using Fill = std::function<void(uint8_t* dst, uint64_t bytes)>;

    // bytes.size() must equal product(shape) * dtypeSize(dtype).
    void add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
    // Stores the values as storeAs (BF16/F16 rounded to nearest even); values.size() must equal
    // product(shape).
    void addF32(std::string name, std::vector<int64_t> shape, const std::vector<float>& values,
                DType storeAs);
    // The data is produced by fill during write(), one tensor at a time, so a multi-gigabyte checkpoint
    // never has more than its largest tensor in memory.
    void addGenerated(std::string name, DType dtype, std::vector<int64_t> shape, Fill fill);
    void setMetadata(std::string key, std::string value);

    // Writes path + ".tmp", then renames it to path, so a reader never sees a half-written file.
    void write(const std::filesystem::path& path) const;

    size_t tensorCount() const { return m_entries.size(); }

private:
    struct Entry {
        std::string name;
        DType dtype = DType::F32;
        std::vector<int64_t> shape;
        uint64_t byteSize = 0;
        std::vector<uint8_t> bytes; // [byteSize] when not generated
        Fill fill;                  // set when generated
    };
    uint64_t checkEntry(const std::string& name, DType dtype, const std::vector<int64_t>& shape) const;

    std::vector<Entry> m_entries;
    std::set<std::string> m_names;
    std::map<std::string, std::string> m_metadata;
};

} // namespace sage
