#include "engine/capture/SessionFile.h"

#include "engine/capture/Trace.h"
#include "engine/core/SageError.h"
#include "engine/io/StrictJson.h"
#include "engine/runtime/Sampler.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unistd.h>

namespace sage {

namespace {

constexpr char kMagic[8] = {'S', 'A', 'G', 'E', 'T', 'R', 'C', 'E'};
constexpr size_t kHeader = 24; // magic, version, reserved, payload length

class Writer
{
public:
    std::string out;
    template <typename T> void put(T v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }
    template <typename T> void vec(const std::vector<T>& v)
    {
        put(uint32_t(v.size()));
        if (!v.empty()) out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
    }
    void str(const std::string& s)
    {
        put(uint64_t(s.size()));
        out += s;
    }
};

class Reader
{
public:
    Reader(const std::string& b, size_t begin, size_t end, const std::string& src)
        : m_b(b), m_pos(begin), m_end(end), m_src(src)
    {
    }
    template <typename T> T get()
    {
        need(sizeof(T), "a field");
        T v;
        std::memcpy(&v, m_b.data() + m_pos, sizeof v);
        m_pos += sizeof v;
        return v;
    }
    template <typename T> std::vector<T> vec()
    {
        const uint32_t n = get<uint32_t>();
        need(size_t(n) * sizeof(T), "an array");
        std::vector<T> v(n);
        if (n > 0) std::memcpy(v.data(), m_b.data() + m_pos, size_t(n) * sizeof(T));
        m_pos += size_t(n) * sizeof(T);
        return v;
    }
    std::string str()
    {
        const uint64_t n = get<uint64_t>();
        need(n, "a string");
        std::string s = m_b.substr(m_pos, size_t(n));
        m_pos += size_t(n);
        return s;
    }
    bool atEnd() const { return m_pos == m_end; }
    size_t remaining() const { return m_end - m_pos; }
    // A count read from the file may claim at most as many records as the remaining bytes can hold, so a
    // damaged count fails here instead of allocating gigabytes first.
    void requireRecords(uint64_t count, size_t minBytesEach, const char* what)
    {
        if (count > remaining() / minBytesEach)
            throw SageError(m_src + ": damaged session: " + std::to_string(count) + " " + what + " at byte " +
                            std::to_string(m_pos) + " cannot fit in the " + std::to_string(remaining()) +
                            " bytes left; the file cannot be read");
    }

private:
    void need(uint64_t n, const char* what)
    {
        if (n > m_end - m_pos)
            throw SageError(m_src + ": damaged session: " + what + " at byte " + std::to_string(m_pos) +
                            " runs past the end of the data; the file cannot be read");
    }
    const std::string& m_b;
    size_t m_pos, m_end;
    std::string m_src;
};

void writeStep(Writer& w, const StepRecord& s)
{
    w.put(s.position);
    w.put(s.token);
    w.put(uint8_t(s.generated));
    w.put(s.choice.token);
    w.put(s.choice.probability);
    w.put(s.choice.entropy);
    w.put(s.choice.margin);
    w.put(uint32_t(s.choice.alternatives.size()));
    for (const auto& [id, p] : s.choice.alternatives) {
        w.put(id);
        w.put(p);
    }
    w.put(uint32_t(s.layers.size()));
    for (const LayerRecord& r : s.layers) {
        w.put(r.loop);
        w.put(r.layer);
        w.put(r.residualNorm);
        w.vec(r.gate);
        w.vec(r.normGlobal);
        w.vec(r.normLocal);
        w.vec(r.divergence);
        w.vec(r.routerProbs);
        w.vec(r.experts);
        w.vec(r.expertWeights);
        w.put(r.streams);
        w.put(r.topK);
        w.vec(r.topKeys);
        w.vec(r.topProbs);
        w.vec(r.restMass);
        w.vec(r.entropy);
        w.put(uint32_t(r.fullRows.size()));
        for (const FullAttentionRow& f : r.fullRows) {
            w.put(f.head);
            w.put(f.stream);
            w.put(f.firstKey);
            w.vec(f.probs);
        }
    }
    w.put(uint32_t(s.lens.size()));
    for (const LensRecord& l : s.lens) {
        w.put(l.loop);
        w.put(l.layer);
        w.put(l.kl);
        w.vec(l.tokens);
        w.vec(l.probs);
    }
    w.vec(s.logits);
}

std::shared_ptr<StepRecord> readStep(Reader& r, const std::string& src)
{
    auto s = std::make_shared<StepRecord>();
    s->position = r.get<int64_t>();
    s->token = r.get<int32_t>();
    s->generated = r.get<uint8_t>() != 0;
    s->choice.token = r.get<int32_t>();
    s->choice.probability = r.get<float>();
    s->choice.entropy = r.get<float>();
    s->choice.margin = r.get<float>();
    const uint32_t na = r.get<uint32_t>();
    r.requireRecords(na, 8, "alternatives");
    for (uint32_t k = 0; k < na; ++k) {
        const int32_t id = r.get<int32_t>();
        s->choice.alternatives.push_back({id, r.get<float>()});
    }
    const uint32_t nl = r.get<uint32_t>();
    if (nl > 1u << 20) throw SageError(src + ": damaged session: a step claims " + std::to_string(nl) + " layers");
    r.requireRecords(nl, 60, "layer records"); // the smallest layer record: empty arrays only
    s->layers.resize(nl);
    for (LayerRecord& l : s->layers) {
        l.loop = r.get<int16_t>();
        l.layer = r.get<int16_t>();
        l.residualNorm = r.get<float>();
        l.gate = r.vec<float>();
        l.normGlobal = r.vec<float>();
        l.normLocal = r.vec<float>();
        l.divergence = r.vec<float>();
        l.routerProbs = r.vec<float>();
        l.experts = r.vec<int32_t>();
        l.expertWeights = r.vec<float>();
        l.streams = r.get<int16_t>();
        l.topK = r.get<int16_t>();
        l.topKeys = r.vec<int32_t>();
        l.topProbs = r.vec<float>();
        l.restMass = r.vec<float>();
        l.entropy = r.vec<float>();
        const uint32_t nf = r.get<uint32_t>();
        if (nf > 1u << 20) throw SageError(src + ": damaged session: a layer claims " + std::to_string(nf) + " rows");
        r.requireRecords(nf, 11, "attention rows");
        l.fullRows.resize(nf);
        for (FullAttentionRow& f : l.fullRows) {
            f.head = r.get<int16_t>();
            f.stream = r.get<uint8_t>();
            f.firstKey = r.get<int32_t>();
            f.probs = r.vec<float>();
        }
    }
    const uint32_t nlens = r.get<uint32_t>();
    if (nlens > 1u << 20)
        throw SageError(src + ": damaged session: a step claims " + std::to_string(nlens) + " lenses");
    r.requireRecords(nlens, 16, "lens records");
    s->lens.resize(nlens);
    for (LensRecord& l : s->lens) {
        l.loop = r.get<int16_t>();
        l.layer = r.get<int16_t>();
        l.kl = r.get<float>();
        l.tokens = r.vec<int32_t>();
        l.probs = r.vec<float>();
    }
    s->logits = r.vec<float>();
    return s;
}

nlohmann::json metaJson(const SessionMeta& m, const Trace& t)
{
    const TraceInfo& i = t.info();
    const SamplingParams& s = m.sampling;
    return {
        {"model",
         {{"config_fnv1a64", m.model.configHash}, {"weights_fnv1a64", m.model.weightHash}, {"folder", m.modelFolder}}},
        {"prompt", m.prompt},
        {"prompt_text", m.promptText},
        {"sampling", samplingJson(s)},
        {"max_new_tokens", m.maxNewTokens},
        {"policy", m.policy},
        {"trace",
         {{"origin", t.origin()},
          {"layers", i.layers},
          {"heads", i.heads},
          {"kv_heads", i.kvHeads},
          {"head_dim", i.headDim},
          {"hidden_size", i.hiddenSize},
          {"vocab_size", i.vocabSize},
          {"loops", i.loops},
          {"window", i.window},
          {"experts", i.experts},
          {"experts_per_tok", i.expertsPerTok},
          {"policy", i.policy},
          {"attention_top_k", i.attentionTopK},
          {"lens_top_k", i.lensTopK}}},
        {"extensions", nlohmann::json::parse(m.extensionsJson)}};
}

} // namespace

std::string SessionFile::serialize(const SessionMeta& meta, const Trace& trace)
{
    Writer w;
    w.str(metaJson(meta, trace).dump());
    const auto steps = trace.snapshot();
    w.put(uint64_t(steps.size()));
    for (const auto& s : steps) writeStep(w, *s);
    Writer file;
    file.out.append(kMagic, 8);
    file.put(kVersion);
    file.put(uint32_t(0));
    file.put(uint64_t(w.out.size()));
    file.out += w.out;
    file.put(fnv1a64(w.out.data(), w.out.size()));
    return std::move(file.out);
}

SessionMeta SessionFile::deserialize(const std::string& b, const std::string& src, Trace& trace)
{
    if (b.size() < 8 || std::memcmp(b.data(), kMagic, 8) != 0)
        throw SageError(src + ": not a SAGE session file (it does not start with SAGETRCE)");
    if (b.size() < kHeader)
        throw SageError(src + ": truncated session: " + std::to_string(b.size()) +
                        " bytes, shorter than the 24-byte header");
    uint32_t version = 0;
    uint64_t payload = 0;
    std::memcpy(&version, b.data() + 8, 4);
    std::memcpy(&payload, b.data() + 16, 8);
    if (version > kVersion)
        throw SageError(src + ": session format version " + std::to_string(version) +
                        " was written by a newer SAGE Workbench; this build reads versions up to " +
                        std::to_string(kVersion) + "; update the workbench to open it");
    if (version == 0) throw SageError(src + ": damaged session: format version 0 does not exist");
    if (payload > b.size() - kHeader || b.size() - kHeader - payload < 8)
        throw SageError(src + ": truncated session: the header announces " + std::to_string(payload) +
                        " bytes of data plus an 8-byte checksum, the file holds " + std::to_string(b.size() - kHeader) +
                        "; the file was cut short (interrupted copy?)");
    if (b.size() - kHeader - payload > 8)
        throw SageError(src + ": damaged session: " + std::to_string(b.size() - kHeader - payload - 8) +
                        " unexpected bytes after the checksum");
    uint64_t stored = 0;
    std::memcpy(&stored, b.data() + kHeader + payload, 8);
    if (fnv1a64(b.data() + kHeader, size_t(payload)) != stored)
        throw SageError(src + ": corrupted session: the checksum of the data does not match; the file was "
                              "modified or damaged on disk");
    if (trace.size() != 0) throw SageError("opening a session needs an empty trace");

    Reader r(b, kHeader, kHeader + size_t(payload), src);
    SessionMeta m;
    const std::string damaged = "the file cannot be read";
    // Nesting is bounded (the extensions object is kept verbatim, but printing it recurses).
    const nlohmann::json j = parseStrictJson(r.str(), src, "session metadata", damaged, 256);
    const auto bad = [&](const std::string& key, const std::string& expected, const nlohmann::json& v) {
        return SageError(src + ": damaged session: metadata field \"" + key + "\" is " + describeJson(v) +
                         ", expected " + expected + "; " + damaged);
    };
    // Every value is type- and range-checked before conversion: nlohmann's get<int>() of 1e300 or of a
    // string would be undefined behaviour or an unnamed exception.
    const auto field = [&](const nlohmann::json& obj, const std::string& path,
                           const char* key) -> const nlohmann::json& {
        if (!obj.is_object()) throw bad(path, "an object", obj);
        const auto it = obj.find(key);
        if (it == obj.end())
            throw SageError(src + ": damaged session: metadata has no field \"" + path + "." + key + "\"; " + damaged);
        return *it;
    };
    const auto integer = [&](const nlohmann::json& obj, const std::string& path, const char* key, int64_t lo,
                             int64_t hi) {
        const nlohmann::json& v = field(obj, path, key);
        const std::string expected = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
        if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi)))
            throw bad(path + "." + key, expected, v);
        const int64_t x = v.get<int64_t>();
        if (x < lo || x > hi) throw bad(path + "." + key, expected, v);
        return x;
    };
    const auto number = [&](const nlohmann::json& obj, const std::string& path, const char* key) {
        const nlohmann::json& v = field(obj, path, key);
        if (!v.is_number()) throw bad(path + "." + key, "a number", v);
        return v.get<double>();
    };
    const auto text = [&](const nlohmann::json& obj, const std::string& path, const char* key) {
        const nlohmann::json& v = field(obj, path, key);
        if (!v.is_string()) throw bad(path + "." + key, "a string", v);
        return v.get<std::string>();
    };
    constexpr int64_t kMaxSize = int64_t(1) << 31; // model sizes, top-k values
    constexpr int64_t kMaxPosition = int64_t(1) << 40;
    const nlohmann::json& model = field(j, "", "model");
    m.model.configHash = text(model, "model", "config_fnv1a64");
    m.model.weightHash = text(model, "model", "weights_fnv1a64");
    m.modelFolder = text(model, "model", "folder");
    const nlohmann::json& prompt = field(j, "", "prompt");
    if (!prompt.is_array()) throw bad("prompt", "an array of token ids", prompt);
    for (const nlohmann::json& id : prompt) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= kMaxSize)
            throw bad("prompt", "an array of token ids", prompt);
        m.prompt.push_back(int32_t(id.get<int64_t>()));
    }
    m.promptText = text(j, "", "prompt_text");
    const nlohmann::json& s = field(j, "", "sampling");
    m.sampling.temperature = number(s, "sampling", "temperature");
    m.sampling.topK = integer(s, "sampling", "top_k", 0, kMaxSize);
    m.sampling.topP = number(s, "sampling", "top_p");
    m.sampling.minP = number(s, "sampling", "min_p");
    m.sampling.repetitionPenalty = number(s, "sampling", "repetition_penalty");
    const nlohmann::json& seed = field(s, "sampling", "seed");
    if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<int64_t>() >= 0))
        throw bad("sampling.seed", "a non-negative integer", seed);
    m.sampling.seed = seed.get<uint64_t>();
    m.maxNewTokens = integer(j, "", "max_new_tokens", 0, kMaxPosition);
    m.policy = text(j, "", "policy");
    m.extensionsJson = field(j, "", "extensions").dump();
    const nlohmann::json& t = field(j, "", "trace");
    TraceInfo info;
    info.layers = integer(t, "trace", "layers", 0, kMaxSize);
    info.heads = integer(t, "trace", "heads", 0, kMaxSize);
    info.kvHeads = integer(t, "trace", "kv_heads", 0, kMaxSize);
    info.headDim = integer(t, "trace", "head_dim", 0, kMaxSize);
    info.hiddenSize = integer(t, "trace", "hidden_size", 0, kMaxSize);
    info.vocabSize = integer(t, "trace", "vocab_size", 0, kMaxSize);
    info.loops = integer(t, "trace", "loops", 0, kMaxSize);
    info.window = integer(t, "trace", "window", 0, kMaxSize);
    info.experts = integer(t, "trace", "experts", 0, kMaxSize);
    info.expertsPerTok = integer(t, "trace", "experts_per_tok", 0, kMaxSize);
    info.policy = text(t, "trace", "policy");
    info.attentionTopK = int(integer(t, "trace", "attention_top_k", 0, kMaxSize - 1));
    info.lensTopK = int(integer(t, "trace", "lens_top_k", 0, kMaxSize - 1));
    trace.setInfo(info);
    trace.setOrigin(integer(t, "trace", "origin", 0, kMaxPosition));
    const uint64_t n = r.get<uint64_t>();
    std::vector<Trace::StepPtr> steps;
    for (uint64_t k = 0; k < n; ++k) {
        steps.push_back(readStep(r, src));
        if (steps.back()->position != trace.origin() + int64_t(k))
            throw SageError(src + ": damaged session: step " + std::to_string(k) + " has position " +
                            std::to_string(steps.back()->position));
    }
    if (!r.atEnd()) throw SageError(src + ": damaged session: unexpected bytes after the last step");
    trace.append(std::move(steps));
    return m;
}

void SessionFile::save(const std::filesystem::path& path, const SessionMeta& meta, const Trace& trace)
{
    writeFileAtomically(path, serialize(meta, trace));
}

SessionMeta SessionFile::open(const std::filesystem::path& path, Trace& trace)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw SageError(path.string() + ": cannot be opened for reading");
    std::stringstream ss;
    ss << in.rdbuf();
    return deserialize(ss.str(), path.string(), trace);
}

namespace {

// Temporary files ".<name>.tmp-<pid>-<random>" left by a writer that was killed mid-save (SIGKILL, power
// loss) are never renamed; each may be as large as the session. Remove those whose process is gone, so
// repeated crashes cannot fill the disk. Files of live processes (a concurrent save) are left alone.
void removeStaleTemporaries(const std::filesystem::path& dir, const std::string& fileName)
{
    const std::string prefix = "." + fileName + ".tmp-";
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.rfind(prefix, 0) != 0) continue;
        const size_t dash = name.find('-', prefix.size());
        if (dash == std::string::npos) continue;
        char* stop = nullptr;
        const long pid = std::strtol(name.c_str() + prefix.size(), &stop, 10);
        if (stop != name.c_str() + dash || pid <= 0 || pid == long(getpid())) continue;
        if (::kill(pid_t(pid), 0) != 0 && errno == ESRCH) {
            std::error_code removeError;
            std::filesystem::remove(it->path(), removeError); // best effort: another writer may race us
        }
    }
}

} // namespace

void writeFileAtomically(const std::filesystem::path& path, const std::string& bytes)
{
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    removeStaleTemporaries(dir, path.filename().string());
    std::random_device rd;
    std::string tmpName = ".";
    tmpName.append(path.filename().string());
    tmpName.append(".tmp-");
    tmpName.append(std::to_string(getpid()));
    tmpName.push_back('-');
    tmpName.append(std::to_string(rd()));
    const std::filesystem::path tmp = dir / tmpName;
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        throw SageError(path.string() + ": cannot write (" + std::strerror(errno) +
                        "); check that the folder exists and is writable");
    size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            const std::string err = std::strerror(errno);
            ::close(fd);
            ::unlink(tmp.c_str());
            throw SageError(path.string() + ": write failed (" + err + "); the previous file is unchanged");
        }
        done += size_t(w);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(tmp.c_str());
        throw SageError(path.string() + ": could not flush to disk; the previous file is unchanged");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string err = std::strerror(errno);
        ::unlink(tmp.c_str());
        throw SageError(path.string() + ": could not replace the file (" + err + ")");
    }
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd); // make the rename itself durable
        ::close(dfd);
    }
}

} // namespace sage
