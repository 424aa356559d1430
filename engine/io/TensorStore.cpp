#include "engine/io/TensorStore.h"

#include "engine/core/SageError.h"
#include "engine/io/StrictJson.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <set>
#include <system_error>

namespace sage
{

namespace fs = std::filesystem;

namespace
{

const char* const kIndexName = "model.safetensors.index.json";
const char* const kSingleName = "model.safetensors";
const char* const kFixIndex = "re-download the checkpoint's model.safetensors.index.json or regenerate it";
// Real indexes are well under 1 MB (80 layers x a dozen tensors); anything this large is not one.
constexpr uint64_t kMaxIndexBytes = 100'000'000;

[[noreturn]] void fail(const std::string& where, const std::string& what, const std::string& fix)
{
    throw SageError(where + ": " + what + "; " + fix);
}

// A shard name must name a file directly inside the checkpoint folder; "../x", "/abs" or "a/b" would let
// an index point anywhere on disk.
bool isPlainFileName(const std::string& name)
{
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

std::string readSmallFile(const fs::path& path)
{
    const std::string where = path.string();
    std::error_code ec;
    const uint64_t size = fs::file_size(path, ec);
    if (ec) fail(where, "cannot read the file (" + ec.message() + ")", "check the file and its permissions");
    if (size > kMaxIndexBytes)
        fail(where, "file is " + std::to_string(size) + " bytes, far more than any shard index", kFixIndex);
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(where, "cannot open the file", "check the file and its permissions");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(where, "cannot read the file", "check the file and its permissions");
    return text;
}

} // namespace

TensorStore::~TensorStore() = default;

std::unique_ptr<TensorStore> TensorStore::openFile(const fs::path& file)
{
    std::unique_ptr<TensorStore> store(new TensorStore);
    store->m_folder = file.parent_path();
    store->m_label = file.string();
    store->addFile(SafeTensorsFile::open(file));
    store->requireTensors();
    return store;
}

std::unique_ptr<TensorStore> TensorStore::openFolder(const fs::path& dir)
{
    std::unique_ptr<TensorStore> store(new TensorStore);
    store->m_folder = dir;
    store->m_label = dir.string();
    const std::string& where = store->m_label;

    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        fail(where, fs::exists(dir, ec) ? "is not a folder" : "folder does not exist",
             "pass the folder that holds the model's config.json and weights");

    if (fs::exists(dir / kIndexName, ec)) {
        store->openIndex(dir / kIndexName);
        store->requireTensors();
        return store;
    }
    if (fs::exists(dir / kSingleName, ec)) {
        store->addFile(SafeTensorsFile::open(dir / kSingleName));
        store->requireTensors();
        return store;
    }
    std::vector<fs::path> candidates;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
        if (e.path().extension() == ".safetensors" && e.is_regular_file(ec)) candidates.push_back(e.path());
    }
    if (ec) fail(where, "cannot list the folder (" + ec.message() + ")", "check the folder's permissions");
    std::sort(candidates.begin(), candidates.end());
    if (candidates.size() == 1) {
        store->addFile(SafeTensorsFile::open(candidates.front()));
        store->requireTensors();
        return store;
    }
    if (candidates.empty())
        fail(where, "no model.safetensors or model.safetensors.index.json in " + where,
             "put the model's safetensors weights into this folder");
    std::string list;
    for (size_t i = 0; i < candidates.size(); ++i)
        list += (i ? ", " : "") + candidates[i].filename().string();
    fail(where,
         "found " + std::to_string(candidates.size()) + " .safetensors files (" + list + ") but no " +
             kIndexName + " that says how they form one checkpoint",
         "add the checkpoint's index file or keep a single model.safetensors");
}

void TensorStore::openIndex(const fs::path& indexPath)
{
    const std::string where = indexPath.string();
    const nlohmann::json index = parseStrictJson(readSmallFile(indexPath), where, "index", kFixIndex, 8);
    if (!index.is_object())
        fail(where, "index is " + describeJson(index) + ", expected an object with a \"weight_map\" field",
             kFixIndex);
    if (!index.contains("weight_map")) fail(where, "index has no \"weight_map\" field", kFixIndex);
    const nlohmann::json& weightMap = index.at("weight_map");
    if (!weightMap.is_object())
        fail(where,
             "\"weight_map\" is " + describeJson(weightMap) +
                 ", expected an object mapping tensor names to shard file names",
             kFixIndex);
    if (weightMap.empty())
        fail(where, "\"weight_map\" is empty, so the checkpoint has no tensors", kFixIndex);

    // Validate every entry before opening anything, so a bad index fails before gigabytes are mapped.
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : weightMap.items()) {
        if (!shard.is_string())
            fail(where,
                 "weight_map entry " + tensor + " is " + describeJson(shard) + ", expected a shard file name",
                 kFixIndex);
        const std::string name = shard.get<std::string>();
        if (!isPlainFileName(name))
            fail(where,
                 "weight_map entry " + tensor + " names the shard \"" + name +
                     "\", which is not a plain file name inside " + m_label,
                 "fix the index so that every shard is a file directly in the checkpoint folder");
        shards.insert(name);
    }
    std::error_code ec;
    for (const std::string& name : shards) {
        if (!fs::exists(m_folder / name, ec))
            fail(where, "shard " + name + " (named by the weight_map) does not exist in " + m_label,
                 "download the missing shard into the checkpoint folder");
    }
    std::map<std::string, const SafeTensorsFile*> byShard;
    for (const std::string& name : shards) {
        addFile(SafeTensorsFile::open(m_folder / name));
        byShard[name] = m_files.back().get();
    }
    for (const auto& [tensor, shard] : weightMap.items()) {
        const SafeTensorsFile* file = byShard.at(shard.get<std::string>());
        if (!file->find(tensor))
            fail(where,
                 "weight_map puts tensor " + tensor + " in " + shard.get<std::string>() +
                     ", but that shard has no such tensor",
                 "re-download the shard or the index; they belong to different versions of the checkpoint");
    }
    // Tensors a shard holds beyond the weight_map are kept: the shards, not the index, are the weights.
}

void TensorStore::addFile(std::unique_ptr<SafeTensorsFile> file)
{
    for (const TensorInfo& t : file->tensors()) {
        auto [it, inserted] = m_byName.emplace(t.name, &t);
        if (!inserted)
            fail(m_label,
                 "tensor " + t.name + " is stored twice, in " + it->second->file + " and in " +
                     file->path().string(),
                 "remove the stale file or re-export the checkpoint");
    }
    m_files.push_back(std::move(file));
}

void TensorStore::requireTensors() const
{
    if (m_byName.empty())
        fail(m_label, "checkpoint holds no tensors", "re-download or re-export the checkpoint's weights");
}

const TensorInfo* TensorStore::find(std::string_view name) const
{
    auto it = m_byName.find(name);
    return it == m_byName.end() ? nullptr : it->second;
}

const TensorInfo& TensorStore::get(std::string_view name) const
{
    if (const TensorInfo* t = find(name)) return *t;
    fail(m_label, "checkpoint has no tensor " + std::string(name),
         "the weights do not match the model's config.json or are incomplete: re-download or re-export the "
         "checkpoint");
}

std::vector<std::string> TensorStore::names() const
{
    std::vector<std::string> out;
    out.reserve(m_byName.size());
    for (const auto& [name, t] : m_byName) out.push_back(name);
    return out;
}

uint64_t TensorStore::totalBytes() const
{
    uint64_t sum = 0;
    for (const auto& [name, t] : m_byName) sum += t->byteSize;
    return sum;
}

} // namespace sage
