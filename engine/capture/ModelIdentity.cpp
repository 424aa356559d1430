#include "engine/capture/ModelIdentity.h"

#include "engine/core/SageError.h"
#include "engine/model/Model.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

namespace sage {

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t h)
{
    const auto* p = static_cast<const uint8_t*>(data);
    for (size_t i = 0; i < bytes; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

namespace {

std::string hex(uint64_t v)
{
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)v);
    return buf;
}

} // namespace

ModelIdentity ModelIdentity::of(const Model& model)
{
    return ofFolder(model.folder());
}

ModelIdentity ModelIdentity::ofFolder(const std::filesystem::path& dir)
{
    ModelIdentity id;
    {
        std::ifstream in(dir / "config.json", std::ios::binary);
        if (!in) throw SageError((dir / "config.json").string() + ": cannot be read to identify the model");
        std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        id.configHash = hex(fnv1a64(bytes.data(), bytes.size()));
    }
    // The checkpoint's weight files: the shards named by the index, else model.safetensors (other
    // .safetensors files in the folder are not part of the model).
    std::vector<std::filesystem::path> files;
    if (std::ifstream idx(dir / "model.safetensors.index.json"); idx) {
        try {
            const nlohmann::json j = nlohmann::json::parse(idx);
            std::set<std::string> shards;
            for (const auto& [name, file] : j.at("weight_map").items()) shards.insert(file.get<std::string>());
            for (const std::string& f : shards) files.push_back(dir / f);
        } catch (const nlohmann::json::exception& e) {
            throw SageError((dir / "model.safetensors.index.json").string() + ": not a valid index (" + e.what() + ")");
        }
    } else {
        files.push_back(dir / "model.safetensors");
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (const auto& f : files) {
        const std::string name = f.filename().string();
        h = fnv1a64(name.data(), name.size(), h);
        std::error_code ec;
        const uint64_t size = std::filesystem::file_size(f, ec);
        if (ec || size < 8) throw SageError(f.string() + ": missing or too small to be a safetensors file");
        h = fnv1a64(&size, sizeof size, h);
        std::ifstream in(f, std::ios::binary);
        if (!in) throw SageError(f.string() + ": cannot be read to identify the model");
        uint64_t headerLen = 0;
        in.read(reinterpret_cast<char*>(&headerLen), 8);
        if (!in || headerLen > size - 8) throw SageError(f.string() + ": not a safetensors file (bad header length)");
        std::vector<char> buf(static_cast<size_t>(headerLen));
        in.read(buf.data(), std::streamsize(headerLen));
        h = fnv1a64(&headerLen, 8, h);
        h = fnv1a64(buf.data(), buf.size(), h);
        const uint64_t dataStart = 8 + headerLen, dataLen = size - dataStart;
        const uint64_t block = std::min<uint64_t>(4096, dataLen);
        buf.resize(static_cast<size_t>(block));
        for (int s = 0; s < 16 && block > 0; ++s) {
            const uint64_t off = dataStart + (dataLen - block) * uint64_t(s) / 15;
            in.seekg(std::streamoff(off));
            in.read(buf.data(), std::streamsize(block));
            if (!in) throw SageError(f.string() + ": could not be read to identify the model");
            h = fnv1a64(buf.data(), buf.size(), h);
        }
    }
    id.weightHash = hex(h);
    return id;
}

} // namespace sage
