// Hostile inputs and resource limits: checkpoints whose offsets, shapes or values are wrong, a broken
// tokenizer.model, models larger than the available memory, prompts longer than the context, capture
// policies over the memory budget, and one regression test per problem the fuzz targets (tests/fuzz) found.
// Each case asserts one clear SageError naming the file, the field or tensor, and the fix.
#include "GoldenCase.h"

#include "engine/capture/ModelIdentity.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/core/SageError.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/io/SafeTensorsFile.h"
#include "engine/io/SafeTensorsWriter.h"
#include "engine/io/TensorStore.h"
#include "engine/model/MemoryCheck.h"
#include "engine/model/Model.h"
#include "engine/model/ModelConfig.h"
#include "engine/model/WeightScan.h"
#include "engine/runtime/Generator.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/tokenizer/Tokenizer.h"
#include "engine/tokenizer/TokenizerConfig.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

using namespace sage;
namespace fs = std::filesystem;

namespace {

QString errorOf(const std::function<void()>& f)
{
    try {
        f();
    } catch (const SageError& e) {
        return QString::fromStdString(e.what());
    } catch (const std::exception& e) {
        return QStringLiteral("UNEXPECTED non-SageError exception: ") + e.what();
    }
    return {};
}

#define VERIFY_CONTAINS(message, fragment)                                                                             \
    QVERIFY2((message).contains(fragment), qPrintable(QStringLiteral("expected \"%1\" in: %2").arg(fragment, message)))

void writeText(const fs::path& path, const std::string& text)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

std::string readText(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A safetensors file from a header given as JSON text and `dataBytes` bytes of data.
std::string safetensorsBytes(const std::string& header, size_t dataBytes)
{
    std::string out(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(out.data(), &n, 8);
    return out + header + std::string(dataBytes, '\x01');
}

// Copies a golden model folder (without the reference outputs).
fs::path copyModel(const QTemporaryDir& tmp, const QString& name)
{
    const fs::path src = (goldenRoot() + "/" + name).toStdString();
    const fs::path dst = fs::path(tmp.path().toStdString()) / name.toStdString();
    fs::create_directories(dst);
    for (const auto& e : fs::directory_iterator(src))
        if (e.path().filename() != "golden.safetensors" && e.path().filename() != "golden.json")
            fs::copy(e.path(), dst / e.path().filename());
    return dst;
}

// Overwrites element `index` of tensor `name` in dir/model.safetensors with the bit pattern `bits` (the
// tensor's own dtype width).
void patchElement(const fs::path& dir, const std::string& name, int64_t index, uint32_t bits)
{
    const fs::path file = dir / "model.safetensors";
    uint64_t offset = 0;
    size_t width = 0;
    {
        const auto st = SafeTensorsFile::open(file);
        const TensorInfo* t = st->find(name);
        QVERIFY(t);
        width = dtypeSize(t->dtype);
        offset = uint64_t(static_cast<const uint8_t*>(t->data) - st->mappedData()) + uint64_t(index) * width;
    }
    std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(std::streamoff(offset));
    f.write(reinterpret_cast<const char*>(&bits), std::streamsize(width)); // little-endian low bytes
    QVERIFY(f.good());
}

uint32_t nanBits(DType t)
{
    return t == DType::F32 ? 0x7FC00000u : t == DType::BF16 ? 0x7FC0u : 0x7E00u;
}

uint32_t infBits(DType t)
{
    return t == DType::F32 ? 0xFF800000u : t == DType::BF16 ? 0xFF80u : 0xFC00u; // -Inf
}

// A session file around `payload` with a valid header and checksum (what a buggy writer would produce).
std::string wrapSession(const std::string& payload)
{
    std::string file("SAGETRCE", 8);
    const uint32_t version = SessionFile::kVersion, reserved = 0;
    const uint64_t size = payload.size(), sum = fnv1a64(payload.data(), payload.size());
    file.append(reinterpret_cast<const char*>(&version), 4);
    file.append(reinterpret_cast<const char*>(&reserved), 4);
    file.append(reinterpret_cast<const char*>(&size), 8);
    file += payload;
    file.append(reinterpret_cast<const char*>(&sum), 8);
    return file;
}

// The metadata JSON of a valid empty session, to edit.
nlohmann::json validSessionMeta()
{
    Trace t;
    const std::string file = SessionFile::serialize(SessionMeta{}, t);
    uint64_t len = 0;
    std::memcpy(&len, file.data() + 24, 8);
    return nlohmann::json::parse(file.substr(32, size_t(len)));
}

// Payload = metadata string + step count + raw step bytes.
std::string sessionPayload(const std::string& metaText, uint64_t steps, const std::string& stepBytes)
{
    std::string p(8, '\0');
    const uint64_t len = metaText.size();
    std::memcpy(p.data(), &len, 8);
    p += metaText;
    p.append(reinterpret_cast<const char*>(&steps), 8);
    return p + stepBytes;
}

template <typename T> void put(std::string& out, T v)
{
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

QString sessionError(const std::string& file)
{
    return errorOf([&] {
        Trace t;
        SessionFile::deserialize(file, "damaged.sagetrace", t);
    });
}

struct ScopedEnv {
    QByteArray name;
    ScopedEnv(const char* n, const QByteArray& value) : name(n) { qputenv(n, value); }
    ~ScopedEnv() { qunsetenv(name.constData()); }
};

struct CliResult {
    int exitCode = -1;
    QString out, err;
};

CliResult runCli(const QStringList& args, const QProcessEnvironment& env = QProcessEnvironment::systemEnvironment())
{
    QProcess p;
    p.setProcessEnvironment(env);
    p.start(QStringLiteral(SAGE_CLI_PATH), args);
    if (!p.waitForFinished(120000)) return {};
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

} // namespace

class TestHardening : public QObject
{
    Q_OBJECT

private slots:
    // --- Hostile checkpoints -------------------------------------------------------------------------
    void offsetsOutsideTheFile()
    {
        QTemporaryDir tmp;
        const fs::path file = fs::path(tmp.path().toStdString()) / "model.safetensors";
        writeText(file, safetensorsBytes(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[16,32]}})", 16));
        const QString msg = errorOf([&] { SafeTensorsFile::open(file); });
        VERIFY_CONTAINS(msg, QString::fromStdString(file.string()));
        VERIFY_CONTAINS(msg, "tensor w: data_offsets [16, 32] end past the data section, which holds 16 bytes");
        VERIFY_CONTAINS(msg, "re-download or re-export");
        // An offset near 2^64 must not wrap around into the file.
        writeText(file,
                  safetensorsBytes(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,0]}})", 8));
        VERIFY_CONTAINS(errorOf([&] { SafeTensorsFile::open(file); }), "have begin > end");
    }

    void overlappingTensors()
    {
        QTemporaryDir tmp;
        const fs::path file = fs::path(tmp.path().toStdString()) / "model.safetensors";
        writeText(file, safetensorsBytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                         R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                                         16));
        const QString msg = errorOf([&] { SafeTensorsFile::open(file); });
        VERIFY_CONTAINS(msg, "tensors a [0, 16] and b [8, 16] overlap in the data section");
    }

    void shapesThatOverflowSizes_data()
    {
        QTest::addColumn<QString>("header");
        QTest::addColumn<QString>("expected");
        // int64: 2^32 * 2^32 elements.
        QTest::newRow("element count overflows int64")
            << R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"
            << "has more elements than 64-bit sizes can hold";
        // size_t: 2^62 elements fit int64, their 4-byte size does not.
        QTest::newRow("byte size overflows size_t")
            << R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})"
            << "has more elements than 64-bit sizes can hold";
        // A zero dimension makes the count 0, but the other dimensions still must not overflow.
        QTest::newRow("zero does not hide an overflow")
            << R"({"w":{"dtype":"BF16","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})"
            << "has more elements than 64-bit sizes can hold";
        QTest::newRow("dimension beyond int64")
            << R"({"w":{"dtype":"F16","shape":[18446744073709551615],"data_offsets":[0,0]}})"
            << "does not fit a signed 64-bit integer";
    }
    void shapesThatOverflowSizes()
    {
        QFETCH(QString, header);
        QFETCH(QString, expected);
        QTemporaryDir tmp;
        const fs::path file = fs::path(tmp.path().toStdString()) / "model.safetensors";
        writeText(file, safetensorsBytes(header.toStdString(), 8));
        const QString msg = errorOf([&] { SafeTensorsFile::open(file); });
        VERIFY_CONTAINS(msg, "tensor w");
        VERIFY_CONTAINS(msg, expected);
    }

    void configSizesThatOverflow_data()
    {
        QTest::addColumn<QString>("key");
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("expected");
        // Found by review while writing the model_config fuzz target: each made Model::load build a tensor
        // list of billions of entries (out of memory) or overflow int64 in H * hd or the parameter count.
        QTest::newRow("layers") << "num_hidden_layers"
                                << "1000000000"
                                << "must be <= 4096";
        QTest::newRow("hidden beyond int64") << "hidden_size"
                                             << "18446744073709551615"
                                             << "must be <= 2147483647";
        QTest::newRow("experts x layers") << "num_experts"
                                          << "4096"
                                          << "weight tensors, more than the 1000000";
        QTest::newRow("loops") << "loop_num"
                               << "100000"
                               << "must be <= 64";
    }
    void configSizesThatOverflow()
    {
        QFETCH(QString, key);
        QFETCH(QString, value);
        QFETCH(QString, expected);
        nlohmann::json j = {{"model_type", "llama"},     {"vocab_size", 32},          {"hidden_size", 8},
                            {"num_hidden_layers", 4000}, {"num_attention_heads", 2},  {"intermediate_size", 16},
                            {"num_experts_per_tok", 1},  {"moe_intermediate_size", 8}};
        j[key.toStdString()] = nlohmann::json::parse(value.toStdString());
        const QString msg = errorOf([&] { ModelConfig::fromJson(j, "config.json"); });
        VERIFY_CONTAINS(msg, "config.json: field \"");
        VERIFY_CONTAINS(msg, expected);
    }

    void parameterCountOverflowIsRefused()
    {
        // Every size within its own bound, the total beyond int64.
        const nlohmann::json j = {{"vocab_size", 2147483647},        {"hidden_size", 2147483647},
                                  {"num_hidden_layers", 4096},       {"num_attention_heads", 1},
                                  {"intermediate_size", 2147483647}, {"head_dim", 2}};
        const QString msg = errorOf([&] { ModelConfig::fromJson(j, "config.json"); });
        VERIFY_CONTAINS(msg, "more parameters than a 64-bit count holds");
    }

    void nonFiniteWeights_data()
    {
        QTest::addColumn<QString>("model");
        QTest::addColumn<bool>("nan");
        QTest::newRow("F32 NaN") << "llama_dense" << true;
        QTest::newRow("F32 -Inf") << "llama_dense" << false;
        QTest::newRow("BF16 NaN") << "loop2_bf16" << true;
        QTest::newRow("F16 -Inf") << "loop2_f16" << false;
    }
    void nonFiniteWeights()
    {
        QFETCH(QString, model);
        QFETCH(bool, nan);
        QTemporaryDir tmp;
        const fs::path dir = copyModel(tmp, model);
        const std::string tensor = "model.layers.1.mlp.down_proj.weight";
        DType dtype;
        {
            const auto st = SafeTensorsFile::open(dir / "model.safetensors");
            dtype = st->find(tensor)->dtype;
        }
        patchElement(dir, tensor, 37, nan ? nanBits(dtype) : infBits(dtype));
        patchElement(dir, tensor, 41, nanBits(dtype));
        const QString msg = errorOf([&] { Model::load(dir); });
        VERIFY_CONTAINS(msg, QString::fromStdString((dir / "model.safetensors").string()));
        VERIFY_CONTAINS(msg, QString::fromStdString("tensor " + tensor + " holds " + (nan ? "NaN" : "an infinity") +
                                                    " at element 37 (2 non-finite values in this tensor)"));
        VERIFY_CONTAINS(msg, "re-download or re-export");
        VERIFY_CONTAINS(msg, "--skip-weight-check");

        // The scan itself, on any thread count, reports the same first element.
        const auto store = TensorStore::openFolder(dir);
        for (int threads : {1, 3}) {
            cpu::ThreadPool pool(threads);
            const auto bad = findNonFiniteWeight(*store, pool);
            QVERIFY(bad);
            QCOMPARE(bad->tensor, tensor);
            QCOMPARE(bad->index, int64_t(37));
            QCOMPARE(bad->count, int64_t(2));
            QCOMPARE(bad->isNan, nan);
            QCOMPARE(bad->tensorsWithNonFinite, int64_t(1));
        }

        // Skipping the check is explicit, and then the model loads (for inspection).
        LoadOptions skip;
        skip.checkWeights = false;
        QVERIFY(Model::load(dir, skip) != nullptr);
    }

    void finiteModelsPassTheScan()
    {
        cpu::ThreadPool pool(2);
        for (const QString& name : goldenCaseNames()) {
            const auto store = TensorStore::openFolder((goldenRoot() + "/" + name).toStdString());
            QVERIFY2(!findNonFiniteWeight(*store, pool), qPrintable(name));
        }
        const auto bundled = TensorStore::openFolder(fs::path(SAGE_SOURCE_DIR) / "resources/models/sage-mini-coder");
        QVERIFY(!findNonFiniteWeight(*bundled, pool));
    }

    void nonFiniteScanFindsTheFirstOfManyChunks()
    {
        // A tensor larger than one 4 MB scan chunk, with bad values in two chunks: the lowest index wins.
        QTemporaryDir tmp;
        const fs::path file = fs::path(tmp.path().toStdString()) / "model.safetensors";
        std::vector<float> big(3'000'000, 0.5f); // [3000000] = 12 MB, three chunks
        big[2'500'000] = std::numeric_limits<float>::infinity();
        big[1'200'000] = std::numeric_limits<float>::quiet_NaN();
        SafeTensorsWriter w;
        w.addF32("big", {3'000'000}, big, DType::F32);
        w.addF32("fine", {4}, {1, 2, 3, 4}, DType::BF16);
        w.write(file);
        const auto store = TensorStore::openFile(file);
        cpu::ThreadPool pool(2);
        const auto bad = findNonFiniteWeight(*store, pool);
        QVERIFY(bad);
        QCOMPARE(bad->tensor, std::string("big"));
        QCOMPARE(bad->index, int64_t(1'200'000));
        QCOMPARE(bad->count, int64_t(2));
        QVERIFY(bad->isNan);
    }

    void brokenTokenizerModel_data()
    {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<QString>("expected");
        QTest::newRow("text, not a model")
            << QByteArray("this is not a sentencepiece model\n") << "not a valid SentencePiece model";
        QTest::newRow("empty") << QByteArray() << "not a valid SentencePiece model";
        QFile f(QString(SAGE_TEST_DATA_DIR) + "/tokenizer/tokenizer.model");
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QByteArray good = f.readAll();
        QTest::newRow("truncated") << good.left(good.size() / 2) << "not a valid SentencePiece model";
    }
    void brokenTokenizerModel()
    {
        QFETCH(QByteArray, bytes);
        QFETCH(QString, expected);
        QTemporaryDir tmp;
        const fs::path dir = copyModel(tmp, "llama_dense");
        writeText(dir / "tokenizer.model", bytes.toStdString());
        const QString msg = errorOf([&] { Model::load(dir); });
        VERIFY_CONTAINS(msg, QString::fromStdString((dir / "tokenizer.model").string()));
        VERIFY_CONTAINS(msg, expected);
        VERIFY_CONTAINS(msg, "Replace it with the tokenizer.model of the checkpoint");
    }

    // --- Resource limits -----------------------------------------------------------------------------
    void modelLargerThanMemoryIsRefused()
    {
        const fs::path dir = (goldenRoot() + "/llama_dense").toStdString();
        const uint64_t weights = TensorStore::openFolder(dir)->totalBytes();
        {
            const ScopedEnv env("SAGE_AVAILABLE_MEMORY", QByteArray::number(qulonglong(weights - 1)));
            const QString msg = errorOf([&] { Model::load(dir); });
            VERIFY_CONTAINS(msg, QString::fromStdString(dir.string()));
            VERIFY_CONTAINS(msg, QString("the weights need %1 (%2 bytes)")
                                     .arg(QString::fromStdString(formatByteSize(double(weights))))
                                     .arg(weights));
            VERIFY_CONTAINS(msg, QString("(%1 bytes) is available (SAGE_AVAILABLE_MEMORY)").arg(weights - 1));
            VERIFY_CONTAINS(msg, "LoadOptions::checkMemory = false");
            LoadOptions allow;
            allow.checkMemory = false;
            QVERIFY(Model::load(dir, allow) != nullptr);
        }
        const ScopedEnv env("SAGE_AVAILABLE_MEMORY", QByteArray::number(qulonglong(weights)));
        QVERIFY(Model::load(dir) != nullptr); // exactly enough is enough
        // What is left for a capture's trace: the rest, or 1 byte when nothing is (a budget, never "none").
        QCOMPARE(memoryLeftAfter(weights - 10)->bytes, uint64_t(10));
        QCOMPARE(memoryLeftAfter(weights)->bytes, uint64_t(1));
        QCOMPARE(memoryLeftAfter(weights + 10)->bytes, uint64_t(1));
        QCOMPARE(memoryLeftAfter(0)->source, std::string("SAGE_AVAILABLE_MEMORY"));
    }

    void cliRefusesModelLargerThanMemory()
    {
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("SAGE_AVAILABLE_MEMORY", "1000");
        const QString model = goldenRoot() + "/llama_dense";
        CliResult r = runCli({"info", "--model", model}, env);
        QCOMPARE(r.exitCode, 1);
        VERIFY_CONTAINS(r.err, "sage-cli: error: ");
        VERIFY_CONTAINS(r.err, "(1000 bytes) is available (SAGE_AVAILABLE_MEMORY)");
        VERIFY_CONTAINS(r.err, "--allow-low-memory");
        r = runCli({"info", "--model", model, "--allow-low-memory"}, env);
        QCOMPARE(r.exitCode, 0);
        VERIFY_CONTAINS(r.out, "Architecture");
    }

    void promptLongerThanContext()
    {
        QTemporaryDir tmp;
        const fs::path dir = copyModel(tmp, "llama_dense");
        nlohmann::json j = nlohmann::json::parse(readText(dir / "config.json"));
        j["max_position_embeddings"] = 8;
        writeText(dir / "config.json", j.dump());
        const auto model = Model::load(dir);
        cpu::ThreadPool pool(1);
        InferenceSession session(*model, pool);
        GenerationRequest req;
        req.prompt = std::vector<int32_t>(9, 1);
        req.maxNewTokens = 4;
        const QString msg = errorOf([&] { generate(session, nullptr, req, {}); });
        VERIFY_CONTAINS(msg, "the prompt has 9 tokens but the context holds 8; shorten the prompt");
        QCOMPARE(session.position(), int64_t(0)); // refused before any work
        std::vector<float> logits;
        const QString direct = errorOf([&] { session.forward(req.prompt, false, logits); });
        VERIFY_CONTAINS(direct, "sequence of 9 tokens exceeds the context of 8 tokens");
    }

    void cliRefusesPromptLongerThanContext()
    {
        QTemporaryDir tmp;
        const fs::path dir = copyModel(tmp, "llama_dense");
        nlohmann::json j = nlohmann::json::parse(readText(dir / "config.json"));
        j["max_position_embeddings"] = 8;
        writeText(dir / "config.json", j.dump());
        const QString model = QString::fromStdString(dir.string());
        CliResult r = runCli({"generate", "--model", model, "--tokens", "1,2,3,4,5,6,7,8,9", "--max-tokens", "2"});
        QCOMPARE(r.exitCode, 1);
        VERIFY_CONTAINS(r.err, "the prompt has 9 tokens but the context holds 8");
        r = runCli({"score", "--model", model, "--tokens", "1,2,3,4,5,6,7,8,9"});
        QCOMPARE(r.exitCode, 1);
        VERIFY_CONTAINS(r.err, "sequence of 9 tokens exceeds the context of 8 tokens");
        r = runCli({"capture", "--model", model, "--tokens", "1,2,3,4,5,6,7,8,9", "--out",
                    QString::fromStdString((fs::path(tmp.path().toStdString()) / "c").string())});
        QCOMPARE(r.exitCode, 1);
        VERIFY_CONTAINS(r.err, "sequence of 9 tokens exceeds the context of 8 tokens");
    }

    void capturePolicyOverBudget()
    {
        const QString model = goldenRoot() + "/loop2_dense_w4";
        QTemporaryDir tmp;
        const QString out = tmp.path() + "/c";
        CliResult r = runCli(
            {"capture", "--model", model, "--tokens", "1,2,3", "--policy", "full", "--budget", "1000", "--out", out});
        QCOMPARE(r.exitCode, 1);
        VERIFY_CONTAINS(r.err, "capture policy 'full' needs about ");
        VERIFY_CONTAINS(r.err, "bytes for 4 tokens (");
        VERIFY_CONTAINS(r.err, "over the memory budget of 1000 bytes; choose a smaller preset");
        QVERIFY(!QFileInfo::exists(out));

        // Without --budget the budget is the memory left after the weights.
        const uint64_t weights = TensorStore::openFolder(model.toStdString())->totalBytes();
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("SAGE_AVAILABLE_MEMORY", QString::number(weights + 500));
        r = runCli({"capture", "--model", model, "--tokens", "1,2,3", "--policy", "full", "--out", out}, env);
        QCOMPARE(r.exitCode, 1);
        VERIFY_CONTAINS(r.err, "over the memory budget of 500 bytes");
        VERIFY_CONTAINS(r.err, "without --budget, the budget is the memory available after the weights: "
                               "SAGE_AVAILABLE_MEMORY");
        // The same run with enough memory succeeds.
        env.insert("SAGE_AVAILABLE_MEMORY", QString::number(weights + (uint64_t(1) << 30)));
        r = runCli({"capture", "--model", model, "--tokens", "1,2,3", "--policy", "full", "--out", out}, env);
        QCOMPARE(r.exitCode, 0);
    }

    // --- Regressions from fuzzing (tests/fuzz) -------------------------------------------------------
    void fuzzAddedTokenIdFarBeyondTheVocabulary()
    {
        // fuzz_tokenizer_config, timeout: added_tokens.json {"<|>": 300300315} sized the per-id tables for
        // 300 million ids (gigabytes, then killed). Now one message names the token, the id and the fix.
        QTemporaryDir tmp;
        const fs::path dir = tmp.path().toStdString();
        fs::copy_file(fs::path(SAGE_TEST_DATA_DIR) / "tokenizer" / "tokenizer.model", dir / "tokenizer.model");
        writeText(dir / "added_tokens.json", R"({"<|>": 300300315})");
        const QString msg = errorOf([&] { Tokenizer::load(dir); });
        VERIFY_CONTAINS(msg, "added token \"<|>\" has id 300300315, more than 1048576 past the");
        VERIFY_CONTAINS(msg, "Fix the id in added_tokens_decoder or added_tokens.json");
        // Ids just past the pieces (the normal case) still load.
        writeText(dir / "added_tokens.json", R"({"<|extra|>": 1000})");
        const auto tok = Tokenizer::load(dir);
        QVERIFY(tok);
        QCOMPARE(tok->vocabSize(), 1001);
    }

    void fuzzNumberBeyondDoubleInTokenizerConfig()
    {
        // fuzz_tokenizer_config, crash: a number too large for a double made nlohmann throw out_of_range,
        // which only parse errors were caught for, so the exception escaped the engine.
        QTemporaryDir tmp;
        const fs::path dir = tmp.path().toStdString();
        writeText(dir / "tokenizer_config.json", R"({"legacy": true, "model_max_length": 5e+3022})");
        const QString msg = errorOf([&] { TokenizerConfig::load(dir); });
        VERIFY_CONTAINS(msg, QString::fromStdString((dir / "tokenizer_config.json").string()) + ": invalid JSON (");
        VERIFY_CONTAINS(msg, "number overflow");
        VERIFY_CONTAINS(msg, "Repair the file or delete it to use the defaults");
    }

    void fuzzSentencePieceThrowsOnANulInAPiece()
    {
        // fuzz_sentencepiece, crash: 40 bytes whose second piece is "\0s>". sentencepiece accepts the protobuf,
        // then its trie builder throws a C++ exception (not a status) out of LoadFromSerializedProto.
        const QByteArray bytes =
            QByteArray::fromHex("0a0e0a053c756e6b3e150000000018020a0c0a0300733e1500000000183c357834413e1500000a0f");
        QTemporaryDir tmp;
        const fs::path dir = tmp.path().toStdString();
        writeText(dir / "tokenizer.model", bytes.toStdString());
        const QString msg = errorOf([&] { Tokenizer::load(dir); });
        VERIFY_CONTAINS(msg, QString::fromStdString((dir / "tokenizer.model").string()) +
                                 ": not a valid SentencePiece model (sentencepiece: ");
        VERIFY_CONTAINS(msg, "Replace it with the tokenizer.model of the checkpoint");
    }

    void deeplyNestedJsonIsRefused()
    {
        // Error messages print the offending value recursively; nesting must be bounded before that.
        QTemporaryDir tmp;
        const fs::path dir = tmp.path().toStdString();
        const std::string deep = std::string(100000, '[') + std::string(100000, ']');
        writeText(dir / "tokenizer_config.json", R"({"bos_token": )" + deep + "}");
        VERIFY_CONTAINS(errorOf([&] { TokenizerConfig::load(dir); }), "nested deeper than 32 levels");
        writeText(dir / "config.json", R"({"mch_heads": )" + deep + "}");
        VERIFY_CONTAINS(errorOf([&] { ModelConfig::load(dir); }), "deeper than 16 levels");
        writeText(dir / "generation_config.json", R"({"eos_token_id": )" + deep + "}");
        VERIFY_CONTAINS(errorOf([&] { GenerationConfig::load(dir); }), "deeper than 16 levels");
    }

    void sessionMetadataValuesAreChecked_data()
    {
        QTest::addColumn<QString>("pointer");
        QTest::addColumn<QString>("value");
        QTest::addColumn<QString>("expected");
        // Each was undefined behaviour (float-to-int conversion, signed overflow) or an uncaught exception.
        QTest::newRow("float token id") << "/prompt/0"
                                        << "1e300"
                                        << "metadata field \"prompt\"";
        QTest::newRow("negative token id") << "/prompt/0"
                                           << "-5"
                                           << "metadata field \"prompt\"";
        QTest::newRow("float layer count") << "/trace/layers"
                                           << "1e300"
                                           << "field \"trace.layers\"";
        QTest::newRow("huge origin") << "/trace/origin"
                                     << "9223372036854775807"
                                     << "field \"trace.origin\"";
        QTest::newRow("string top-k") << "/sampling/top_k"
                                      << "\"5\""
                                      << "field \"sampling.top_k\"";
        QTest::newRow("negative seed") << "/sampling/seed"
                                       << "-1"
                                       << "field \"sampling.seed\"";
        QTest::newRow("float seed") << "/sampling/seed"
                                    << "1e300"
                                    << "field \"sampling.seed\"";
        QTest::newRow("trace not an object") << "/trace"
                                             << "[1]"
                                             << "field \"trace\"";
    }
    void sessionMetadataValuesAreChecked()
    {
        QFETCH(QString, pointer);
        QFETCH(QString, value);
        QFETCH(QString, expected);
        nlohmann::json meta = validSessionMeta();
        meta["prompt"] = {1, 2};
        meta[nlohmann::json::json_pointer(pointer.toStdString())] = nlohmann::json::parse(value.toStdString());
        const QString msg = sessionError(wrapSession(sessionPayload(meta.dump(), 0, "")));
        VERIFY_CONTAINS(msg, "damaged.sagetrace: damaged session: metadata ");
        VERIFY_CONTAINS(msg, expected);
    }

    void sessionCountsAreBoundedByTheData()
    {
        // A 60-byte step claiming 2^20 layers allocated ~400 MB before failing; now the count is checked
        // against the bytes left first.
        std::string step;
        put<int64_t>(step, 0);         // position
        put<int32_t>(step, 1);         // token
        put<uint8_t>(step, 0);         // generated
        put<int32_t>(step, 1);         // choice.token
        put<float>(step, 1.0f);        // probability
        put<float>(step, 0.0f);        // entropy
        put<float>(step, 0.0f);        // margin
        put<uint32_t>(step, 0);        // alternatives
        put<uint32_t>(step, 1u << 20); // layers
        step += std::string(40, '\0');
        const QString msg = sessionError(wrapSession(sessionPayload(validSessionMeta().dump(), 1, step)));
        VERIFY_CONTAINS(msg, "damaged session: 1048576 layer records at byte");
        VERIFY_CONTAINS(msg, "cannot fit in the 40 bytes left");
    }

    void validSessionStillRoundTrips()
    {
        Trace t;
        SessionMeta meta;
        meta.prompt = {3, 4};
        meta.sampling.seed = std::numeric_limits<uint64_t>::max();
        meta.extensionsJson = R"({"ir":{"points":[{"t":1,"alts":[[5,0.25]]}]}})";
        const std::string bytes = SessionFile::serialize(meta, t);
        Trace back;
        const SessionMeta m = SessionFile::deserialize(bytes, "ok.sagetrace", back);
        QCOMPARE(m.sampling.seed, std::numeric_limits<uint64_t>::max());
        QCOMPARE(m.prompt, meta.prompt);
        QCOMPARE(SessionFile::serialize(m, back), bytes);
    }
};

QTEST_APPLESS_MAIN(TestHardening)
#include "tst_hardening.moc"
