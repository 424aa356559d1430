// The engine against the PyTorch reference (tools/reference) on every golden checkpoint: full prefill,
// token-by-token decode, chunked prefill, early exit after loop 1 (and 2), and thread-count independence.
#include "GoldenCase.h"

#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/runtime/InferenceSession.h"

#include <QtTest>

using namespace sage;

class TestGolden : public QObject
{
    Q_OBJECT

private:
    static std::vector<float> runPrefill(const Model& m, cpu::ThreadPool& pool, const std::vector<int32_t>& ids,
                                         int64_t maxLoops = 0)
    {
        InferenceSession s(m, pool, SessionOptions{0, maxLoops});
        std::vector<float> logits;
        s.forward(ids, true, logits);
        return logits;
    }

    static void compare(const GoldenCase& g, const std::vector<float>& got, const std::string& tensor)
    {
        const std::vector<float> want = g.logits(tensor);
        QVERIFY2(!want.empty(), qPrintable(g.name + ": golden tensor missing: " + QString::fromStdString(tensor)));
        size_t worst = 0;
        const double ratio = toleranceRatio(got, want, g.absTol, g.relTol, &worst);
        QVERIFY2(ratio <= 1.0, qPrintable(QString("%1 %2: |engine - reference| exceeds abs %3 + rel %4 at %5: %6 vs %7")
                                              .arg(g.name, QString::fromStdString(tensor))
                                              .arg(g.absTol)
                                              .arg(g.relTol)
                                              .arg(worst)
                                              .arg(double(got[worst]), 0, 'g', 9)
                                              .arg(double(want[worst]), 0, 'g', 9)));
    }

private slots:
    void cases_data()
    {
        QTest::addColumn<QString>("name");
        const QStringList names = goldenCaseNames();
        QVERIFY2(names.size() >= 10, "expected the golden checkpoints in tests/data/golden");
        for (const QString& n : names) QTest::newRow(qPrintable(n)) << n;
    }

    void cases()
    {
        QFETCH(QString, name);
        const GoldenCase g = loadGoldenCase(name);
        auto model = Model::load(g.dir.toStdString());
        const int64_t V = model->config().vocabSize;
        cpu::ThreadPool pool(2);

        // 1. Prefill of the whole sequence.
        const std::vector<float> prefill = runPrefill(*model, pool, g.tokens);
        compare(g, prefill, "logits");

        // 2. Token-by-token decode gives the same logits.
        {
            InferenceSession s(*model, pool);
            std::vector<float> all, step;
            for (int32_t t : g.tokens) {
                s.forward(std::span<const int32_t>(&t, 1), true, step);
                all.insert(all.end(), step.begin(), step.end());
            }
            compare(g, all, "logits");
            // Decode and prefill agree closely with each other, not only with the reference.
            QVERIFY(toleranceRatio(all, prefill, 1e-5, 1e-5) <= 1.0);
        }

        // 3. Uneven chunks (crossing the loop window) give the same logits; last-position-only output too.
        {
            InferenceSession s(*model, pool);
            std::vector<float> all, part;
            const size_t T = g.tokens.size();
            const size_t cuts[] = {0, 3, 3 + T / 2, T};
            for (int c = 0; c < 3; ++c) {
                s.forward(std::span<const int32_t>(g.tokens.data() + cuts[c], cuts[c + 1] - cuts[c]), true, part);
                all.insert(all.end(), part.begin(), part.end());
            }
            compare(g, all, "logits");
            InferenceSession s2(*model, pool);
            s2.forward(g.tokens, false, part);
            QCOMPARE(int64_t(part.size()), V);
            // The last-position-only head runs a matrix-vector product instead of the blocked matrix
            // product, so the summation order (not the result) may differ.
            const std::vector<float> lastRow(prefill.end() - V, prefill.end());
            QVERIFY(toleranceRatio(part, lastRow, 1e-5, 1e-5) <= 1.0);
        }

        // 4. Early exit after loop 1 (and loop 2 for three-loop models).
        for (int64_t loops = 1; loops < model->config().loopNum; ++loops)
            compare(g, runPrefill(*model, pool, g.tokens, loops), "logits_loops" + std::to_string(loops));

        // 5. The thread count does not change a single bit.
        cpu::ThreadPool one(1), three(3);
        QVERIFY(runPrefill(*model, one, g.tokens) == prefill);
        QVERIFY(runPrefill(*model, three, g.tokens) == prefill);
    }

    void copiedSessionContinuesIdentically()
    {
        const GoldenCase g = loadGoldenCase("loop2_dense_w4");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        InferenceSession a(*model, pool);
        std::vector<float> la, lb;
        const size_t half = g.tokens.size() / 2;
        a.forward(std::span<const int32_t>(g.tokens.data(), half), false, la);
        InferenceSession b(a);
        a.forward(std::span<const int32_t>(g.tokens.data() + half, g.tokens.size() - half), true, la);
        b.forward(std::span<const int32_t>(g.tokens.data() + half, g.tokens.size() - half), true, lb);
        QVERIFY(la == lb);
        QCOMPARE(a.position(), int64_t(g.tokens.size()));
    }
};

QTEST_APPLESS_MAIN(TestGolden)
#include "tst_golden.moc"
