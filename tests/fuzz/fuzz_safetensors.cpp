// Fuzzes SafeTensorsFile::open: any input must either open with every tensor's bytes inside the file
// or throw SageError.
#include "FuzzSupport.h"

#include "engine/core/SageError.h"
#include "engine/io/SafeTensorsFile.h"

using namespace sage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    static const std::filesystem::path file = fuzz::scratchDir("safetensors") / "model.safetensors";
    fuzz::writeFile(file, data, size);
    try {
        const auto f = SafeTensorsFile::open(file);
        const uint8_t* begin = f->mappedData();
        const uint8_t* dataSection = begin + 8 + f->headerSize();
        const uint8_t* end = begin + f->fileSize();
        uint64_t sum = 0;
        for (const TensorInfo& t : f->tensors()) {
            const auto* p = static_cast<const uint8_t*>(t.data);
            if (t.byteSize > 0 && (p < dataSection || p > end || t.byteSize > uint64_t(end - p)))
                fuzz::invariantFailed("a tensor's bytes lie outside the data section");
            if (uint64_t(t.numel()) * dtypeSize(t.dtype) != t.byteSize)
                fuzz::invariantFailed("byteSize != numel * dtype size");
            for (uint64_t i = 0; i < t.byteSize; i += 97) sum += p[i];
            const WeightView v = t.view();
            sum += uint64_t(v.rows + v.cols) + t.shapeString().size();
        }
        for (const auto& [k, v] : f->metadata()) sum += k.size() + v.size();
        fuzz::consume(sum);
    } catch (const SageError&) {
    }
    return 0;
}
