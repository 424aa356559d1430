// Sampling filters and their distributions, seeds, generation stop conditions, cancellation and the
// session's error handling (bad ids, full context), all on golden checkpoints.
#include "GoldenCase.h"

#include "engine/core/SageError.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/runtime/Generator.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/runtime/Sampler.h"

#include <QtTest>

#include <atomic>
#include <cmath>
#include <numeric>
#include <thread>

using namespace sage;

namespace {

std::vector<double> softmax(const std::vector<float>& z, double t = 1.0)
{
    double mx = *std::max_element(z.begin(), z.end());
    std::vector<double> p(z.size());
    double s = 0;
    for (size_t i = 0; i < z.size(); ++i) s += (p[i] = std::exp((z[i] - mx) / t));
    for (double& v : p) v /= s;
    return p;
}

} // namespace

class TestGeneration : public QObject
{
    Q_OBJECT

private slots:
    void greedyPicksArgmaxAndReportsStatistics()
    {
        Sampler s(SamplingParams{});
        const std::vector<float> z = {0.1f, 2.0f, -1.0f, 1.5f};
        const TokenChoice c = s.sample(z, {}, 3);
        QCOMPARE(c.token, 1);
        const std::vector<double> p = softmax(z);
        QVERIFY(std::fabs(c.probability - p[1]) < 1e-6);
        QVERIFY(std::fabs(c.margin - (p[1] - p[3])) < 1e-6);
        double h = 0;
        for (double v : p) h -= v * std::log(v);
        QVERIFY(std::fabs(c.entropy - h) < 1e-5);
        QCOMPARE(int(c.alternatives.size()), 3);
        QCOMPARE(c.alternatives[1].first, 3);
    }

    void temperatureSamplingMatchesSoftmax()
    {
        // 40000 draws: each frequency lies within 5 standard deviations of its probability.
        const std::vector<float> z = {1.0f, 0.0f, -0.5f, 2.0f, 0.3f};
        SamplingParams sp;
        sp.temperature = 0.7;
        sp.seed = 1234;
        Sampler s(sp);
        const std::vector<double> p = softmax(z, 0.7);
        std::vector<int> counts(z.size(), 0);
        const int n = 40000;
        for (int i = 0; i < n; ++i) counts[size_t(s.sample(z, {}, 2).token)]++;
        for (size_t i = 0; i < z.size(); ++i) {
            const double sd = std::sqrt(n * p[i] * (1 - p[i]));
            QVERIFY2(std::fabs(counts[i] - n * p[i]) < 5 * sd + 1,
                     qPrintable(QString("token %1: %2 draws, expected %3").arg(i).arg(counts[i]).arg(n * p[i])));
        }
    }

    void filtersKeepExactlyTheRightTokens()
    {
        const std::vector<float> z = {3.0f, 2.0f, 1.0f, 0.0f, -1.0f, -2.0f};
        const std::vector<double> p = softmax(z);
        SamplingParams sp;
        sp.temperature = 1.0;
        sp.topK = 2;
        std::vector<double> q = Sampler(sp).filteredDistribution(z, {});
        QVERIFY(q[0] > 0 && q[1] > 0 && q[2] == 0 && q[5] == 0);
        QVERIFY(std::fabs(q[0] - p[0] / (p[0] + p[1])) < 1e-12);

        sp = SamplingParams{};
        sp.temperature = 1.0;
        sp.topP = p[0] + p[1] + 0.5 * p[2]; // needs the third token to reach the mass
        q = Sampler(sp).filteredDistribution(z, {});
        QVERIFY(q[2] > 0 && q[3] == 0);
        sp.topP = p[0] * 0.5; // the top token alone always survives
        q = Sampler(sp).filteredDistribution(z, {});
        QCOMPARE(q[0], 1.0);

        sp = SamplingParams{};
        sp.temperature = 1.0;
        sp.minP = 0.1; // keeps p >= 0.1 * p_max: e^-k >= 0.1 for k <= 2
        q = Sampler(sp).filteredDistribution(z, {});
        QVERIFY(q[2] > 0 && q[3] == 0);

        sp = SamplingParams{};
        sp.temperature = 1.0;
        sp.repetitionPenalty = 2.0;
        const std::vector<int32_t> hist = {0, 5};
        q = Sampler(sp).filteredDistribution(z, hist);
        const std::vector<double> expect = softmax({1.5f, 2.0f, 1.0f, 0.0f, -1.0f, -4.0f});
        for (size_t i = 0; i < z.size(); ++i) QVERIFY(std::fabs(q[i] - expect[i]) < 1e-9);
    }

    void invalidParametersAreRejected()
    {
        SamplingParams sp;
        sp.topP = 0.0;
        QVERIFY_THROWS_EXCEPTION(SageError, Sampler{sp});
        sp = SamplingParams{};
        sp.repetitionPenalty = 0.0;
        QVERIFY_THROWS_EXCEPTION(SageError, Sampler{sp});
    }

    void sameSeedSameTokens()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        auto run = [&](uint64_t seed) {
            InferenceSession s(*model, pool);
            GenerationRequest r;
            r.prompt = std::vector<int32_t>(g.tokens.begin(), g.tokens.begin() + 5);
            r.maxNewTokens = 20;
            r.sampling.temperature = 1.5;
            r.sampling.topP = 0.95;
            r.sampling.seed = seed;
            return generate(s, nullptr, r).tokens();
        };
        const auto a = run(7), b = run(7), c = run(8);
        QCOMPARE(a.size(), size_t(20));
        QVERIFY(a == b);
        QVERIFY(a != c); // 20 draws at temperature 1.5 over ~100 tokens: equal streams are (practically) impossible
    }

    void greedyGenerationEqualsArgmaxOfScoring()
    {
        // Generated tokens are the argmax of a teacher-forced pass over the final sequence.
        const GoldenCase g = loadGoldenCase("loop3_dense");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        InferenceSession s(*model, pool);
        GenerationRequest r;
        r.prompt = std::vector<int32_t>(g.tokens.begin(), g.tokens.begin() + 6);
        r.maxNewTokens = 12;
        const GenerationResult res = generate(s, nullptr, r);
        QCOMPARE(res.reason, StopReason::MaxTokens);
        std::vector<int32_t> seq = r.prompt;
        for (int32_t t : res.tokens()) seq.push_back(t);
        InferenceSession s2(*model, pool);
        std::vector<float> logits;
        s2.forward(seq, true, logits);
        const int64_t V = model->config().vocabSize;
        for (size_t i = 0; i < res.steps.size(); ++i) {
            const float* row = logits.data() + (r.prompt.size() - 1 + i) * size_t(V);
            QCOMPARE(int32_t(std::max_element(row, row + V) - row), res.steps[i].token);
        }
    }

    void stopsAtEndOfSequence()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        InferenceSession s(*model, pool);
        GenerationRequest r;
        r.prompt = std::vector<int32_t>(g.tokens.begin(), g.tokens.begin() + 5);
        r.maxNewTokens = 10;
        const auto first = generate(s, nullptr, r).tokens();
        // Declare the 4th greedy token an end-of-sequence id: generation stops right after it.
        InferenceSession s2(*model, pool);
        r.eosTokenIds = {first[3]};
        const GenerationResult res = generate(s2, nullptr, r);
        QCOMPARE(res.reason, StopReason::EndOfSequence);
        const auto it = std::find(first.begin(), first.end(), first[3]);
        QCOMPARE(res.steps.size(), size_t(it - first.begin()) + 1);
    }

    void contextLimitsAreEnforced()
    {
        const GoldenCase g = loadGoldenCase("loop2_dense_w4");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(1);
        InferenceSession s(*model, pool, SessionOptions{8, 0});
        std::vector<float> logits;
        try {
            s.forward(g.tokens, false, logits); // more than 8 tokens
            QFAIL("expected an error");
        } catch (const SageError& e) {
            QVERIFY(QString(e.what()).contains("exceeds the context of 8 tokens"));
        }
        QCOMPARE(s.position(), int64_t(0));
        // Generation stops cleanly when the context fills up.
        GenerationRequest r;
        r.prompt = {1, 2, 3};
        r.maxNewTokens = 50;
        const GenerationResult res = generate(s, nullptr, r);
        QCOMPARE(res.reason, StopReason::ContextFull);
        QCOMPARE(s.position(), int64_t(8));
        QCOMPARE(res.steps.size(), size_t(6)); // 5 tokens fed back + the last sampled one
    }

    void badTokenIdsAndEmptyPrompts()
    {
        const GoldenCase g = loadGoldenCase("loop2_dense_w4");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(1);
        InferenceSession s(*model, pool);
        std::vector<float> logits;
        const std::vector<int32_t> bad = {1, int32_t(model->config().vocabSize)};
        QVERIFY_THROWS_EXCEPTION(SageError, s.forward(bad, false, logits));
        QVERIFY_THROWS_EXCEPTION(SageError, s.forward(std::vector<int32_t>{}, false, logits));
        GenerationRequest r;
        QVERIFY_THROWS_EXCEPTION(SageError, generate(s, nullptr, r));
        QCOMPARE(s.position(), int64_t(0));
    }

    void cancellationStopsAndKeepsTheSessionConsistent()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(2);
        // Cancelled before the prefill: nothing is processed and the state is unchanged.
        std::atomic<bool> cancel{true};
        InferenceSession s(*model, pool);
        std::vector<float> logits;
        QVERIFY_THROWS_EXCEPTION(CancelledError, s.forward(g.tokens, false, logits, &cancel));
        QCOMPARE(s.position(), int64_t(0));
        // Cancelled from the step callback (as another thread would): generation ends with what it has.
        cancel = false;
        GenerationRequest r;
        r.prompt = std::vector<int32_t>(g.tokens.begin(), g.tokens.begin() + 4);
        r.maxNewTokens = 100;
        const GenerationResult res = generate(
            s, nullptr, r, [&](int64_t step, const TokenChoice&, const std::string&) { if (step == 4) cancel = true; },
            &cancel);
        QCOMPARE(res.reason, StopReason::Cancelled);
        QCOMPARE(res.steps.size(), size_t(5));
        // The session still continues exactly like a fresh one fed the same tokens.
        std::vector<int32_t> seq = s.tokens();
        std::vector<float> a, b;
        const int32_t next = 7;
        s.forward(std::span<const int32_t>(&next, 1), false, a);
        seq.push_back(next);
        InferenceSession fresh(*model, pool);
        fresh.forward(seq, false, b);
        QVERIFY(toleranceRatio(a, b, 1e-5, 1e-5) <= 1.0);
    }

    void cancellationFromAnotherThread()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        auto model = Model::load(g.dir.toStdString());
        cpu::ThreadPool pool(1);
        InferenceSession s(*model, pool);
        std::atomic<bool> cancel{false};
        std::atomic<int> steps{0};
        GenerationRequest r;
        r.prompt = {1, 2, 3};
        r.maxNewTokens = 1000000;
        std::thread t([&] {
            while (steps.load() < 3) std::this_thread::yield();
            cancel = true;
        });
        const GenerationResult res = generate(s, nullptr, r, [&](int64_t, const TokenChoice&, const std::string&) { ++steps; },
                                              &cancel);
        t.join();
        QCOMPARE(res.reason, StopReason::Cancelled);
        QVERIFY(res.steps.size() >= 3);
        // The last sampled token is in the session unless the cancel arrived while it was being fed.
        const int64_t n = int64_t(res.steps.size());
        QVERIFY(s.position() == 3 + n || s.position() == 3 + n - 1);
    }
};

QTEST_APPLESS_MAIN(TestGeneration)
#include "tst_generation.moc"
