// Fuzzes a sharded checkpoint's model.safetensors.index.json (TensorStore::openFolder) next to two valid
// shards: any index must either open a store whose tensors all exist or throw SageError.
#include "FuzzSupport.h"

#include "engine/core/SageError.h"
#include "engine/io/SafeTensorsWriter.h"
#include "engine/io/TensorStore.h"

using namespace sage;

namespace {

const std::filesystem::path& folder()
{
    static const std::filesystem::path dir = [] {
        const std::filesystem::path d = fuzz::scratchDir("safetensors_index");
        SafeTensorsWriter a;
        a.addF32("model.embed_tokens.weight", {2, 3}, {1, 2, 3, 4, 5, 6}, DType::F32);
        a.addF32("model.norm.weight", {3}, {1, 1, 1}, DType::BF16);
        a.write(d / "model-00001-of-00002.safetensors");
        SafeTensorsWriter b;
        b.addF32("lm_head.weight", {2, 3}, {0, 1, 0, 1, 0, 1}, DType::F16);
        b.write(d / "model-00002-of-00002.safetensors");
        return d;
    }();
    return dir;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::filesystem::path& dir = folder();
    fuzz::writeFile(dir / "model.safetensors.index.json", data, size);
    try {
        const auto store = TensorStore::openFolder(dir);
        uint64_t sum = store->totalBytes();
        for (const std::string& name : store->names()) {
            const TensorInfo& t = store->get(name);
            sum += t.byteSize ? static_cast<const uint8_t*>(t.data)[t.byteSize - 1] : 0;
        }
        fuzz::consume(sum);
    } catch (const SageError&) {
    }
    return 0;
}
