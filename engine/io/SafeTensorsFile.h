#pragma once

#include "engine/io/TensorInfo.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sage {

// One .safetensors file, memory-mapped read-only and validated completely on open: the header is
// well-formed, every tensor has a supported dtype, its shape matches its byte range, the range lies inside
// the file, and no two tensors overlap. Every TensorInfo::data points into the mapping, so the TensorInfos
// are valid exactly as long as this object lives.
//
// Layout (the format's own): [u64 little-endian header length N][N bytes of JSON][data section]; data_offsets
// are relative to the start of the data section (byte 8 + N). Data pointers are NOT guaranteed to be aligned
// to the element size: the format allows any offset, so readers must use unaligned-safe loads.
class SafeTensorsFile
{
public:
    // A header larger than this is treated as damage, not as a model (real headers are well below 10 MB).
    static constexpr uint64_t kMaxHeaderBytes = 100'000'000;

    // Throws SageError naming the file, the problem and the fix.
    static std::unique_ptr<SafeTensorsFile> open(const std::filesystem::path& path);
    ~SafeTensorsFile();
    SafeTensorsFile(const SafeTensorsFile&) = delete;
    SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;

    // All tensors, sorted by name.
    const std::vector<TensorInfo>& tensors() const { return m_tensors; }
    // nullptr when the file has no tensor of that name.
    const TensorInfo* find(std::string_view name) const;
    // The optional "__metadata__" string map (empty when absent).
    const std::map<std::string, std::string>& metadata() const { return m_metadata; }
    const std::filesystem::path& path() const { return m_path; }
    uint64_t fileSize() const { return m_size; }
    // The whole mapped file, [fileSize()] bytes (every TensorInfo::data points inside it).
    const uint8_t* mappedData() const { return m_base; }
    // Length of the JSON header (without the 8-byte length prefix).
    uint64_t headerSize() const { return m_headerSize; }

private:
    SafeTensorsFile() = default;
    void parseHeader();

    std::filesystem::path m_path;
    std::string m_file;              // m_path as text, for messages
    const uint8_t* m_base = nullptr; // the whole file, [m_size] bytes, read-only mapping
    uint64_t m_size = 0;
    uint64_t m_headerSize = 0;
    std::vector<TensorInfo> m_tensors;
    std::map<std::string, std::string> m_metadata;
};

} // namespace sage
