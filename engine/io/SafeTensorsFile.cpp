#include "engine/io/SafeTensorsFile.h"

#include "engine/core/SageError.h"
#include "engine/io/StrictJson.h"

#include <algorithm>
#include <limits>
#include <system_error>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sage {

namespace {

using json = nlohmann::json;

const char* const kFixDamaged = "the file is damaged or incomplete: re-download or re-export it";
const char* const kFixDType = "re-export the checkpoint with weights in BF16, F16 or F32 (quantised formats such "
                              "as GPTQ, AWQ or GGUF types are not supported)";

[[noreturn]] void fail(const std::string& file, const std::string& what, const std::string& fix = kFixDamaged)
{
    throw SageError(file + ": " + what + "; " + fix);
}

std::string errnoText(int err)
{
    return std::generic_category().message(err);
}

std::string offsetsText(uint64_t begin, uint64_t end)
{
    // Built by appending: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string at -O3.
    std::string s = "[";
    s.append(std::to_string(begin)).append(", ").append(std::to_string(end)).append("]");
    return s;
}

// Valid safetensors dtypes the engine does not load; named so the message says "not supported" rather than
// "not a dtype".
bool isOtherSafetensorsDType(std::string_view s)
{
    static const char* const known[] = {
        "BOOL",    "U8",      "I8",      "I16",         "U16",         "I32",     "U32",     "I64", "U64", "F64",
        "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F6_E2M3", "F6_E3M2", "F4",  "C64"};
    return std::any_of(std::begin(known), std::end(known), [&](const char* k) { return s == k; });
}

} // namespace

std::unique_ptr<SafeTensorsFile> SafeTensorsFile::open(const std::filesystem::path& path)
{
    std::unique_ptr<SafeTensorsFile> f(new SafeTensorsFile);
    f->m_path = path;
    f->m_file = path.string();
    const std::string& file = f->m_file;

    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        fail(file, "cannot open the file (" + errnoText(err) + ")",
             err == ENOENT ? "check the path" : "check the path and the file's permissions");
    }
    struct stat st {
    };
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        fail(file, "cannot read the file's size (" + errnoText(err) + ")", "check the file system");
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        fail(file, "is not a regular file", "pass the path of a .safetensors file");
    }
    const uint64_t size = uint64_t(st.st_size);
    if (size == 0) {
        ::close(fd);
        fail(file, "file is empty (0 bytes), a safetensors file starts with an 8-byte header length");
    }
    if (size < 8) {
        ::close(fd);
        fail(file, "file is " + std::to_string(size) +
                       " bytes, shorter than the 8-byte header length every safetensors file starts with");
    }
    if (size > uint64_t(std::numeric_limits<size_t>::max())) {
        ::close(fd);
        fail(file, "file is too large to map into memory", "use a 64-bit build");
    }
    // MAP_PRIVATE + PROT_READ: the weights are shared with the page cache and never written.
    void* p = ::mmap(nullptr, size_t(size), PROT_READ, MAP_PRIVATE, fd, 0);
    const int mapErr = errno;
    ::close(fd); // the mapping keeps the file alive
    if (p == MAP_FAILED)
        fail(file, "cannot map the file into memory (" + errnoText(mapErr) + ")",
             "check free address space and the file system");
    f->m_base = static_cast<const uint8_t*>(p);
    f->m_size = size;
    f->parseHeader(); // on a throw, f's destructor unmaps
    return f;
}

SafeTensorsFile::~SafeTensorsFile()
{
    if (m_base) ::munmap(const_cast<uint8_t*>(m_base), size_t(m_size));
}

const TensorInfo* SafeTensorsFile::find(std::string_view name) const
{
    auto it = std::lower_bound(m_tensors.begin(), m_tensors.end(), name,
                               [](const TensorInfo& t, std::string_view n) { return t.name < n; });
    return it != m_tensors.end() && it->name == name ? &*it : nullptr;
}

void SafeTensorsFile::parseHeader()
{
    const std::string& file = m_file;
    uint64_t headerLen = 0; // little-endian on disk, whatever the host
    for (int i = 0; i < 8; ++i) headerLen |= uint64_t(m_base[i]) << (8 * i);
    const uint64_t afterPrefix = m_size - 8;
    if (headerLen == 0) fail(file, "header length is 0, but a safetensors file needs a JSON header");
    if (headerLen > kMaxHeaderBytes)
        fail(file,
             "header length is " + std::to_string(headerLen) + " bytes, more than the " +
                 std::to_string(kMaxHeaderBytes / 1'000'000) + " MB any real header needs (file is " +
                 std::to_string(m_size) + " bytes)",
             "this is not a safetensors file or its first 8 bytes are damaged: re-download or re-export it");
    if (headerLen > afterPrefix)
        fail(file, "header length is " + std::to_string(headerLen) + " bytes, but only " + std::to_string(afterPrefix) +
                       " bytes follow the 8-byte length (file is truncated)");
    m_headerSize = headerLen;

    // A safetensors header nests at most 3 levels: {name: {"shape": [dims]}}.
    const std::string_view text(reinterpret_cast<const char*>(m_base + 8), size_t(headerLen));
    const json root = parseStrictJson(text, file, "header", kFixDamaged, 4);
    if (!root.is_object())
        fail(file, "header is " + describeJson(root) +
                       ", expected a JSON object mapping tensor names to {dtype, shape, data_offsets}");

    const uint64_t dataStart = 8 + headerLen;
    const uint64_t dataSize = m_size - dataStart;

    m_tensors.reserve(root.size());
    for (const auto& [name, entry] : root.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object())
                fail(file,
                     "header field __metadata__ is " + describeJson(entry) + ", expected an object of string values");
            for (const auto& [key, value] : entry.items()) {
                if (!value.is_string())
                    fail(file, "header field __metadata__.\"" + key + "\" is " + describeJson(value) +
                                   ", expected a string (__metadata__ holds only strings)");
                m_metadata.emplace(key, value.get<std::string>());
            }
            continue;
        }
        const std::string tensor = "tensor " + name;
        if (!entry.is_object())
            fail(file,
                 tensor + " is " + describeJson(entry) + ", expected an object with dtype, shape and data_offsets");
        for (const auto& [key, value] : entry.items()) {
            if (key != "dtype" && key != "shape" && key != "data_offsets")
                fail(file, tensor + " has an unexpected field \"" + key +
                               "\" (a tensor entry holds exactly dtype, shape and data_offsets)");
        }
        for (const char* key : {"dtype", "shape", "data_offsets"}) {
            if (!entry.contains(key)) fail(file, tensor + " has no \"" + key + "\" field");
        }

        TensorInfo t;
        t.name = name;
        t.file = file;

        const json& dtype = entry["dtype"];
        if (!dtype.is_string())
            fail(file, tensor + ": dtype is " + describeJson(dtype) + ", expected a string such as \"BF16\"");
        const std::string dtypeName = dtype.get<std::string>();
        const std::optional<DType> parsedDType = parseDType(dtypeName);
        if (!parsedDType) {
            if (isOtherSafetensorsDType(dtypeName))
                fail(file,
                     tensor + " has dtype " + dtypeName +
                         ", which the engine does not load (supported: F32, F16, BF16)",
                     kFixDType);
            fail(file, tensor + " has unknown dtype \"" + dtypeName + "\" (supported: F32, F16, BF16)", kFixDType);
        }
        t.dtype = *parsedDType;

        const json& shape = entry["shape"];
        if (!shape.is_array())
            fail(file, tensor + ": shape is " + describeJson(shape) + ", expected an array of non-negative integers");
        // The product of the non-zero dimensions must fit even when a zero makes the element count 0, so that
        // every partial product (a row length, view()'s columns) is safe to compute.
        uint64_t nonZeroProduct = 1;
        bool hasZero = false;
        bool overflow = false;
        for (size_t i = 0; i < shape.size(); ++i) {
            const std::optional<uint64_t> dim = jsonToUnsigned(shape[i]);
            if (!dim)
                fail(file, tensor + ": shape[" + std::to_string(i) + "] is " + describeJson(shape[i]) +
                               ", expected a non-negative integer");
            if (*dim > uint64_t(std::numeric_limits<int64_t>::max()))
                fail(file, tensor + ": shape[" + std::to_string(i) + "] = " + std::to_string(*dim) +
                               " does not fit a signed 64-bit integer");
            t.shape.push_back(int64_t(*dim));
            if (*dim == 0)
                hasZero = true;
            else
                overflow = overflow || __builtin_mul_overflow(nonZeroProduct, *dim, &nonZeroProduct);
        }
        const uint64_t numel = hasZero ? 0 : nonZeroProduct;
        uint64_t expectedBytes = 0;
        overflow = overflow || nonZeroProduct > uint64_t(std::numeric_limits<int64_t>::max()) ||
                   __builtin_mul_overflow(numel, uint64_t(dtypeSize(t.dtype)), &expectedBytes);
        if (overflow)
            fail(file, tensor + ": shape " + t.shapeString() +
                           " has more elements than 64-bit sizes can hold (the product overflows)");

        const json& offsets = entry["data_offsets"];
        if (!offsets.is_array() || offsets.size() != 2)
            fail(file, tensor + ": data_offsets is " + describeJson(offsets) +
                           ", expected an array of exactly 2 non-negative integers [begin, end]");
        const std::optional<uint64_t> begin = jsonToUnsigned(offsets[0]);
        const std::optional<uint64_t> end = jsonToUnsigned(offsets[1]);
        if (!begin || !end)
            fail(file, tensor + ": data_offsets is " + describeJson(offsets) +
                           ", expected an array of exactly 2 non-negative integers [begin, end]");
        if (*begin > *end) fail(file, tensor + ": data_offsets " + offsetsText(*begin, *end) + " have begin > end");
        if (*end > dataSize)
            fail(file, tensor + ": data_offsets " + offsetsText(*begin, *end) +
                           " end past the data section, which holds " + std::to_string(dataSize) + " bytes (file is " +
                           std::to_string(m_size) + " bytes; it is truncated or its header is wrong)");
        if (*end - *begin != expectedBytes)
            fail(file, tensor + ": dtype " + dtypeName + " and shape " + t.shapeString() + " need " +
                           std::to_string(expectedBytes) + " bytes, but data_offsets " + offsetsText(*begin, *end) +
                           " span " + std::to_string(*end - *begin) + " bytes");
        t.data = m_base + dataStart + *begin;
        t.byteSize = expectedBytes;
        m_tensors.push_back(std::move(t));
    }

    // Overlapping byte ranges would let one tensor's data alias another's: always a broken writer.
    std::vector<const TensorInfo*> byOffset;
    for (const TensorInfo& t : m_tensors) {
        if (t.byteSize > 0) byOffset.push_back(&t);
    }
    std::sort(byOffset.begin(), byOffset.end(), [](const TensorInfo* a, const TensorInfo* b) {
        return static_cast<const uint8_t*>(a->data) < static_cast<const uint8_t*>(b->data);
    });
    const uint8_t* dataBase = m_base + dataStart;
    for (size_t i = 1; i < byOffset.size(); ++i) {
        const TensorInfo& a = *byOffset[i - 1];
        const TensorInfo& b = *byOffset[i];
        const uint64_t aBegin = uint64_t(static_cast<const uint8_t*>(a.data) - dataBase);
        const uint64_t bBegin = uint64_t(static_cast<const uint8_t*>(b.data) - dataBase);
        if (bBegin < aBegin + a.byteSize)
            fail(file, "tensors " + a.name + " " + offsetsText(aBegin, aBegin + a.byteSize) + " and " + b.name + " " +
                           offsetsText(bBegin, bBegin + b.byteSize) + " overlap in the data section");
    }
    // root.items() iterates in key order (nlohmann objects are std::maps), so m_tensors is sorted by name.
}

} // namespace sage
