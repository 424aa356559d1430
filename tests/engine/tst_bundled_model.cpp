// The bundled default model (resources/models/sage-mini-coder) run through the real sage-cli: its logits
// match the PyTorch reference's (tests/data/bundled/golden.safetensors, written by tools/train/evaluate.py
// from the shipped BF16 checkpoint), with both loops and with the early exit after loop 1, and `score
// --text-file` on a held-out excerpt gives the perplexity the model card reports.
#include "engine/io/TensorStore.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QtTest>

#include <cmath>
#include <vector>

class TestBundledModel : public QObject
{
    Q_OBJECT

    struct Run {
        int code = -1;
        QByteArray out, err;
    };

    static QString modelDir() { return QStringLiteral(SAGE_SOURCE_DIR) + "/resources/models/sage-mini-coder"; }
    static QString dataDir() { return QStringLiteral(SAGE_TEST_DATA_DIR) + "/bundled"; }

    static Run cli(const QStringList& args)
    {
        QProcess p;
        p.start(QStringLiteral(SAGE_CLI_PATH), args);
        p.waitForFinished(120000);
        return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
                p.readAllStandardError()};
    }

    static QJsonObject expected()
    {
        QFile f(dataDir() + "/expected.json");
        if (!f.open(QIODevice::ReadOnly)) qFatal("cannot open %s", qPrintable(f.fileName()));
        return QJsonDocument::fromJson(f.readAll()).object();
    }

    // Logits rows [T, V] of a score run, flattened.
    static std::vector<float> scoreLogits(const QJsonArray& tokens, int maxLoops, QByteArray* err)
    {
        QStringList ids;
        for (const auto& v : tokens) ids << QString::number(v.toInt());
        QStringList args{"score", "--model", modelDir(), "--tokens", ids.join(','), "--format", "json"};
        if (maxLoops > 0) args << "--max-loops" << QString::number(maxLoops);
        const Run r = cli(args);
        *err = r.err;
        std::vector<float> got;
        if (r.code != 0) return got;
        const QJsonArray rows = QJsonDocument::fromJson(r.out).object().value("logits").toArray();
        for (const auto& row : rows)
            for (const auto& v : row.toArray()) got.push_back(float(v.toDouble()));
        return got;
    }

private slots:
    void logitsMatchReference_data()
    {
        QTest::addColumn<int>("prompt");
        QTest::addColumn<int>("maxLoops");
        const int prompts = int(expected().value("prompts").toArray().size());
        for (int p = 0; p < prompts; ++p) {
            QTest::addRow("prompt%d_loops2", p) << p << 0;
            QTest::addRow("prompt%d_loops1", p) << p << 1;
        }
    }

    void logitsMatchReference()
    {
        QFETCH(int, prompt);
        QFETCH(int, maxLoops);
        const QJsonObject e = expected();
        const QJsonObject pr = e.value("prompts").toArray().at(prompt).toObject();
        const QJsonArray tokens = pr.value("tokens").toArray();
        // The prompts are longer than the loop window (16), so loop 2's local stream drops keys.
        QVERIFY(tokens.size() > 16);
        const auto golden = sage::TensorStore::openFile((dataDir() + "/golden.safetensors").toStdString());
        const std::string name = pr.value(maxLoops == 1 ? "logits_loops1" : "logits").toString().toStdString();
        const sage::TensorInfo* t = golden->find(name);
        QVERIFY2(t, name.c_str());
        QCOMPARE(t->shape.size(), size_t(2));
        QCOMPARE(t->shape[0], int64_t(tokens.size()));
        const float* want = static_cast<const float*>(t->data); // [T, V] F32

        QByteArray err;
        const std::vector<float> got = scoreLogits(tokens, maxLoops, &err);
        QVERIFY2(size_t(got.size()) == size_t(t->numel()), err.constData());
        // Tolerance: the reference sums in float32 in its own order (torch GEMMs) and the engine in another
        // (blocked, SIMD); over D = 256 and the MoE/attention sums of 8 layer applications the two float32
        // results differ by ~1e-5..1e-4 on logits of magnitude ~10-20. abs 2e-3 + rel 1e-3 leaves a wide
        // margin while a wrong mask edge, gate or expert choice moves logits by 1e-2 or more. The prompts
        // were chosen with every top-2 router margin >= 1e-4 (recorded in expected.json), so float32 noise
        // cannot flip an expert choice.
        QVERIFY(pr.value("min_router_margin").toDouble() >= 1e-4);
        const double absTol = e.value("tolerance").toObject().value("abs").toDouble();
        const double relTol = e.value("tolerance").toObject().value("rel").toDouble();
        QVERIFY(absTol > 0 && relTol > 0);
        double worst = 0;
        size_t worstAt = 0;
        for (size_t i = 0; i < got.size(); ++i) {
            const double q =
                std::fabs(double(got[i]) - double(want[i])) / (absTol + relTol * std::fabs(double(want[i])));
            if (!(q <= worst)) {
                worst = q;
                worstAt = i;
            }
        }
        QVERIFY2(worst <= 1.0, qPrintable(QString("logit %1 (row %2): engine %3, reference %4")
                                              .arg(worstAt)
                                              .arg(worstAt / size_t(t->shape[1]))
                                              .arg(double(got[worstAt]))
                                              .arg(double(want[worstAt]))));
    }

    void heldoutExcerptPerplexity()
    {
        const QJsonObject ex = expected().value("excerpt").toObject();
        const Run r = cli({"score", "--model", modelDir(), "--text-file", dataDir() + "/" + ex.value("file").toString(),
                           "--no-logits", "--format", "json"});
        QVERIFY2(r.code == 0, r.err.constData());
        const QJsonObject o = QJsonDocument::fromJson(r.out).object();
        // The engine's tokenizer must produce exactly the reference's ids ([<s>] + sentencepiece encode).
        const QJsonArray want = ex.value("token_ids").toArray();
        const QJsonArray ids = o.value("tokens").toArray();
        QCOMPARE(ids.size(), want.size());
        for (qsizetype i = 0; i < ids.size(); ++i) QCOMPARE(ids.at(i).toInt(), want.at(i).toInt());
        // The card's number, to rounding: the perplexity is an average over ~400 tokens of float32 logits.
        const double expectPpl = ex.value("perplexity").toDouble();
        const double ppl = o.value("perplexity").toDouble();
        QVERIFY2(std::fabs(ppl - expectPpl) <= ex.value("perplexity_rel_tolerance").toDouble() * expectPpl,
                 qPrintable(QString("perplexity %1, card %2").arg(ppl, 0, 'f', 4).arg(expectPpl, 0, 'f', 4)));
        QVERIFY(std::fabs(o.value("nll").toDouble() - ex.value("nll").toDouble()) < 5e-3);
    }
};

QTEST_APPLESS_MAIN(TestBundledModel)
#include "tst_bundled_model.moc"
