#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace sage {

class Model;

// Identifies the checkpoint a session was captured with, cheaply enough to compute on every open of a
// 40B model. Both hashes are 64-bit FNV-1a, written as 16 hex digits:
//   configHash: the bytes of config.json.
//   weightHash: for every weight file (the shards of model.safetensors.index.json in name order, else
//               model.safetensors): its name, its size, its whole
//               header (8-byte length + JSON, i.e. every tensor's name, dtype, shape and offsets) and 16
//               samples of 4 KiB of tensor data at evenly spaced offsets. A change to any tensor's layout is
//               always detected; a change to values only if it touches a sampled block.
struct ModelIdentity {
    std::string configHash;
    std::string weightHash;

    static ModelIdentity of(const Model& model);
    static ModelIdentity ofFolder(const std::filesystem::path& dir);
    bool operator==(const ModelIdentity&) const = default;
};

// 64-bit FNV-1a, continuing from `h`.
uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h = 0xcbf29ce484222325ull);

} // namespace sage
