// Session files (.sagetrace, docs/session-format.md): a bit-exact round trip of a captured run, model identity
// hashes, atomic writes, autosave, and a clear SageError for every malformed file (truncated at any length,
// any flipped byte, a newer version, not a session at all).
#include "GoldenCase.h"

#include "engine/capture/Autosaver.h"
#include "engine/capture/CaptureGeneration.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/ModelIdentity.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/capture/TraceRecorder.h"
#include "engine/core/SageError.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <cstring>
#include <fstream>

using namespace sage;

namespace {

struct Run {
    SessionMeta meta;
    std::unique_ptr<Trace> trace = std::make_unique<Trace>();
};

Run capture(const QString& caseName, const char* preset)
{
    const GoldenCase g = loadGoldenCase(caseName);
    auto model = Model::load(g.dir.toStdString());
    cpu::ThreadPool pool(2);
    InferenceSession session(*model, pool);
    Run r;
    TraceRecorder rec(*model, CapturePolicy::fromName(preset, model->config()), *r.trace);
    GenerationRequest req;
    req.prompt.assign(g.tokens.begin(), g.tokens.begin() + 8);
    req.maxNewTokens = 6;
    req.sampling.temperature = 0.9;
    req.sampling.topP = 0.95;
    req.sampling.seed = 1234567890123ull;
    captureGenerate(session, nullptr, req, rec);
    r.meta.model = ModelIdentity::of(*model);
    r.meta.modelFolder = g.dir.toStdString();
    r.meta.prompt = req.prompt;
    r.meta.promptText = "héllo \"quoted\"";
    r.meta.sampling = req.sampling;
    r.meta.maxNewTokens = req.maxNewTokens;
    r.meta.policy = preset;
    r.meta.extensionsJson = R"({"ir":{"decision_points":[]}})";
    return r;
}

QString errorOf(const std::string& bytes)
{
    Trace t;
    try {
        SessionFile::deserialize(bytes, "run.sagetrace", t);
    } catch (const SageError& e) {
        return QString::fromUtf8(e.what());
    }
    return {};
}

} // namespace

class TestSession : public QObject
{
    Q_OBJECT

private slots:
    void roundTripIsBitExact()
    {
        for (const char* preset : {"standard", "full"}) {
            Run r = capture("loop2_moe", preset);
            QTemporaryDir dir;
            const std::string path = (dir.path() + "/run.sagetrace").toStdString();
            SessionFile::save(path, r.meta, *r.trace);
            Trace back;
            const SessionMeta m = SessionFile::open(path, back);
            // Every number: serialising the opened session gives the same bytes.
            QVERIFY(SessionFile::serialize(m, back) == SessionFile::serialize(r.meta, *r.trace));
            QCOMPARE(back.size(), r.trace->size());
            QCOMPARE(m.model, r.meta.model);
            QCOMPARE(m.prompt, r.meta.prompt);
            QCOMPARE(m.promptText, r.meta.promptText);
            QCOMPARE(m.sampling.seed, r.meta.sampling.seed);
            QCOMPARE(m.sampling.temperature, r.meta.sampling.temperature);
            QCOMPARE(m.sampling.topP, r.meta.sampling.topP);
            QCOMPARE(m.extensionsJson, std::string(R"({"ir":{"decision_points":[]}})"));
            QCOMPARE(back.info().heads, r.trace->info().heads);
            for (int64_t t = 0; t < back.size(); ++t) {
                const StepRecord &a = *r.trace->step(t), &b = *back.step(t);
                QCOMPARE(b.token, a.token);
                QCOMPARE(b.generated, a.generated);
                QCOMPARE(b.choice.alternatives, a.choice.alternatives);
                QCOMPARE(b.layers.size(), a.layers.size());
                for (size_t k = 0; k < a.layers.size(); ++k) {
                    QCOMPARE(b.layers[k].gate.size(), a.layers[k].gate.size());
                    if (!a.layers[k].gate.empty()) // bit patterns, so NaN placeholders compare too
                        QVERIFY(std::memcmp(b.layers[k].gate.data(), a.layers[k].gate.data(),
                                            a.layers[k].gate.size() * 4) == 0);
                    QCOMPARE(b.layers[k].fullRows.size(), a.layers[k].fullRows.size());
                    for (size_t f = 0; f < a.layers[k].fullRows.size(); ++f)
                        QVERIFY(b.layers[k].fullRows[f].probs == a.layers[k].fullRows[f].probs);
                }
                QVERIFY(b.logits == a.logits);
            }
            // No temporary files are left behind.
            QCOMPARE(QDir(dir.path()).entryList(QDir::Files | QDir::Hidden).size(), qsizetype(1));
        }
    }

    void modelIdentityDetectsChanges()
    {
        const GoldenCase a = loadGoldenCase("loop2_moe"), b = loadGoldenCase("loop2_dense_w4");
        const ModelIdentity ia = ModelIdentity::ofFolder(a.dir.toStdString());
        QCOMPARE(ia.configHash.size(), size_t(16));
        QCOMPARE(ModelIdentity::ofFolder(a.dir.toStdString()), ia);
        const ModelIdentity ib = ModelIdentity::ofFolder(b.dir.toStdString());
        QVERIFY(ia.configHash != ib.configHash && ia.weightHash != ib.weightHash);
        // A copy with one weight byte changed in a sampled block (the first data block) has another weight hash.
        QTemporaryDir dir;
        QVERIFY(QFile::copy(a.dir + "/config.json", dir.path() + "/config.json"));
        QVERIFY(QFile::copy(a.dir + "/model.safetensors", dir.path() + "/model.safetensors"));
        QCOMPARE(ModelIdentity::ofFolder(dir.path().toStdString()), ia);
        {
            std::fstream f((dir.path() + "/model.safetensors").toStdString(),
                           std::ios::in | std::ios::out | std::ios::binary);
            uint64_t hl = 0;
            f.read(reinterpret_cast<char*>(&hl), 8);
            f.seekp(std::streamoff(8 + hl + 3));
            f.put('\x7f');
        }
        const ModelIdentity changed = ModelIdentity::ofFolder(dir.path().toStdString());
        QCOMPARE(changed.configHash, ia.configHash);
        QVERIFY(changed.weightHash != ia.weightHash);
    }

    void malformedFilesErrorCleanly()
    {
        Run r = capture("loop2_dense_w4", "standard");
        const std::string good = SessionFile::serialize(r.meta, *r.trace);
        QVERIFY(errorOf(good).isEmpty());
        // Truncated at every length (a sampling of cut points including every header byte).
        for (size_t cut = 0; cut < good.size(); cut += (cut < 64 ? 1 : 97)) {
            const QString e = errorOf(good.substr(0, cut));
            QVERIFY2(e.contains("truncated") || (cut < 8 && e.contains("not a SAGE session")),
                     qPrintable(QString("cut %1: %2").arg(cut).arg(e)));
        }
        // Any changed byte in the data: checksum.
        for (size_t pos = 24; pos < good.size() - 8; pos += 131) {
            std::string bad = good;
            bad[pos] = char(bad[pos] ^ 0x20);
            QVERIFY2(errorOf(bad).contains("corrupted session: the checksum"), qPrintable(errorOf(bad)));
        }
        // Newer version.
        {
            std::string bad = good;
            const uint32_t v = SessionFile::kVersion + 1;
            std::memcpy(bad.data() + 8, &v, 4);
            const QString e = errorOf(bad);
            QVERIFY2(e.contains("version 2 was written by a newer SAGE Workbench") && e.contains("update"),
                     qPrintable(e));
        }
        QVERIFY(errorOf("PK\x03\x04 a zip file").contains("not a SAGE session file"));
        QVERIFY(errorOf(good + "xx").contains("unexpected bytes after the checksum"));
        // A consistent checksum over garbage still errors cleanly (a damaged writer, not a damaged disk).
        {
            std::string bad = good.substr(0, 24) + std::string(64, '\xff');
            const uint64_t len = 64, sum = fnv1a64(bad.data() + 24, 64);
            std::memcpy(bad.data() + 16, &len, 8);
            bad.append(reinterpret_cast<const char*>(&sum), 8);
            QVERIFY(errorOf(bad).contains("damaged session"));
        }
        Trace t;
        QVERIFY_THROWS_EXCEPTION(SageError, SessionFile::open("/nonexistent/run.sagetrace", t));
    }

    void autosaveWritesEveryNSteps()
    {
        const GoldenCase g = loadGoldenCase("loop3_dense");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        QTemporaryDir dir;
        const std::string path = (dir.path() + "/auto.sagetrace").toStdString();
        Trace trace;
        TraceRecorder rec(*model, CapturePolicy::fromName("summary", model->config()), trace);
        SessionMeta meta;
        meta.model = ModelIdentity::of(*model);
        int64_t seenAtSave = -1;
        {
            Autosaver saver(path, meta, trace, 5, 0);
            InferenceSession session(*model, pool);
            session.setCaptureHook(&rec);
            std::vector<float> logits;
            session.forward(std::span<const int32_t>(g.tokens.data(), 3), false, logits);
            QCOMPARE(saver.saves(), int64_t(0));
            for (size_t i = 3; i < 12; ++i) {
                session.forward(std::span<const int32_t>(&g.tokens[i], 1), false, logits);
                rec.flush(); // each step reaches the trace now, not in a later lens batch
            }
            QCOMPARE(saver.saves(), int64_t(2)); // at 5 and at 10 steps
            Trace mid;
            SessionFile::open(path, mid);
            seenAtSave = mid.size();
            QCOMPARE(seenAtSave, int64_t(10));
            QVERIFY(saver.lastError().empty());
        }
        Trace fin; // the destructor saved the rest
        SessionFile::open(path, fin);
        QCOMPARE(fin.size(), int64_t(12));
    }

    void cliWritesSession()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        QTemporaryDir dir;
        QProcess p;
        p.start(QStringLiteral(SAGE_CLI_PATH), {"capture", "--model", g.dir, "--tokens", "1,4,9,16", "--max-tokens",
                                                "3", "--seed", "5", "--out", dir.path() + "/run.sagetrace"});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        Trace t;
        const SessionMeta m = SessionFile::open((dir.path() + "/run.sagetrace").toStdString(), t);
        QCOMPARE(t.size(), int64_t(7));
        QCOMPARE(m.prompt, (std::vector<int32_t>{1, 4, 9, 16}));
        QCOMPARE(m.sampling.seed, uint64_t(5));
        QCOMPARE(m.policy, std::string("standard"));
        QCOMPARE(m.model, ModelIdentity::ofFolder(g.dir.toStdString()));
    }
};

QTEST_APPLESS_MAIN(TestSession)
#include "tst_session.moc"
