// Reading, validating and writing safetensors checkpoints: round trips through SafeTensorsWriter and
// SafeTensorsFile, sharded folders through TensorStore, and every malformed-file case the loader must turn
// into a SageError that names the file and the problem instead of reading outside the file.

#include "engine/core/DType.h"
#include "engine/core/SageError.h"
#include "engine/io/SafeTensorsFile.h"
#include "engine/io/SafeTensorsWriter.h"
#include "engine/io/TensorStore.h"

#include <QFile>
#include <QScopeGuard>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>

using namespace sage;
namespace fs = std::filesystem;

namespace
{

// An 8-byte little-endian header length, as every safetensors file starts.
QByteArray lengthPrefix(uint64_t n)
{
    QByteArray b(8, '\0');
    for (int i = 0; i < 8; ++i) b[i] = char(uint8_t(n >> (8 * i)));
    return b;
}

// A complete file: prefix + header (exactly as given) + dataBytes bytes of data.
QByteArray stFile(const QByteArray& header, int dataBytes = 0)
{
    QByteArray data(dataBytes, '\0');
    for (int i = 0; i < dataBytes; ++i) data[i] = char(i * 7 + 1);
    return lengthPrefix(uint64_t(header.size())) + header + data;
}

void writeBytes(const fs::path& path, const QByteArray& bytes)
{
    QFile f(QString::fromStdString(path.string()));
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    QCOMPARE(f.write(bytes), qint64(bytes.size()));
}

QByteArray readBytes(const fs::path& path)
{
    QFile f(QString::fromStdString(path.string()));
    if (!f.open(QIODevice::ReadOnly)) return {};
    return f.readAll();
}

// The SageError message f() throws; "" when it throws nothing; other exception types are reported as such.
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

#define VERIFY_ERROR_CONTAINS(message, fragment)                                                             \
    QVERIFY2((message).contains(fragment),                                                                   \
             qPrintable(QStringLiteral("expected \"%1\" in: %2").arg(fragment, message)))

float loadAsFloat(const TensorInfo& t, int64_t i)
{
    // Data may be unaligned in general, so read through memcpy.
    const auto* p = static_cast<const uint8_t*>(t.data) + i * int64_t(dtypeSize(t.dtype));
    if (t.dtype == DType::F32) {
        float f;
        std::memcpy(&f, p, 4);
        return f;
    }
    uint16_t h;
    std::memcpy(&h, p, 2);
    return t.dtype == DType::F16 ? f16ToFloat(h) : bf16ToFloat(h);
}

float roundTo(DType t, float v)
{
    switch (t) {
    case DType::F32:
        return v;
    case DType::F16:
        return f16ToFloat(floatToF16(v));
    case DType::BF16:
        return bf16ToFloat(floatToBf16(v));
    }
    return v;
}

bool sameFloat(float a, float b)
{
    return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, 4) == 0;
}

// A small valid checkpoint with all three dtypes and metadata.
SafeTensorsWriter sampleWriter()
{
    SafeTensorsWriter w;
    w.addF32("model.norm.weight", {3}, {1.0f, -2.0f, 0.5f}, DType::F32);
    w.addF32("model.embed_tokens.weight", {2, 3}, {0.1f, 0.2f, 0.3f, -0.4f, 5.0f, 6.5f}, DType::BF16);
    w.addF32("lm_head.weight", {1, 5}, {1.5f, -1.0f, 65504.0f, 1e-7f, 0.0f}, DType::F16);
    w.setMetadata("format", "pt");
    return w;
}

} // namespace

class TestSafeTensors : public QObject
{
    Q_OBJECT

private slots:
    void floatToF16RoundsToNearestEven();
    void roundTrip_data();
    void roundTrip();
    void writerLaysOutAlignedContiguousData();
    void generatedTensorsAreWritten();
    void writerRejectsBadArguments();
    void unalignedDataIsAccepted();
    void viewAndShapeString();
    void malformedFile_data();
    void malformedFile();
    void missingFileAndDirectory();
    void everyTruncationIsRejected();
    void mutatedHeadersNeverReadOutOfBounds();

    void shardedFolderWithIndex();
    void folderWithSingleFile();
    void folderWithoutWeights();
    void folderWithSeveralFilesAndNoIndex();
    void indexErrors_data();
    void indexErrors();
    void tensorInTwoShards();
    void missingTensor();
    void checkpointWithoutTensors();
};

void TestSafeTensors::floatToF16RoundsToNearestEven()
{
    // Every finite F16 value survives F16 -> F32 -> F16 exactly; NaNs stay NaN.
    for (uint32_t h = 0; h < 0x10000u; ++h) {
        const uint16_t back = floatToF16(f16ToFloat(uint16_t(h)));
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) {
            QVERIFY((back & 0x7c00u) == 0x7c00u && (back & 0x3ffu));
        } else {
            QCOMPARE(back, uint16_t(h));
        }
    }
    QCOMPARE(floatToF16(65504.0f), uint16_t(0x7bff)); // largest finite
    QCOMPARE(floatToF16(65519.0f), uint16_t(0x7bff)); // below the halfway point to 65536
    QCOMPARE(floatToF16(65520.0f), uint16_t(0x7c00)); // the halfway point rounds to even: infinity
    QCOMPARE(floatToF16(-1e9f), uint16_t(0xfc00));
    QCOMPARE(floatToF16(1.0f + 1.0f / 2048), uint16_t(0x3c00));       // tie, rounds down to even 1.0
    QCOMPARE(floatToF16(1.0f + 3.0f / 2048), uint16_t(0x3c02));       // tie, rounds up to even
    QCOMPARE(floatToF16(std::ldexp(1.0f, -24)), uint16_t(0x0001));    // smallest subnormal
    QCOMPARE(floatToF16(std::ldexp(1.0f, -25)), uint16_t(0x0000));    // tie with zero rounds to zero
    QCOMPARE(floatToF16(std::ldexp(1.5f, -25)), uint16_t(0x0001));    // above the tie
    QCOMPARE(floatToF16(std::ldexp(1023.5f, -24)), uint16_t(0x0400)); // rounds up into the normal range
    QCOMPARE(floatToF16(-0.0f), uint16_t(0x8000));
    QVERIFY(std::isnan(f16ToFloat(floatToF16(std::numeric_limits<float>::quiet_NaN()))));
}

void TestSafeTensors::roundTrip_data()
{
    QTest::addColumn<int>("dtypeIndex");
    QTest::newRow("F32") << int(DType::F32);
    QTest::newRow("F16") << int(DType::F16);
    QTest::newRow("BF16") << int(DType::BF16);
}

void TestSafeTensors::roundTrip()
{
    QFETCH(int, dtypeIndex);
    const DType dtype = DType(dtypeIndex);
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    const fs::path path = fs::path(tmp.path().toStdString()) / "weights.safetensors";

    // matrix: [3, 4]; vector: [5]; scalar: []; empty: [0, 4]; cube: [2, 2, 3]
    std::vector<float> matrix(12), vector{1.0f, -0.0f, 3.14159265f, -1e-3f, 1e4f}, cube(12);
    for (int i = 0; i < 12; ++i) {
        matrix[i] = float(i) * 0.37f - 2.0f;
        cube[i] = std::sin(float(i)) * 100.0f;
    }
    SafeTensorsWriter w;
    w.addF32("model.layers.0.self_attn.q_proj.weight", {3, 4}, matrix, dtype);
    w.addF32("model.norm.weight", {5}, vector, dtype);
    w.addF32("scalar", {}, {0.75f}, dtype);
    w.addF32("empty", {0, 4}, {}, dtype);
    w.addF32("cube", {2, 2, 3}, cube, dtype);
    w.setMetadata("format", "pt");
    w.setMetadata("note", "round trip \xc3\xa9"); // UTF-8 survives
    QCOMPARE(w.tensorCount(), size_t(5));
    w.write(path);
    QVERIFY(fs::exists(path));
    QVERIFY(!fs::exists(path.string() + ".tmp"));

    const std::unique_ptr<SafeTensorsFile> f = SafeTensorsFile::open(path);
    QCOMPARE(f->path(), path);
    QCOMPARE(f->fileSize(), uint64_t(fs::file_size(path)));
    QCOMPARE(f->headerSize() % 8, uint64_t(0));
    QCOMPARE(f->metadata().size(), size_t(2));
    QCOMPARE(f->metadata().at("format"), std::string("pt"));
    QCOMPARE(f->metadata().at("note"), std::string("round trip \xc3\xa9"));

    // tensors() is sorted by name.
    QCOMPARE(f->tensors().size(), size_t(5));
    QStringList names;
    for (const TensorInfo& t : f->tensors()) names << QString::fromStdString(t.name);
    QCOMPARE(names, QStringList({"cube", "empty", "model.layers.0.self_attn.q_proj.weight",
                                 "model.norm.weight", "scalar"}));

    auto check = [&](const char* name, std::vector<int64_t> shape, const std::vector<float>& values) {
        const TensorInfo* t = f->find(name);
        QVERIFY2(t, name);
        QCOMPARE(t->name, std::string(name));
        QCOMPARE(t->dtype, dtype);
        QCOMPARE(t->shape, shape);
        QCOMPARE(t->file, path.string());
        QCOMPARE(t->numel(), int64_t(values.size()));
        QCOMPARE(t->byteSize, uint64_t(values.size() * dtypeSize(dtype)));
        for (size_t i = 0; i < values.size(); ++i) {
            const float expected = roundTo(dtype, values[i]);
            QVERIFY2(sameFloat(loadAsFloat(*t, int64_t(i)), expected),
                     qPrintable(QStringLiteral("%1[%2] = %3, expected %4")
                                    .arg(name)
                                    .arg(i)
                                    .arg(loadAsFloat(*t, int64_t(i)))
                                    .arg(expected)));
            // The stored value is the nearest: relative error within half an ulp of the dtype.
            const float ulp = dtype == DType::F32 ? 0.0f : dtype == DType::F16 ? 1.0f / 1024 : 1.0f / 128;
            QVERIFY(std::fabs(loadAsFloat(*t, int64_t(i)) - values[i]) <=
                    0.5f * ulp * std::fabs(values[i]) + 1e-7f);
        }
    };
    check("model.layers.0.self_attn.q_proj.weight", {3, 4}, matrix);
    check("model.norm.weight", {5}, vector);
    check("scalar", {}, {0.75f});
    check("empty", {0, 4}, {});
    check("cube", {2, 2, 3}, cube);
    QVERIFY(f->find("missing") == nullptr);
    QVERIFY(f->find("") == nullptr);
    QVERIFY(f->find("model.norm.weigh") == nullptr);
}

void TestSafeTensors::writerLaysOutAlignedContiguousData()
{
    QTemporaryDir tmp;
    const fs::path path = fs::path(tmp.path().toStdString()) / "aligned.safetensors";
    SafeTensorsWriter w;
    // Odd element counts: a naive name-ordered layout would leave the F32 tensors at 2-byte offsets.
    w.addF32("a", {3}, {1, 2, 3}, DType::BF16);
    w.addF32("b", {5}, {1, 2, 3, 4, 5}, DType::F32);
    w.addF32("c", {1}, {7}, DType::F16);
    w.addF32("d", {3}, {4, 5, 6}, DType::F32);
    w.write(path);
    const auto f = SafeTensorsFile::open(path);
    uint64_t dataBytes = 0;
    for (const TensorInfo& t : f->tensors()) {
        QCOMPARE(reinterpret_cast<uintptr_t>(t.data) % dtypeSize(t.dtype), uintptr_t(0));
        dataBytes += t.byteSize;
    }
    // No gaps: header prefix + header + tensors is the whole file.
    QCOMPARE(8 + f->headerSize() + dataBytes, f->fileSize());
    // The header is padded with spaces (not NULs) so that the data section starts at a multiple of 8.
    const QByteArray header = readBytes(path).mid(8, int(f->headerSize()));
    QVERIFY(!header.contains('\0'));
    QVERIFY(header.trimmed().endsWith('}'));
    QVERIFY(header.endsWith('}') || header.endsWith(' '));
    QCOMPARE(loadAsFloat(*f->find("d"), 2), 6.0f);
}

void TestSafeTensors::generatedTensorsAreWritten()
{
    QTemporaryDir tmp;
    const fs::path path = fs::path(tmp.path().toStdString()) / "generated.safetensors";
    SafeTensorsWriter w;
    int calls = 0;
    // gen: [64, 33] BF16 with value(r, c) = r - c
    w.addGenerated("gen", DType::BF16, {64, 33}, [&](uint8_t* dst, uint64_t bytes) {
        ++calls;
        QCOMPARE(bytes, uint64_t(64 * 33 * 2));
        for (int r = 0; r < 64; ++r)
            for (int c = 0; c < 33; ++c) {
                const uint16_t v = floatToBf16(float(r - c));
                std::memcpy(dst + 2 * (r * 33 + c), &v, 2);
            }
    });
    w.addGenerated("small", DType::F32, {2}, [](uint8_t* dst, uint64_t bytes) {
        const float v[2] = {1.25f, -8.0f};
        std::memcpy(dst, v, bytes);
    });
    w.write(path);
    QCOMPARE(calls, 1);
    const auto store = TensorStore::openFile(path);
    const WeightView v = store->get("gen").view();
    QCOMPARE(v.rows, int64_t(64));
    QCOMPARE(v.cols, int64_t(33));
    for (int r = 0; r < 64; r += 7)
        for (int c = 0; c < 33; c += 5) QCOMPARE(v.at(r, c), float(r - c));
    QCOMPARE(loadAsFloat(store->get("small"), 1), -8.0f);

    // A fill that throws leaves neither the file nor its temporary behind.
    const fs::path failed = fs::path(tmp.path().toStdString()) / "failed.safetensors";
    SafeTensorsWriter bad;
    bad.addGenerated("x", DType::F32, {4},
                     [](uint8_t*, uint64_t) { throw std::runtime_error("generator failed"); });
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, bad.write(failed));
    QVERIFY(!fs::exists(failed));
    QVERIFY(!fs::exists(failed.string() + ".tmp"));
}

void TestSafeTensors::writerRejectsBadArguments()
{
    SafeTensorsWriter w;
    w.add("ok", DType::F16, {2}, {0, 0, 0, 0});
    QString msg = errorOf([&] { w.add("short", DType::F32, {2, 2}, std::vector<uint8_t>(15)); });
    VERIFY_ERROR_CONTAINS(msg, "tensor short");
    VERIFY_ERROR_CONTAINS(msg, "needs 16 bytes, got 15");
    msg = errorOf([&] { w.add("ok", DType::F16, {2}, {0, 0, 0, 0}); });
    VERIFY_ERROR_CONTAINS(msg, "tensor ok was added twice");
    msg = errorOf([&] { w.addF32("neg", {-1, 2}, {}, DType::F32); });
    VERIFY_ERROR_CONTAINS(msg, "invalid shape [-1, 2]");
    msg = errorOf([&] { w.add("__metadata__", DType::F32, {}, {0, 0, 0, 0}); });
    VERIFY_ERROR_CONTAINS(msg, "reserved");
    msg = errorOf([&] { w.write("/nonexistent-folder-for-sage-tests/x.safetensors"); });
    VERIFY_ERROR_CONTAINS(msg, "x.safetensors.tmp: cannot create the file");
}

void TestSafeTensors::unalignedDataIsAccepted()
{
    // The format allows any offset: a BF16 tensor at an odd byte of the data section, after a 1-byte gap,
    // with a header of 16 bytes so the data section itself starts 8-aligned.
    QTemporaryDir tmp;
    const fs::path path = fs::path(tmp.path().toStdString()) / "odd.safetensors";
    QByteArray header = R"({"w":{"dtype":"BF16","shape":[2],"data_offsets":[1,5]}})";
    header.append(QByteArray((8 - header.size() % 8) % 8, ' '));
    QByteArray data(5, '\0');
    const uint16_t a = floatToBf16(3.0f), b = floatToBf16(-0.5f);
    std::memcpy(data.data() + 1, &a, 2);
    std::memcpy(data.data() + 3, &b, 2);
    writeBytes(path, lengthPrefix(uint64_t(header.size())) + header + data);
    const auto f = SafeTensorsFile::open(path);
    const TensorInfo& t = *f->find("w");
    QCOMPARE(reinterpret_cast<uintptr_t>(t.data) % 2, uintptr_t(1));
    QCOMPARE(loadAsFloat(t, 0), 3.0f);
    QCOMPARE(loadAsFloat(t, 1), -0.5f);
}

void TestSafeTensors::viewAndShapeString()
{
    TensorInfo t;
    float data[24] = {};
    t.data = data;
    t.shape = {};
    QCOMPARE(t.shapeString(), std::string("[]"));
    QCOMPARE(t.view().rows, int64_t(1));
    QCOMPARE(t.view().cols, int64_t(1));
    t.shape = {7};
    QCOMPARE(t.shapeString(), std::string("[7]"));
    QCOMPARE(t.view().rows, int64_t(1));
    QCOMPARE(t.view().cols, int64_t(7));
    t.shape = {64, 32};
    QCOMPARE(t.shapeString(), std::string("[64, 32]"));
    QCOMPARE(t.view().rows, int64_t(64));
    QCOMPARE(t.view().cols, int64_t(32));
    t.shape = {2, 3, 4};
    t.dtype = DType::BF16;
    const WeightView v = t.view();
    QCOMPARE(v.rows, int64_t(2));
    QCOMPARE(v.cols, int64_t(12));
    QCOMPARE(v.dtype, DType::BF16);
    QCOMPARE(v.data, static_cast<const void*>(data));
    t.shape = {0, 5};
    QCOMPARE(t.view().rows, int64_t(0));
    QCOMPARE(t.view().cols, int64_t(5));
}

void TestSafeTensors::malformedFile_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<QStringList>("expected"); // fragments the message must contain besides the file path

    const QString damaged = "re-download or re-export it";
    const QString dtypeFix = "re-export the checkpoint with weights in BF16, F16 or F32";
    auto entry = [](const char* dtype, const char* shape, const char* offsets) {
        return QByteArray("{\"w\":{\"dtype\":") + dtype + ",\"shape\":" + shape +
               ",\"data_offsets\":" + offsets + "}}";
    };

    QTest::newRow("empty file") << QByteArray() << QStringList{"file is empty (0 bytes)", damaged};
    QTest::newRow("7-byte file") << QByteArray(7, '\x01')
                                 << QStringList{"file is 7 bytes", "8-byte header length", damaged};
    QTest::newRow("header length 0") << lengthPrefix(0) + "{}" << QStringList{"header length is 0", damaged};
    QTest::newRow("header length 2^63")
        << lengthPrefix(uint64_t(1) << 63) + "{}"
        << QStringList{"header length is 9223372036854775808 bytes", "100 MB"};
    QTest::newRow("header length 2^64-1")
        << lengthPrefix(~uint64_t(0)) + "{}" << QStringList{"header length is 18446744073709551615 bytes"};
    QTest::newRow("header length 200 MB")
        << lengthPrefix(200'000'000) + "{}" << QStringList{"header length is 200000000 bytes", "100 MB"};
    QTest::newRow("header past end") << lengthPrefix(100) + "{}"
                                     << QStringList{"header length is 100 bytes, but only 2 bytes follow",
                                                    "truncated", damaged};
    QTest::newRow("not JSON") << stFile("{\"w\": ") << QStringList{"header is not valid JSON", damaged};
    QTest::newRow("JSON with trailing garbage") << stFile("{} x") << QStringList{"header is not valid JSON"};
    QTest::newRow("NUL padding") << stFile(QByteArray("{}") + QByteArray(6, '\0'))
                                 << QStringList{"header is not valid JSON"};
    QTest::newRow("invalid UTF-8") << stFile("{\"\xff\":{}}") << QStringList{"header is not valid JSON"};
    QTest::newRow("header is an array")
        << stFile("[1,2]") << QStringList{"header is array [1,2], expected a JSON object", damaged};
    QTest::newRow("header is a string") << stFile("\"x\"") << QStringList{"header is string \"x\""};
    QTest::newRow("entry not an object")
        << stFile(R"({"w":[1]})") << QStringList{"tensor w is array [1], expected an object with dtype"};
    QTest::newRow("missing dtype") << stFile(R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4)
                                   << QStringList{"tensor w has no \"dtype\" field", damaged};
    QTest::newRow("missing shape") << stFile(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", 4)
                                   << QStringList{"tensor w has no \"shape\" field"};
    QTest::newRow("missing data_offsets") << stFile(R"({"w":{"dtype":"F32","shape":[1]}})", 4)
                                          << QStringList{"tensor w has no \"data_offsets\" field"};
    QTest::newRow("extra field") << stFile(
                                        R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"scale":2}})",
                                        4)
                                 << QStringList{"tensor w has an unexpected field \"scale\""};
    QTest::newRow("dtype not a string") << stFile(entry("3", "[1]", "[0,4]"), 4)
                                        << QStringList{"tensor w: dtype is number 3, expected a string"};
    QTest::newRow("unknown dtype") << stFile(entry("\"Q4_K\"", "[1]", "[0,4]"), 4)
                                   << QStringList{"tensor w has unknown dtype \"Q4_K\"", "F32, F16, BF16",
                                                  "quantised formats", dtypeFix};
    QTest::newRow("I64 dtype") << stFile(entry("\"I64\"", "[1]", "[0,8]"), 8)
                               << QStringList{"tensor w has dtype I64, which the engine does not load",
                                              "supported: F32, F16, BF16", dtypeFix};
    QTest::newRow("F8 dtype") << stFile(entry("\"F8_E4M3\"", "[1]", "[0,1]"), 1)
                              << QStringList{"tensor w has dtype F8_E4M3"};
    QTest::newRow("lowercase dtype") << stFile(entry("\"bf16\"", "[1]", "[0,2]"), 2)
                                     << QStringList{"unknown dtype \"bf16\""};
    QTest::newRow("shape not an array") << stFile(entry("\"F32\"", "4", "[0,16]"), 16)
                                        << QStringList{"tensor w: shape is number 4, expected an array"};
    QTest::newRow("negative dimension")
        << stFile(entry("\"F32\"", "[-1]", "[0,4]"), 4)
        << QStringList{"tensor w: shape[0] is number -1", "expected a non-negative integer"};
    QTest::newRow("float dimension") << stFile(entry("\"F32\"", "[1,2.0]", "[0,8]"), 8)
                                     << QStringList{"tensor w: shape[1] is non-integer number 2.0"};
    QTest::newRow("exponent dimension") << stFile(entry("\"F32\"", "[1e1]", "[0,40]"), 40)
                                        << QStringList{"tensor w: shape[0] is non-integer number"};
    QTest::newRow("string dimension") << stFile(entry("\"F32\"", "[\"2\"]", "[0,8]"), 8)
                                      << QStringList{"tensor w: shape[0] is string \"2\""};
    QTest::newRow("nested shape") << stFile(entry("\"F32\"", "[[1]]", "[0,4]"), 4)
                                  << QStringList{"tensor w: shape[0] is array [1]"};
    QTest::newRow("deeply nested shape") << stFile(entry("\"F32\"", "[[[[[1]]]]]", "[0,4]"), 4)
                                         << QStringList{"header nests JSON values deeper than"};
    QTest::newRow("dimension beyond int64") << stFile(entry("\"F32\"", "[9223372036854775808]", "[0,4]"), 4)
                                            << QStringList{"shape[0] = 9223372036854775808 does not fit"};
    QTest::newRow("dimension beyond uint64") << stFile(entry("\"F32\"", "[18446744073709551616]", "[0,4]"), 4)
                                             << QStringList{"shape[0] is non-integer"};
    QTest::newRow("shape [2^40, 2^40]")
        << stFile(entry("\"F32\"", "[1099511627776,1099511627776]", "[0,4]"), 4)
        << QStringList{"tensor w: shape [1099511627776, 1099511627776]", "overflows"};
    QTest::newRow("element count past int64")
        << stFile(entry("\"F32\"", "[4611686018427387904,2]", "[0,4]"), 4) << QStringList{"overflows"};
    QTest::newRow("byte count past uint64")
        << stFile(entry("\"F32\"", "[4611686018427387904]", "[0,4]"), 4)
        << QStringList{"tensor w: shape [4611686018427387904]", "overflows"};
    QTest::newRow("zero dim hides overflow")
        << stFile(entry("\"F32\"", "[0,4294967296,4294967296,4294967296]", "[0,0]"))
        << QStringList{"overflows"};
    QTest::newRow("data_offsets with 3 entries")
        << stFile(entry("\"F32\"", "[1]", "[0,4,8]"), 8)
        << QStringList{"tensor w: data_offsets is array [0,4,8]", "exactly 2 non-negative integers"};
    QTest::newRow("data_offsets with 1 entry")
        << stFile(entry("\"F32\"", "[1]", "[4]"), 4) << QStringList{"tensor w: data_offsets is array [4]"};
    QTest::newRow("data_offsets not an array")
        << stFile(entry("\"F32\"", "[1]", "\"0-4\""), 4) << QStringList{"tensor w: data_offsets is string"};
    QTest::newRow("negative data_offsets") << stFile(entry("\"F32\"", "[1]", "[-4,0]"), 4)
                                           << QStringList{"tensor w: data_offsets is array [-4,0]"};
    QTest::newRow("float data_offsets") << stFile(entry("\"F32\"", "[1]", "[0,4.0]"), 4)
                                        << QStringList{"tensor w: data_offsets is array [0,4.0]"};
    QTest::newRow("begin > end") << stFile(entry("\"F32\"", "[1]", "[8,4]"), 8)
                                 << QStringList{"tensor w: data_offsets [8, 4] have begin > end"};
    QTest::newRow("end past the data")
        << stFile(entry("\"F32\"", "[2]", "[0,8]"), 4)
        << QStringList{"tensor w: data_offsets [0, 8] end past the data section", "holds 4 bytes",
                       "truncated", damaged};
    QTest::newRow("huge end") << stFile(
                                     entry("\"F32\"", "[1]", "[18446744073709551611,18446744073709551615]"),
                                     4)
                              << QStringList{"end past the data section"};
    QTest::newRow("byte length mismatch")
        << stFile(entry("\"F32\"", "[3]", "[0,8]"), 8)
        << QStringList{"tensor w: dtype F32 and shape [3] need 12 bytes", "data_offsets [0, 8] span 8 bytes"};
    QTest::newRow("BF16 byte length mismatch") << stFile(entry("\"BF16\"", "[2,2]", "[0,4]"), 8)
                                               << QStringList{"dtype BF16 and shape [2, 2] need 8 bytes"};
    QTest::newRow("overlap") << stFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                       R"("b":{"dtype":"F16","shape":[4],"data_offsets":[4,12]}})",
                                       12)
                             << QStringList{"tensors a [0, 8] and b [4, 12] overlap", damaged};
    QTest::newRow("identical ranges") << stFile(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                                4)
                                      << QStringList{"overlap"};
    QTest::newRow("__metadata__ not an object")
        << stFile(R"({"__metadata__":["pt"]})")
        << QStringList{"header field __metadata__ is array [\"pt\"]", "expected an object of string values"};
    QTest::newRow("__metadata__ value not a string")
        << stFile(R"({"__metadata__":{"format":"pt","step":1}})")
        << QStringList{"header field __metadata__.\"step\" is number 1, expected a string"};
    QTest::newRow("duplicate tensor") << stFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                                8)
                                      << QStringList{"header contains the key \"w\" twice"};
    QTest::newRow("duplicate field")
        << stFile(R"({"w":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", 4)
        << QStringList{"header contains the key \"dtype\" twice"};
    QTest::newRow("truncated data") << stFile(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                              R"("b":{"dtype":"BF16","shape":[8],"data_offsets":[16,32]}})",
                                              20)
                                    << QStringList{
                                           "tensor b: data_offsets [16, 32] end past the data section",
                                           "holds 20 bytes", "truncated"};
}

void TestSafeTensors::malformedFile()
{
    QFETCH(QByteArray, bytes);
    QFETCH(QStringList, expected);
    QTemporaryDir tmp;
    QVERIFY(tmp.isValid());
    const fs::path path = fs::path(tmp.path().toStdString()) / "broken-checkpoint.safetensors";
    writeBytes(path, bytes);

    const QString msg = errorOf([&] { SafeTensorsFile::open(path); });
    QVERIFY2(!msg.isEmpty(), "the file was accepted");
    // "<file>: <what is wrong>; <fix>"
    QVERIFY2(msg.startsWith(QString::fromStdString(path.string()) + ": "), qPrintable(msg));
    QVERIFY2(msg.contains("; "), qPrintable(msg));
    for (const QString& fragment : expected) VERIFY_ERROR_CONTAINS(msg, fragment);

    // The folder loader reports the same problem (the only .safetensors file is picked up).
    const QString viaStore = errorOf([&] { TensorStore::openFolder(path.parent_path()); });
    QCOMPARE(viaStore, msg);
}

void TestSafeTensors::missingFileAndDirectory()
{
    QTemporaryDir tmp;
    const fs::path missing = fs::path(tmp.path().toStdString()) / "nope.safetensors";
    QString msg = errorOf([&] { SafeTensorsFile::open(missing); });
    VERIFY_ERROR_CONTAINS(msg, QString::fromStdString(missing.string()) + ": cannot open the file (");
    VERIFY_ERROR_CONTAINS(msg, "check the path");

    const fs::path dir = fs::path(tmp.path().toStdString()) / "dir.safetensors";
    fs::create_directory(dir);
    msg = errorOf([&] { SafeTensorsFile::open(dir); });
    VERIFY_ERROR_CONTAINS(msg, QString::fromStdString(dir.string()) + ": is not a regular file");
}

void TestSafeTensors::everyTruncationIsRejected()
{
    QTemporaryDir tmp;
    const fs::path good = fs::path(tmp.path().toStdString()) / "good.safetensors";
    sampleWriter().write(good);
    const QByteArray full = readBytes(good);
    QVERIFY(full.size() > 8);
    QVERIFY(SafeTensorsFile::open(good)->tensors().size() == 3);

    // The writer leaves no gap after the last tensor, so every proper prefix is missing data. The copy is
    // shrunk in place (rewriting a file from zero length makes ext4 flush it on every close).
    const fs::path cut = fs::path(tmp.path().toStdString()) / "cut.safetensors";
    fs::copy_file(good, cut);
    for (int n = int(full.size()) - 1; n >= 0; --n) {
        fs::resize_file(cut, uintmax_t(n));
        const QString msg = errorOf([&] { SafeTensorsFile::open(cut); });
        QVERIFY2(msg.startsWith(QString::fromStdString(cut.string()) + ": "),
                 qPrintable(QStringLiteral("prefix of %1 bytes: %2").arg(n).arg(msg)));
    }
}

void TestSafeTensors::mutatedHeadersNeverReadOutOfBounds()
{
    // Single-byte corruptions of the length prefix and the header: each must load (then every tensor's bytes
    // are inside the file) or fail with a SageError, never crash, hang or throw anything else. Run under the
    // asan preset this also checks the parser's own reads.
    QTemporaryDir tmp;
    const fs::path good = fs::path(tmp.path().toStdString()) / "good.safetensors";
    sampleWriter().write(good);
    const QByteArray full = readBytes(good);
    const uint64_t headerLen = SafeTensorsFile::open(good)->headerSize();
    const fs::path path = fs::path(tmp.path().toStdString()) / "mutated.safetensors";
    fs::copy_file(good, path);
    // The copy is patched one byte at a time in place and restored after each trial.
    QFile patch(QString::fromStdString(path.string()));
    QVERIFY(patch.open(QIODevice::ReadWrite));
    auto poke = [&](int pos, char value) {
        QVERIFY(patch.seek(pos));
        QCOMPARE(patch.write(&value, 1), qint64(1));
        QVERIFY(patch.flush());
    };
    const char replacements[] = {'0', '1', '9', '-', '.', 'e', '"',  ',',
                                 ':', '[', ']', '{', '}', ' ', '\0', '\xff'};
    int loaded = 0, rejected = 0;
    for (int pos = 0; pos < int(8 + headerLen); ++pos) {
        for (char r : replacements) {
            if (full.at(pos) == r) continue;
            poke(pos, r);
            auto restore = qScopeGuard([&] { poke(pos, full.at(pos)); });
            std::unique_ptr<SafeTensorsFile> f;
            const QString msg = errorOf([&] { f = SafeTensorsFile::open(path); });
            if (!msg.isEmpty()) {
                QVERIFY2(msg.startsWith(QString::fromStdString(path.string()) + ": "), qPrintable(msg));
                ++rejected;
                continue;
            }
            ++loaded;
            uint64_t total = 0;
            for (const TensorInfo& t : f->tensors()) {
                QCOMPARE(t.byteSize, uint64_t(t.numel()) * dtypeSize(t.dtype));
                QVERIFY(t.byteSize <= f->fileSize() - 8 - f->headerSize());
                const auto* p = static_cast<const uint8_t*>(t.data);
                for (uint64_t i = 0; i < t.byteSize; ++i) total += p[i]; // touches every byte
            }
            volatile uint64_t sink = total; // keeps the reads
            Q_UNUSED(sink);
        }
    }
    // Most corruptions break the header; some (a digit in a metadata string, spaces) are harmless.
    QVERIFY(rejected > 0);
    QVERIFY(loaded > 0);
}

void TestSafeTensors::shardedFolderWithIndex()
{
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    SafeTensorsWriter s1, s2;
    s1.addF32("model.embed_tokens.weight", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}, DType::BF16);
    s1.addF32("model.layers.0.input_layernorm.weight", {2}, {0.5f, 0.25f}, DType::F32);
    s2.addF32("lm_head.weight", {4, 2}, {-1, -2, -3, -4, -5, -6, -7, -8}, DType::F16);
    s2.addF32("model.norm.weight", {2}, {1, 1}, DType::F32);
    s2.addF32("unlisted.extra", {1}, {9}, DType::F32); // in a shard but not in the weight_map: still loaded
    s1.write(dir / "model-00001-of-00002.safetensors");
    s2.write(dir / "model-00002-of-00002.safetensors");
    // A stray file the index does not name is ignored.
    writeBytes(dir / "stray.safetensors", QByteArray("junk"));
    writeBytes(dir / "model.safetensors.index.json", R"({
        "metadata": {"total_size": 64},
        "weight_map": {
            "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
            "model.layers.0.input_layernorm.weight": "model-00001-of-00002.safetensors",
            "lm_head.weight": "model-00002-of-00002.safetensors",
            "model.norm.weight": "model-00002-of-00002.safetensors"
        }
    })");

    const auto store = TensorStore::openFolder(dir);
    QCOMPARE(store->folder(), dir);
    QCOMPARE(store->fileCount(), size_t(2));
    QCOMPARE(store->files().size(), size_t(2));
    const std::vector<std::string> expectedNames{"lm_head.weight", "model.embed_tokens.weight",
                                                 "model.layers.0.input_layernorm.weight", "model.norm.weight",
                                                 "unlisted.extra"};
    QCOMPARE(store->names(), expectedNames);
    QCOMPARE(store->totalBytes(), uint64_t(16 + 8 + 16 + 8 + 4));
    const TensorInfo& head = store->get("lm_head.weight");
    QCOMPARE(head.dtype, DType::F16);
    QCOMPARE(head.shapeString(), std::string("[4, 2]"));
    QVERIFY(QString::fromStdString(head.file).endsWith("model-00002-of-00002.safetensors"));
    QCOMPARE(head.view().at(3, 1), -8.0f);
    QCOMPARE(store->get("model.embed_tokens.weight").view().at(2, 0), 5.0f);
    QCOMPARE(loadAsFloat(store->get("model.layers.0.input_layernorm.weight"), 1), 0.25f);
    QVERIFY(store->find("model.layers.1.input_layernorm.weight") == nullptr);
}

void TestSafeTensors::folderWithSingleFile()
{
    // model.safetensors wins over other files; a lone file of another name is accepted.
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    SafeTensorsWriter a, b;
    a.addF32("x", {1}, {1}, DType::F32);
    b.addF32("y", {1}, {2}, DType::F32);
    a.write(dir / "model.safetensors");
    b.write(dir / "other.safetensors");
    auto store = TensorStore::openFolder(dir);
    QCOMPARE(store->names(), std::vector<std::string>{"x"});

    QTemporaryDir tmp2;
    const fs::path dir2 = tmp2.path().toStdString();
    b.write(dir2 / "pytorch_model_converted.safetensors");
    store = TensorStore::openFolder(dir2);
    QCOMPARE(store->names(), std::vector<std::string>{"y"});
    QCOMPARE(store->fileCount(), size_t(1));

    store = TensorStore::openFile(dir / "other.safetensors");
    QCOMPARE(store->folder(), dir);
    QCOMPARE(store->names(), std::vector<std::string>{"y"});
}

void TestSafeTensors::folderWithoutWeights()
{
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    writeBytes(dir / "config.json", "{}");
    QString msg = errorOf([&] { TensorStore::openFolder(dir); });
    VERIFY_ERROR_CONTAINS(msg, QString::fromStdString(dir.string()) +
                                   ": no model.safetensors or "
                                   "model.safetensors.index.json in " +
                                   QString::fromStdString(dir.string()));

    msg = errorOf([&] { TensorStore::openFolder(dir / "absent"); });
    VERIFY_ERROR_CONTAINS(msg, "absent: folder does not exist");
    msg = errorOf([&] { TensorStore::openFolder(dir / "config.json"); });
    VERIFY_ERROR_CONTAINS(msg, "config.json: is not a folder");
}

void TestSafeTensors::folderWithSeveralFilesAndNoIndex()
{
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    SafeTensorsWriter a;
    a.addF32("x", {1}, {1}, DType::F32);
    a.write(dir / "b.safetensors");
    a.write(dir / "a.safetensors");
    const QString msg = errorOf([&] { TensorStore::openFolder(dir); });
    VERIFY_ERROR_CONTAINS(msg, "found 2 .safetensors files (a.safetensors, b.safetensors) but no "
                               "model.safetensors.index.json");
}

void TestSafeTensors::indexErrors_data()
{
    QTest::addColumn<QByteArray>("index");
    QTest::addColumn<QStringList>("expected");
    const QString fix = "model.safetensors.index.json or regenerate it";
    QTest::newRow("not JSON") << QByteArray("{\"weight_map\": {")
                              << QStringList{"index is not valid JSON", fix};
    QTest::newRow("not an object") << QByteArray("[]")
                                   << QStringList{"index is array [], expected an object"};
    QTest::newRow("no weight_map") << QByteArray(R"({"metadata":{}})")
                                   << QStringList{"index has no \"weight_map\" field", fix};
    QTest::newRow("weight_map not an object")
        << QByteArray(R"({"weight_map":["shard.safetensors"]})")
        << QStringList{"\"weight_map\" is array [\"shard.safetensors\"], expected an object mapping"};
    QTest::newRow("empty weight_map")
        << QByteArray(R"({"weight_map":{}})") << QStringList{"\"weight_map\" is empty"};
    QTest::newRow("shard not a string")
        << QByteArray(R"({"weight_map":{"x":1}})")
        << QStringList{"weight_map entry x is number 1, expected a shard file name"};
    QTest::newRow("duplicate tensor in weight_map")
        << QByteArray(R"({"weight_map":{"x":"shard.safetensors","x":"other.safetensors"}})")
        << QStringList{"index contains the key \"x\" twice"};
    QTest::newRow("parent directory")
        << QByteArray(R"({"weight_map":{"x":"../evil.safetensors"}})")
        << QStringList{"weight_map entry x names the shard \"../evil.safetensors\", "
                       "which is not a plain file name inside"};
    QTest::newRow("absolute path") << QByteArray(R"({"weight_map":{"x":"/etc/passwd"}})")
                                   << QStringList{"shard \"/etc/passwd\", which is not a plain file name"};
    QTest::newRow("subfolder") << QByteArray(R"({"weight_map":{"x":"sub/shard.safetensors"}})")
                               << QStringList{
                                      "shard \"sub/shard.safetensors\", which is not a plain file name"};
    QTest::newRow("dot-dot") << QByteArray(R"({"weight_map":{"x":".."}})")
                             << QStringList{"shard \"..\", which is not a plain file name"};
    QTest::newRow("empty shard name") << QByteArray(R"({"weight_map":{"x":""}})")
                                      << QStringList{"shard \"\", which is not a plain file name"};
    QTest::newRow("missing shard")
        << QByteArray(R"({"weight_map":{"x":"shard.safetensors","y":"model-00002-of-00002.safetensors"}})")
        << QStringList{"shard model-00002-of-00002.safetensors (named by the weight_map) does not exist in",
                       "download the missing shard"};
    QTest::newRow("tensor not in its shard")
        << QByteArray(R"({"weight_map":{"x":"shard.safetensors","z":"shard.safetensors"}})")
        << QStringList{"weight_map puts tensor z in shard.safetensors, but that shard has no such tensor"};
}

void TestSafeTensors::indexErrors()
{
    QFETCH(QByteArray, index);
    QFETCH(QStringList, expected);
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    SafeTensorsWriter w;
    w.addF32("x", {1}, {1}, DType::F32);
    w.write(dir / "shard.safetensors");
    const fs::path indexPath = dir / "model.safetensors.index.json";
    writeBytes(indexPath, index);
    const QString msg = errorOf([&] { TensorStore::openFolder(dir); });
    QVERIFY2(msg.startsWith(QString::fromStdString(indexPath.string()) + ": "), qPrintable(msg));
    for (const QString& fragment : expected) VERIFY_ERROR_CONTAINS(msg, fragment);
}

void TestSafeTensors::tensorInTwoShards()
{
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    SafeTensorsWriter a, b;
    a.addF32("x", {1}, {1}, DType::F32);
    b.addF32("x", {1}, {2}, DType::F32);
    b.addF32("y", {1}, {3}, DType::F32);
    a.write(dir / "a.safetensors");
    b.write(dir / "b.safetensors");
    writeBytes(dir / "model.safetensors.index.json",
               R"({"weight_map":{"x":"a.safetensors","y":"b.safetensors"}})");
    const QString msg = errorOf([&] { TensorStore::openFolder(dir); });
    VERIFY_ERROR_CONTAINS(msg, QString::fromStdString(dir.string()) + ": tensor x is stored twice, in ");
    VERIFY_ERROR_CONTAINS(msg, "a.safetensors and in ");
    VERIFY_ERROR_CONTAINS(msg, "b.safetensors");
}

void TestSafeTensors::missingTensor()
{
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    SafeTensorsWriter w;
    w.addF32("model.norm.weight", {1}, {1}, DType::F32);
    w.write(dir / "model.safetensors");
    const auto store = TensorStore::openFolder(dir);
    const QString msg = errorOf([&] { store->get("model.layers.7.mlp.down_proj.weight"); });
    QCOMPARE(
        msg,
        QString::fromStdString(dir.string()) +
            ": checkpoint has no tensor model.layers.7.mlp.down_proj.weight; the weights do not match the "
            "model's config.json or are incomplete: re-download or re-export the checkpoint");
}

void TestSafeTensors::checkpointWithoutTensors()
{
    // A valid safetensors file with only metadata is a valid file but not a usable checkpoint.
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    SafeTensorsWriter w;
    w.setMetadata("format", "pt");
    w.write(dir / "model.safetensors");
    QCOMPARE(SafeTensorsFile::open(dir / "model.safetensors")->tensors().size(), size_t(0));
    const QString msg = errorOf([&] { TensorStore::openFolder(dir); });
    VERIFY_ERROR_CONTAINS(msg, QString::fromStdString(dir.string()) + ": checkpoint holds no tensors");
}

QTEST_APPLESS_MAIN(TestSafeTensors)
#include "tst_safetensors.moc"
