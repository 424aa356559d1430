// Fuzzes the session-file reader (SessionFile::deserialize). The checksum would stop almost every mutation
// at the door, so by default the input is the payload and the harness wraps it in a valid header and
// checksum; an input starting with "SAGETRCE" is taken as a whole file, to fuzz the header checks too.
#include "FuzzSupport.h"

#include "engine/capture/ModelIdentity.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/core/SageError.h"

#include <cstring>

using namespace sage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string input(reinterpret_cast<const char*>(data), size);
    std::string file;
    if (input.rfind("SAGETRCE", 0) == 0) {
        file = input;
    } else {
        const uint32_t version = SessionFile::kVersion, reserved = 0;
        const uint64_t payload = input.size(), checksum = fnv1a64(input.data(), input.size());
        file.append("SAGETRCE", 8);
        file.append(reinterpret_cast<const char*>(&version), 4);
        file.append(reinterpret_cast<const char*>(&reserved), 4);
        file.append(reinterpret_cast<const char*>(&payload), 8);
        file += input;
        file.append(reinterpret_cast<const char*>(&checksum), 8);
    }
    try {
        Trace trace;
        const SessionMeta meta = SessionFile::deserialize(file, "fuzz.sagetrace", trace);
        uint64_t sum = meta.prompt.size() + meta.extensionsJson.size() + trace.bytes() + trace.tokens().size();
        sum += SessionFile::serialize(meta, trace).size(); // what opened must save again
        fuzz::consume(sum);
    } catch (const SageError&) {
    }
    return 0;
}
