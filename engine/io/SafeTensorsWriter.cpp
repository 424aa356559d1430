#include "engine/io/SafeTensorsWriter.h"

#include "engine/core/SageError.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>

#include <unistd.h>

namespace sage
{

namespace
{

std::string shapeText(const std::vector<int64_t>& shape)
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

} // namespace

uint64_t SafeTensorsWriter::checkEntry(const std::string& name, DType dtype,
                                       const std::vector<int64_t>& shape) const
{
    if (name == "__metadata__")
        throw SageError("safetensors writer: \"__metadata__\" is reserved, not a tensor name");
    if (m_names.count(name)) throw SageError("safetensors writer: tensor " + name + " was added twice");
    uint64_t bytes = dtypeSize(dtype);
    for (int64_t d : shape) {
        if (d < 0 || __builtin_mul_overflow(bytes, uint64_t(d), &bytes))
            throw SageError("safetensors writer: tensor " + name + " has an invalid shape " +
                            shapeText(shape));
    }
    return bytes;
}

void SafeTensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape,
                            std::vector<uint8_t> bytes)
{
    const uint64_t expected = checkEntry(name, dtype, shape);
    if (bytes.size() != expected)
        throw SageError("safetensors writer: tensor " + name + " (" + dtypeName(dtype) + " " +
                        shapeText(shape) + ") needs " + std::to_string(expected) + " bytes, got " +
                        std::to_string(bytes.size()));
    m_names.insert(name);
    m_entries.push_back(Entry{std::move(name), dtype, std::move(shape), expected, std::move(bytes), {}});
}

void SafeTensorsWriter::addF32(std::string name, std::vector<int64_t> shape, const std::vector<float>& values,
                               DType storeAs)
{
    // values: [product(shape)] floats; stored as [product(shape)] elements of storeAs.
    std::vector<uint8_t> bytes(values.size() * dtypeSize(storeAs));
    switch (storeAs) {
    case DType::F32:
        if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
        break;
    case DType::F16:
    case DType::BF16:
        for (size_t i = 0; i < values.size(); ++i) {
            const uint16_t h = storeAs == DType::F16 ? floatToF16(values[i]) : floatToBf16(values[i]);
            std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
        break;
    }
    add(std::move(name), storeAs, std::move(shape), std::move(bytes));
}

void SafeTensorsWriter::addGenerated(std::string name, DType dtype, std::vector<int64_t> shape, Fill fill)
{
    const uint64_t bytes = checkEntry(name, dtype, shape);
    if (!fill) throw SageError("safetensors writer: tensor " + name + " has no fill function");
    m_names.insert(name);
    m_entries.push_back(Entry{std::move(name), dtype, std::move(shape), bytes, {}, std::move(fill)});
}

void SafeTensorsWriter::setMetadata(std::string key, std::string value)
{
    m_metadata[std::move(key)] = std::move(value);
}

void SafeTensorsWriter::write(const std::filesystem::path& path) const
{
    // Largest element size first keeps every tensor aligned to its element size without padding gaps
    // (the reference reader rejects gaps).
    std::vector<const Entry*> order;
    for (const Entry& e : m_entries) order.push_back(&e);
    std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) {
        if (dtypeSize(a->dtype) != dtypeSize(b->dtype)) return dtypeSize(a->dtype) > dtypeSize(b->dtype);
        return a->name < b->name;
    });

    nlohmann::json header = nlohmann::json::object();
    if (!m_metadata.empty()) header["__metadata__"] = m_metadata;
    uint64_t offset = 0;
    for (const Entry* e : order) {
        header[e->name] = {{"dtype", dtypeName(e->dtype)},
                           {"shape", e->shape},
                           {"data_offsets", {offset, offset + e->byteSize}}};
        offset += e->byteSize;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& ex) {
        throw SageError(path.string() + ": cannot encode the header (" + std::string(ex.what()) +
                        "); tensor names and metadata must be valid UTF-8");
    }
    text.append((8 - text.size() % 8) % 8, ' ');

    const std::filesystem::path tmp = path.string() + ".tmp";
    std::FILE* out = std::fopen(tmp.c_str(), "wb");
    if (!out) {
        const int err = errno;
        throw SageError(tmp.string() + ": cannot create the file (" + std::generic_category().message(err) +
                        "); check that the folder exists and is writable");
    }
    auto failWrite = [&](const std::string& what) {
        const int err = errno;
        if (out) std::fclose(out);
        out = nullptr;
        std::remove(tmp.c_str());
        throw SageError(tmp.string() + ": " + what + " (" + std::generic_category().message(err) +
                        "); check free disk space and permissions");
    };
    try {
        uint8_t prefix[8];
        for (int i = 0; i < 8; ++i) prefix[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
        if (std::fwrite(prefix, 1, 8, out) != 8 ||
            std::fwrite(text.data(), 1, text.size(), out) != text.size())
            failWrite("cannot write the header");
        std::unique_ptr<uint8_t[]> buffer; // [bufferSize] bytes, the current generated tensor
        uint64_t bufferSize = 0;
        for (const Entry* e : order) {
            const uint8_t* src = e->bytes.data();
            if (e->fill) {
                if (e->byteSize > bufferSize) {
                    buffer.reset();
                    buffer = std::make_unique_for_overwrite<uint8_t[]>(e->byteSize);
                    bufferSize = e->byteSize;
                }
                e->fill(buffer.get(), e->byteSize);
                src = buffer.get();
            }
            if (e->byteSize && std::fwrite(src, 1, e->byteSize, out) != e->byteSize)
                failWrite("cannot write tensor " + e->name);
        }
        if (std::fflush(out) != 0 || ::fsync(fileno(out)) != 0) failWrite("cannot flush the file");
        const int closed = std::fclose(out);
        out = nullptr;
        if (closed != 0) failWrite("cannot close the file");
    } catch (...) { // a write failed or a fill function threw: leave no partial file behind
        if (out) std::fclose(out);
        std::remove(tmp.c_str());
        throw;
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        throw SageError(path.string() + ": cannot rename " + tmp.filename().string() + " into place (" +
                        ec.message() + "); check the folder's permissions");
    }
}

} // namespace sage
