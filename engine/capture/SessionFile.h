#pragma once

#include "engine/capture/ModelIdentity.h"
#include "engine/runtime/Sampler.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace sage {

class Trace;

// Everything about a run besides its trace (docs/session-format.md).
struct SessionMeta {
    ModelIdentity model;
    std::string modelFolder; // as given when captured (informational; the hashes identify the model)
    std::vector<int32_t> prompt;
    std::string promptText;  // empty when the prompt was given as ids
    SamplingParams sampling; // includes the seed
    int64_t maxNewTokens = 0;
    std::string policy;
    std::string extensionsJson = "{}"; // later results (IR sweep, ...) as a JSON object, kept verbatim
};

// A saved run: a ".sagetrace" file holding SessionMeta and the whole Trace, bit-exact (floats are stored as
// their bytes). Format version 1, described in docs/session-format.md. Writes are atomic: the file is written
// to a temporary name in the same folder, fsync'ed, then renamed over the target.
class SessionFile
{
public:
    static constexpr uint32_t kVersion = 1;

    static void save(const std::filesystem::path& path, const SessionMeta& meta, const Trace& trace);
    // Fills `trace` (which must be empty) and returns the metadata. Throws SageError naming the file and the
    // problem for a missing, truncated, corrupted (checksum) or newer-version file; never crashes on bad input.
    static SessionMeta open(const std::filesystem::path& path, Trace& trace);

    // The file's bytes as save() would write them (for tests and tools).
    static std::string serialize(const SessionMeta& meta, const Trace& trace);
    static SessionMeta deserialize(const std::string& bytes, const std::string& source, Trace& trace);
};

// Writes `bytes` to `path` atomically (temp file in the same folder + fsync + rename + fsync of the folder).
void writeFileAtomically(const std::filesystem::path& path, const std::string& bytes);

} // namespace sage
