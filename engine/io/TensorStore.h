#pragma once

#include "engine/io/SafeTensorsFile.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sage
{

// The weights of one checkpoint: one or more memory-mapped safetensors files seen as a single name -> tensor
// map. Every file is validated on open (see SafeTensorsFile) and a tensor name may occur in only one file.
class TensorStore
{
public:
    // A model folder, choosing in this order:
    //   model.safetensors.index.json (sharded; its "weight_map" names each tensor's shard),
    //   model.safetensors,
    //   the only *.safetensors file in the folder.
    // Throws SageError when none applies, or when the index or a shard is invalid.
    static std::unique_ptr<TensorStore> openFolder(const std::filesystem::path& dir);
    // A single .safetensors file; folder() is its parent directory.
    static std::unique_ptr<TensorStore> openFile(const std::filesystem::path& file);

    ~TensorStore();
    TensorStore(const TensorStore&) = delete;
    TensorStore& operator=(const TensorStore&) = delete;

    // nullptr when no file holds the tensor.
    const TensorInfo* find(std::string_view name) const;
    // Throws SageError "<checkpoint>: checkpoint has no tensor NAME; ..." when absent.
    const TensorInfo& get(std::string_view name) const;
    // All tensor names, sorted.
    std::vector<std::string> names() const;
    // Sum of all tensors' data bytes (headers excluded).
    uint64_t totalBytes() const;
    size_t fileCount() const { return m_files.size(); }
    const std::vector<std::unique_ptr<SafeTensorsFile>>& files() const { return m_files; }
    const std::filesystem::path& folder() const { return m_folder; }

private:
    TensorStore() = default;
    void addFile(std::unique_ptr<SafeTensorsFile> file);
    void openIndex(const std::filesystem::path& indexPath);
    void requireTensors() const;

    std::filesystem::path m_folder;
    std::string m_label; // what messages name: the folder, or the file for openFile
    std::vector<std::unique_ptr<SafeTensorsFile>> m_files;
    std::map<std::string, const TensorInfo*, std::less<>> m_byName; // points into m_files' tensors
};

} // namespace sage
