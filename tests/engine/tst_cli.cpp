// The real sage-cli binary: score against the golden logits, generate, info, and a one-line actionable
// message with a nonzero exit code on every kind of bad input.
#include "GoldenCase.h"

#include "engine/model/RandomCheckpoint.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

class TestCli : public QObject
{
    Q_OBJECT

    struct Run {
        int code = -1;
        QByteArray out, err;
    };

    static Run cli(const QStringList& args)
    {
        QProcess p;
        p.start(QStringLiteral(SAGE_CLI_PATH), args);
        p.waitForFinished(120000);
        return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, p.readAllStandardOutput(),
                p.readAllStandardError()};
    }

    static QString tokensArg(const std::vector<int32_t>& ids)
    {
        QStringList s;
        for (int32_t t : ids) s << QString::number(t);
        return s.join(',');
    }

    static void expectFailure(const QStringList& args, int code, const QString& fragment)
    {
        const Run r = cli(args);
        QVERIFY2(r.code == code, qPrintable(QString("exit %1, want %2: %3").arg(r.code).arg(code).arg(r.err)));
        const QString err = QString::fromUtf8(r.err).trimmed();
        QVERIFY2(err.contains(fragment), qPrintable("stderr lacks '" + fragment + "': " + err));
        QVERIFY2(!err.contains('\n'), qPrintable("error is not one line: " + err));
    }

private slots:
    void scoreMatchesGolden()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe_shared_norm");
        const Run r = cli({"score", "--model", g.dir, "--tokens", tokensArg(g.tokens), "--format", "json"});
        QCOMPARE(r.code, 0);
        const QJsonObject o = QJsonDocument::fromJson(r.out).object();
        const QJsonArray rows = o.value("logits").toArray();
        QCOMPARE(rows.size(), qsizetype(g.tokens.size()));
        std::vector<float> got;
        for (const auto& row : rows)
            for (const auto& v : row.toArray()) got.push_back(float(v.toDouble()));
        QVERIFY(toleranceRatio(got, g.logits("logits"), g.absTol, g.relTol) <= 1.0);
        // nll is the mean next-token negative log-likelihood of those logits.
        const int64_t V = int64_t(got.size() / g.tokens.size());
        double nll = 0;
        for (size_t t = 0; t + 1 < g.tokens.size(); ++t) {
            const float* z = got.data() + t * size_t(V);
            double mx = *std::max_element(z, z + V), s = 0;
            for (int64_t v = 0; v < V; ++v) s += std::exp(z[v] - mx);
            nll -= z[g.tokens[t + 1]] - mx - std::log(s);
        }
        nll /= double(g.tokens.size() - 1);
        QVERIFY(std::fabs(o.value("nll").toDouble() - nll) < 1e-5);
        QVERIFY(std::fabs(o.value("perplexity").toDouble() - std::exp(nll)) < 1e-4 * std::exp(nll));
    }

    void scoreEarlyExit()
    {
        const GoldenCase g = loadGoldenCase("loop2_dense_w4");
        const Run r =
            cli({"score", "--model", g.dir, "--tokens", tokensArg(g.tokens), "--max-loops", "1", "--format", "json"});
        QCOMPARE(r.code, 0);
        std::vector<float> got;
        for (const auto& row : QJsonDocument::fromJson(r.out).object().value("logits").toArray())
            for (const auto& v : row.toArray()) got.push_back(float(v.toDouble()));
        QVERIFY(toleranceRatio(got, g.logits("logits_loops1"), g.absTol, g.relTol) <= 1.0);
    }

    void generateStreamsTokenIds()
    {
        const GoldenCase g = loadGoldenCase("loop2_moe");
        const Run r = cli({"generate", "--model", g.dir, "--tokens", "1,5,9", "--max-tokens", "6", "--format", "json"});
        QCOMPARE(r.code, 0);
        const QJsonObject o = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(o.value("tokens").toArray().size(), 6);
        QCOMPARE(o.value("stop_reason").toString(), QString("max_tokens"));
        const Run t = cli({"generate", "--model", g.dir, "--tokens", "1,5,9", "--max-tokens", "6"});
        QCOMPARE(t.code, 0);
        // Without a tokenizer, text mode prints the ids: the same six as the JSON run.
        QStringList ids;
        for (const auto& v : o.value("tokens").toArray()) ids << QString::number(v.toInt());
        QCOMPARE(QString::fromUtf8(t.out).trimmed(), ids.join(' '));
    }

    void info()
    {
        const Run r = cli({"info", "--model", goldenRoot() + "/loop2_moe", "--format", "json"});
        QCOMPARE(r.code, 0);
        const QJsonObject o = QJsonDocument::fromJson(r.out).object();
        QCOMPARE(o.value("loop_num").toInt(), 2);
        QVERIFY(o.value("num_experts").toInt() > 0);
        QVERIFY(o.value("parameters").toDouble() > 0);
        const Run t = cli({"info", "--model", goldenRoot() + "/loop2_moe"});
        QCOMPARE(t.code, 0);
        QVERIFY(t.out.contains("Parameters") && t.out.contains("Memory needed"));
    }

    // A random-weight model with the test tokenizer: text prompts, streaming text, stop strings.
    void textPromptsAndStopStrings()
    {
        QTemporaryDir tmp;
        const std::filesystem::path dir = tmp.path().toStdString();
        const nlohmann::json config = {{"model_type", "sageloopcoder"},
                                       {"vocab_size", 512},
                                       {"hidden_size", 32},
                                       {"intermediate_size", 64},
                                       {"num_hidden_layers", 2},
                                       {"num_attention_heads", 4},
                                       {"num_key_value_heads", 2},
                                       {"max_position_embeddings", 512},
                                       {"loop_num", 2},
                                       {"loop_window_size", 8}};
        sage::writeRandomCheckpoint(dir, config, sage::DType::BF16, 5);
        for (const char* f : {"tokenizer.model", "tokenizer_config.json"})
            std::filesystem::copy(std::filesystem::path(SAGE_TEST_DATA_DIR) / "tokenizer" / f, dir / f);
        const QString model = tmp.path();

        const Run full = cli({"generate", "--model", model, "--prompt", "def add(a, b):", "--max-tokens", "40",
                              "--temperature", "1.0", "--seed", "11", "--format", "json"});
        QCOMPARE(full.code, 0);
        const QJsonObject o = QJsonDocument::fromJson(full.out).object();
        const QString text = o.value("text").toString();
        QVERIFY2(text.size() >= 12, qPrintable("generated text too short: " + text));
        // Text mode streams exactly the same text.
        const Run streamed = cli({"generate", "--model", model, "--prompt", "def add(a, b):", "--max-tokens", "40",
                                  "--temperature", "1.0", "--seed", "11"});
        QCOMPARE(streamed.code, 0);
        QCOMPARE(QString::fromUtf8(streamed.out), text + "\n");

        // A stop string taken from the middle of that text cuts the output right before it.
        const QString stop = text.mid(text.size() / 2, 3);
        const Run cut = cli({"generate", "--model", model, "--prompt", "def add(a, b):", "--max-tokens", "40",
                             "--temperature", "1.0", "--seed", "11", "--stop", stop, "--format", "json"});
        QCOMPARE(cut.code, 0);
        const QJsonObject c2 = QJsonDocument::fromJson(cut.out).object();
        QCOMPARE(c2.value("stop_reason").toString(), QString("stop_string"));
        QCOMPARE(c2.value("text").toString(), text.left(text.indexOf(stop)));

        // score --text encodes with the tokenizer (BOS added per tokenizer_config.json).
        const Run s = cli({"score", "--model", model, "--text", "x = 1", "--no-logits", "--format", "json"});
        QCOMPARE(s.code, 0);
        const QJsonObject so = QJsonDocument::fromJson(s.out).object();
        QCOMPARE(so.value("tokens").toArray().first().toInt(), 1);
        QVERIFY(!so.contains("logits"));
        QVERIFY(so.value("perplexity").toDouble() > 1.0);
    }

    void badInput()
    {
        const QString model = goldenRoot() + "/loop2_dense_w4";
        QTemporaryDir tmp;
        expectFailure({"frobnicate"}, 2, "unknown command");
        expectFailure({"score", "--model", model, "--tokens", "1,2", "--bogus", "1"}, 2, "unknown option --bogus");
        expectFailure({"score", "--model", model, "--tokens", "1,x,3"}, 2, "--tokens");
        expectFailure({"score", "--model", model, "--tokens", ""}, 2, "--tokens");
        expectFailure({"generate", "--model", model, "--tokens", "1", "--top-p", "2"}, 2, "--top-p");
        expectFailure({"generate", "--model", model, "--tokens", "1", "--max-loops", "5"}, 2, "--max-loops");
        expectFailure({"generate", "--model", model}, 2, "exactly one of --prompt or --tokens");
        expectFailure({"score", "--model", model, "--tokens", "1,99999"}, 1, "outside the vocabulary");
        expectFailure({"generate", "--model", model, "--prompt", "hello"}, 1, "no tokenizer.model");
        expectFailure({"info", "--model", tmp.path() + "/none"}, 1, "is not a folder");
        expectFailure({"info", "--model", tmp.path()}, 1, "config.json");
        expectFailure({"score", "--model", model, "--text-file", tmp.path() + "/missing.txt"}, 1, "no tokenizer.model");
        // A prompt longer than the context: the golden configs allow max_position_embeddings tokens.
        const auto m = QJsonDocument::fromJson([&] {
                           QFile f(model + "/config.json");
                           f.open(QIODevice::ReadOnly);
                           return f.readAll();
                       }())
                           .object();
        const int ctx = m.value("max_position_embeddings").toInt();
        QStringList many;
        for (int i = 0; i <= ctx; ++i) many << "1";
        expectFailure({"score", "--model", model, "--tokens", many.join(',')}, 1, "exceeds the context");
    }
};

QTEST_APPLESS_MAIN(TestCli)
#include "tst_cli.moc"
