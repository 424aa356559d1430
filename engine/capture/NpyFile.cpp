#include "engine/capture/NpyFile.h"

#include "engine/core/SageError.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace sage {

static_assert(std::endian::native == std::endian::little, "the .npy writer assumes a little-endian host");

void NpyFile::write(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape)
{
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    int64_t count = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        dict += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
        count *= shape[i];
    }
    dict += "), }";
    // Magic (6) + version (2) + header length (2) + dict, padded with spaces and ended by '\n' to 64 bytes.
    const size_t unpadded = 10 + dict.size() + 1;
    dict.append((64 - unpadded % 64) % 64, ' ');
    dict += '\n';
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out)
        throw SageError(path.string() + ": cannot be opened for writing; check the folder exists and is writable");
    const char magic[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(magic, 8);
    const uint16_t len = uint16_t(dict.size());
    out.write(reinterpret_cast<const char*>(&len), 2);
    out.write(dict.data(), std::streamsize(dict.size()));
    out.write(reinterpret_cast<const char*>(data), std::streamsize(count * int64_t(sizeof(float))));
    if (!out) throw SageError(path.string() + ": write failed (disk full?)");
}

std::vector<float> NpyFile::read(const std::filesystem::path& path, std::vector<int64_t>* shapeOut)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SageError(path.string() + ": cannot be opened for reading");
    char magic[10];
    in.read(magic, 10);
    if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0 || magic[6] != 1)
        throw SageError(path.string() + ": not a version 1 .npy file");
    uint16_t len = 0;
    std::memcpy(&len, magic + 8, 2);
    std::string dict(len, '\0');
    in.read(dict.data(), len);
    if (!in) throw SageError(path.string() + ": truncated .npy header");
    if (dict.find("'descr': '<f4'") == std::string::npos || dict.find("'fortran_order': False") == std::string::npos)
        throw SageError(path.string() + ": expected a float32 little-endian C-order array ('<f4'), found header " +
                        dict);
    const size_t open = dict.find("'shape': (");
    const size_t close = dict.find(')', open);
    if (open == std::string::npos || close == std::string::npos)
        throw SageError(path.string() + ": .npy header has no shape");
    std::vector<int64_t> shape;
    std::stringstream ss(dict.substr(open + 10, close - open - 10));
    std::string item;
    int64_t count = 1;
    while (std::getline(ss, item, ','))
        if (item.find_first_not_of(' ') != std::string::npos) {
            shape.push_back(std::stoll(item));
            count *= shape.back();
        }
    std::vector<float> data(static_cast<size_t>(count));
    in.read(reinterpret_cast<char*>(data.data()), std::streamsize(count * int64_t(sizeof(float))));
    if (!in) throw SageError(path.string() + ": truncated .npy data");
    if (shapeOut) *shapeOut = shape;
    return data;
}

} // namespace sage
