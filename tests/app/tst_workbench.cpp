// End-to-end tests of the workbench window offscreen: loading, generation through the EngineWorker against
// generate() run directly on the engine, Stop, error reporting, and the --screenshot automation path.
#include "app/workbench/MainWindow.h"
#include "app/workbench/ModelSummaryPanel.h"
#include "app/workbench/PreferencesDialog.h"
#include "app/workbench/SamplingPanel.h"
#include "app/workbench/WorkbenchSettings.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/io/SafeTensorsWriter.h"
#include "engine/model/Model.h"
#include "engine/runtime/Generator.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/tokenizer/Tokenizer.h"
#include "viz/AttentionHeatmapView.h"
#include "viz/GateStatsModel.h"
#include "viz/HeatmapCanvas.h"
#include "viz/LoopComparisonView.h"
#include "viz/RunDocument.h"
#include "viz/TokenStreamModel.h"

#include <QAction>
#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDockWidget>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSet>
#include <QSignalSpy>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

using namespace sage;
namespace fs = std::filesystem;

namespace {

const QString kGolden = QStringLiteral(SAGE_TEST_DATA_DIR "/golden/");

nlohmann::json readJson(const fs::path& p)
{
    std::ifstream in(p);
    return nlohmann::json::parse(in);
}

// A copy of a golden checkpoint with config.json edited.
void copyCheckpoint(const QString& golden, const fs::path& dst, const std::function<void(nlohmann::json&)>& edit)
{
    const fs::path src = (kGolden + golden).toStdString();
    fs::create_directories(dst);
    fs::copy_file(src / "model.safetensors", dst / "model.safetensors");
    nlohmann::json j = readJson(src / "config.json");
    edit(j);
    std::ofstream(dst / "config.json") << j.dump(2);
}

// A small random-weight model whose vocabulary matches the test tokenizer, so text prompts work: the
// loop2_moe architecture with vocab_size raised to the tokenizer's, weights generated deterministically.
void makeTokenizerModel(const fs::path& dst)
{
    fs::create_directories(dst);
    const fs::path tokDir = SAGE_TEST_DATA_DIR "/tokenizer";
    fs::copy_file(tokDir / "tokenizer.model", dst / "tokenizer.model");
    fs::copy_file(tokDir / "tokenizer_config.json", dst / "tokenizer_config.json");
    const int vocab = Tokenizer::load(tokDir)->vocabSize();
    nlohmann::json j = readJson(fs::path(SAGE_TEST_DATA_DIR "/golden/loop2_moe/config.json"));
    j["vocab_size"] = vocab;
    std::ofstream(dst / "config.json") << j.dump(2);
    const ModelConfig config = ModelConfig::fromJson(j, "config.json");
    SafeTensorsWriter w;
    uint64_t state = 0x9e3779b97f4a7c15ull;
    for (const TensorSpec& spec : config.tensorSpecs()) {
        const bool norm = spec.name.find("norm") != std::string::npos;
        w.addGenerated(spec.name, DType::F32, spec.shape, [&state, norm](uint8_t* dst, uint64_t bytes) {
            for (uint64_t i = 0; i < bytes / 4; ++i) {
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                const float u = float((state >> 40) & 0xffffff) / float(0x1000000); // [0, 1)
                const float v = norm ? 1.0f : (u - 0.5f) * 0.5f;
                std::memcpy(dst + 4 * i, &v, 4);
            }
        });
    }
    w.write(dst / "model.safetensors");
}

void waitForState(MainWindow& w, MainWindow::State s, int timeoutMs = 30000)
{
    QTRY_COMPARE_WITH_TIMEOUT(w.state(), s, timeoutMs);
}

// Shows w on the bundled model and generates `tokens` tokens (greedy) from a short prompt; returns when the run
// finished (callers check QTest::currentTestFailed()).
void generateOnBundled(MainWindow& w, int tokens)
{
    w.setPersistState(false);
    w.show();
    w.openModel(MainWindow::bundledModelFolder());
    waitForState(w, MainWindow::State::Ready);
    w.setPromptText("def add(a, b):");
    GenerationSettings gs;
    gs.maxTokens = tokens;
    w.samplingPanel()->setSettings(gs);
    QSignalSpy finished(&w, &MainWindow::generationFinished);
    QVERIFY(w.startGeneration());
    QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 60000);
}

} // namespace

class TestWorkbench : public QObject
{
    Q_OBJECT

    QTemporaryDir m_tmp;
    std::unique_ptr<WorkbenchSettings> m_settings;
    QString m_tokenizerModel;
    QString m_longModel;

private slots:
    void initTestCase()
    {
        QVERIFY(m_tmp.isValid());
        m_settings = std::make_unique<WorkbenchSettings>(m_tmp.filePath("settings.ini"));
        m_settings->setReopenLastModel(false);
        m_tokenizerModel = m_tmp.filePath("tokenizer-model");
        makeTokenizerModel(m_tokenizerModel.toStdString());
        // Context large enough and no end-of-sequence id, so generation runs until stopped.
        m_longModel = m_tmp.filePath("long-model");
        copyCheckpoint("loop2_moe", m_longModel.toStdString(), [](nlohmann::json& j) {
            j["max_position_embeddings"] = 1 << 20;
            j.erase("eos_token_id");
        });
    }

    void generationMatchesTheEngine_data()
    {
        QTest::addColumn<QString>("folder");
        QTest::addColumn<QString>("prompt"); // token ids when the model has no tokenizer
        QTest::addColumn<bool>("ids");
        QTest::addColumn<int>("maxTokens");
        QTest::addColumn<double>("temperature");
        QTest::addColumn<int>("topK");
        QTest::addColumn<int>("seed");
        QTest::addColumn<int>("maxLoops");
        QTest::newRow("golden moe, greedy") << kGolden + "loop2_moe"
                                            << "1, 5, 9, 13" << true << 24 << 0.0 << 0 << 0 << 0;
        QTest::newRow("golden moe, sampled") << kGolden + "loop2_moe"
                                             << "3 7 11" << true << 30 << 0.9 << 20 << 7 << 0;
        QTest::newRow("golden loop3, early exit") << kGolden + "loop3_dense"
                                                  << "2,4,6" << true << 12 << 0.0 << 0 << 0 << 1;
        QTest::newRow("tokenizer model, text")
            << m_tokenizerModel << "def fibonacci(n):" << false << 20 << 0.0 << 0 << 0 << 0;
    }

    void generationMatchesTheEngine()
    {
        QFETCH(QString, folder);
        QFETCH(QString, prompt);
        QFETCH(bool, ids);
        QFETCH(int, maxTokens);
        QFETCH(double, temperature);
        QFETCH(int, topK);
        QFETCH(int, seed);
        QFETCH(int, maxLoops);

        MainWindow w(m_settings.get());
        w.setPersistState(false);
        w.show();
        QSignalSpy loaded(&w, &MainWindow::modelLoaded);
        w.openModel(folder);
        QCOMPARE(w.state(), MainWindow::State::Loading);
        waitForState(w, MainWindow::State::Ready);
        QCOMPARE(loaded.count(), 1);
        QCOMPARE(w.modelSummaryPanel()->value("Tokenizer").startsWith("yes"), !ids);

        if (ids) {
            QList<int> list;
            QString error;
            QVERIFY(MainWindow::parseTokenIds(prompt, &list, &error));
            w.setPromptTokens(list);
        } else {
            w.setPromptText(prompt);
        }
        GenerationSettings gs;
        gs.maxTokens = maxTokens;
        gs.temperature = temperature;
        gs.topK = topK;
        gs.seed = quint64(seed);
        gs.maxLoops = maxLoops;
        w.samplingPanel()->setSettings(gs);

        QSignalSpy finished(&w, &MainWindow::generationFinished);
        QVERIFY(w.startGeneration());
        QCOMPARE(w.state(), MainWindow::State::Generating);
        QVERIFY(!w.generateAction()->isEnabled());
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 60000);
        QCOMPARE(w.state(), MainWindow::State::Ready);

        // The same request straight on the engine.
        auto model = Model::load(folder.toStdString());
        GenerationRequest req;
        if (ids) {
            QList<int> list;
            QString error;
            MainWindow::parseTokenIds(prompt, &list, &error);
            for (int id : list) req.prompt.push_back(id);
        } else {
            req.prompt = model->tokenizer()->encode(prompt.toStdString());
        }
        req.maxNewTokens = maxTokens;
        req.sampling.temperature = temperature;
        req.sampling.topK = topK;
        req.sampling.seed = uint64_t(seed);
        req.eosTokenIds = model->eosTokenIds();
        cpu::ThreadPool pool(m_settings->threads());
        SessionOptions options;
        options.maxLoops = maxLoops;
        InferenceSession session(*model, pool, options);
        const GenerationResult expected = generate(session, model->tokenizer(), req);

        const RunDocument* doc = w.document();
        QCOMPARE(doc->promptLength(), int(req.prompt.size()));
        for (int i = 0; i < doc->promptLength(); ++i) QCOMPARE(doc->promptToken(i).token, req.prompt[size_t(i)]);
        QCOMPARE(doc->stepCount(), int(expected.steps.size()));
        QCOMPARE(doc->stopReason(), QString::fromLatin1(stopReasonName(expected.reason)));
        QCOMPARE(doc->generatedText(), QString::fromStdString(expected.text));
        for (int s = 0; s < doc->stepCount(); ++s) {
            const GeneratedStep& got = doc->step(s);
            const TokenChoice& want = expected.steps[size_t(s)];
            QCOMPARE(got.token, want.token);
            QCOMPARE(got.probability, want.probability); // same code, same inputs: bitwise equal
            QCOMPARE(got.entropy, want.entropy);
            QCOMPARE(got.alternatives.size(), qsizetype(want.alternatives.size()));
            for (qsizetype a = 0; a < got.alternatives.size(); ++a)
                QCOMPARE(got.alternatives[a].token, want.alternatives[size_t(a)].first);
            if (!ids)
                QCOMPARE(got.text, QString::fromStdString(model->tokenizer()->pieceText(want.token)));
            else
                QCOMPARE(got.text, QString::number(want.token));
        }

        // The token stream model mirrors the run: prompt rows, then one row per step.
        const TokenStreamModel* tm = w.tokenStreamModel();
        QCOMPARE(tm->rowCount(), doc->promptLength() + doc->stepCount());
        for (int s = 0; s < doc->stepCount(); ++s) {
            const QModelIndex idx = tm->index(doc->promptLength() + s);
            QCOMPARE(idx.data(TokenStreamModel::TokenIdRole).toInt(), expected.steps[size_t(s)].token);
            QCOMPARE(idx.data(TokenStreamModel::StepRole).toInt(), s);
        }
        QVERIFY(tm->index(0).data(TokenStreamModel::IsPromptRole).toBool());
    }

    void stopCancelsALongGenerationPromptly()
    {
        MainWindow w(m_settings.get());
        w.setPersistState(false);
        w.show();
        w.openModel(m_longModel);
        waitForState(w, MainWindow::State::Ready);
        w.setPromptTokens({1, 2, 3});
        GenerationSettings gs;
        gs.maxTokens = 100000;
        w.samplingPanel()->setSettings(gs);

        QSignalSpy finished(&w, &MainWindow::generationFinished);
        QVERIFY(w.startGeneration());
        QTRY_VERIFY_WITH_TIMEOUT(w.document()->stepCount() >= 8, 30000); // steps stream in while it runs
        QCOMPARE(w.state(), MainWindow::State::Generating);
        QVERIFY(w.stopAction()->isEnabled());
        w.stopAction()->trigger();
        QVERIFY(w.state() == MainWindow::State::Stopping || w.state() == MainWindow::State::Ready);
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 10000);
        QCOMPARE(finished.at(0).at(0).toString(), QStringLiteral("cancelled"));
        QCOMPARE(w.state(), MainWindow::State::Ready);
        QVERIFY(w.generateAction()->isEnabled());
        QVERIFY(!w.stopAction()->isEnabled());
        QVERIFY(w.document()->stepCount() < 100000);
        QCOMPARE(w.tokenStreamModel()->rowCount(), 3 + w.document()->stepCount());

        // The window is usable again: a short generation runs to completion.
        gs.maxTokens = 4;
        w.samplingPanel()->setSettings(gs);
        QVERIFY(w.startGeneration());
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 30000);
        QCOMPARE(w.document()->stepCount(), 4);
    }

    void shortcutsGenerateAndStop()
    {
        MainWindow w(m_settings.get());
        w.setPersistState(false);
        w.show();
        QApplication::setActiveWindow(&w);
        QVERIFY(QTest::qWaitForWindowActive(&w));
        w.openModel(m_longModel);
        waitForState(w, MainWindow::State::Ready);
        w.setPromptTokens({4, 5});
        GenerationSettings gs;
        gs.maxTokens = 100000;
        w.samplingPanel()->setSettings(gs);
        auto* editor = w.findChild<QPlainTextEdit*>("promptEditor");
        editor->setFocus();
        QSignalSpy finished(&w, &MainWindow::generationFinished);
        QTest::keyClick(editor, Qt::Key_Return, Qt::ControlModifier); // Ctrl+Return in the prompt editor
        QCOMPARE(w.state(), MainWindow::State::Generating);
        QCOMPARE(editor->toPlainText(), QStringLiteral("4, 5")); // no newline typed
        QTRY_VERIFY_WITH_TIMEOUT(w.document()->stepCount() >= 2, 30000);
        QTest::keyClick(editor, Qt::Key_Escape);
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 10000);
        QCOMPARE(finished.at(0).at(0).toString(), QStringLiteral("cancelled"));
        QCOMPARE(w.state(), MainWindow::State::Ready);
    }

    void resultsOfSupersededJobsAreDropped()
    {
        MainWindow w(m_settings.get());
        w.setPersistState(false);
        w.openModel(m_longModel);
        waitForState(w, MainWindow::State::Ready);
        w.setPromptTokens({1, 2, 3});
        GenerationSettings gs;
        gs.maxTokens = 100000;
        w.samplingPanel()->setSettings(gs);
        QSignalSpy finished(&w, &MainWindow::generationFinished);
        QVERIFY(w.startGeneration());
        QTRY_VERIFY_WITH_TIMEOUT(w.document()->stepCount() >= 3, 30000);
        // Opening another model cancels the generation; its late batches and its end are ignored.
        w.openModel(kGolden + "loop3_dense");
        waitForState(w, MainWindow::State::Ready);
        QCOMPARE(w.document()->stepCount(), 0);
        QCOMPARE(w.tokenStreamModel()->rowCount(), 0);
        QTest::qWait(100);
        QCOMPARE(w.document()->stepCount(), 0);
        QCOMPARE(finished.count(), 0);
        QVERIFY(w.modelFolder().endsWith("loop3_dense"));
    }

    void badModelFolderShowsTheErrorAndKeepsRunning()
    {
        MainWindow w(m_settings.get());
        w.setPersistState(false);
        w.show();
        QSignalSpy failed(&w, &MainWindow::modelLoadFailed);
        const QString missing = m_tmp.filePath("no-such-model");
        w.openModel(missing);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 30000);
        const QString message = failed.at(0).at(0).toString();
        QVERIFY2(message.contains("config.json") && message.contains("no-such-model"), qPrintable(message));
        QCOMPARE(w.lastError(), message);
        QCOMPARE(w.state(), MainWindow::State::NoModel);
        const QList<QLabel*> labels = w.findChildren<QLabel*>();
        QVERIFY(std::any_of(labels.begin(), labels.end(),
                            [&](QLabel* l) { return l->isVisible() && l->text() == message; }));

        // A good model loads afterwards; then a broken one leaves it loaded.
        w.openModel(kGolden + "loop2_moe");
        waitForState(w, MainWindow::State::Ready);
        const QString broken = m_tmp.filePath("broken-model");
        copyCheckpoint("loop2_moe", broken.toStdString(), [](nlohmann::json& j) { j["hidden_size"] = 48; });
        w.openModel(broken);
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 2, 30000);
        QVERIFY2(failed.at(1).at(0).toString().contains("has shape"), qPrintable(failed.at(1).at(0).toString()));
        QCOMPARE(w.state(), MainWindow::State::Ready);
        QVERIFY(w.modelFolder().endsWith("loop2_moe"));

        // A prompt that is not a list of ids is reported, not sent.
        QSignalSpy genFailed(&w, &MainWindow::generationFailed);
        w.setPromptTokens({1});
        w.findChild<QPlainTextEdit*>("promptEditor")->setPlainText("1, x");
        QVERIFY(!w.startGeneration());
        QCOMPARE(genFailed.count(), 1);
        QVERIFY2(w.lastError().contains("'x'"), qPrintable(w.lastError()));
        QCOMPARE(w.state(), MainWindow::State::Ready);

        // A text prompt on a model without tokenizer fails in the engine with its message.
        w.setPromptText("hello");
        QVERIFY(w.startGeneration());
        QTRY_COMPARE_WITH_TIMEOUT(genFailed.count(), 2, 30000);
        QVERIFY2(genFailed.at(1).at(0).toString().contains("tokenizer.model"), qPrintable(w.lastError()));
        QCOMPARE(w.state(), MainWindow::State::Ready);
    }

    void explainPreferencesPersistAndAreClamped()
    {
        // Defaults of docs/ir.md; Preferences writes what its fields show; a hand-edited settings file with
        // values out of range (or not numbers) reads back clamped to the ranges Preferences offers.
        const QString file = m_tmp.filePath("explain.ini");
        {
            WorkbenchSettings settings(file);
            const ExplainSettings d = settings.explain();
            QCOMPARE(d.entropyThreshold, 1.0);
            QCOMPARE(d.marginThreshold, 0.2);
            QCOMPARE(d.maxDecisionPoints, 8);
            QCOMPARE(d.branchesPerPoint, 2);
            QCOMPARE(d.branchLength, 12);
            QVERIFY(d.faithfulness);
            PreferencesDialog dialog(settings);
            QCOMPARE(dialog.findChild<QDoubleSpinBox*>("explainEntropy")->value(), 1.0);
            dialog.findChild<QDoubleSpinBox*>("explainEntropy")->setValue(1.75);
            dialog.findChild<QDoubleSpinBox*>("explainMargin")->setValue(0.125);
            dialog.findChild<QSpinBox*>("explainPoints")->setValue(3);
            dialog.findChild<QSpinBox*>("explainBranches")->setValue(4);
            dialog.findChild<QSpinBox*>("explainBranchLength")->setValue(30);
            dialog.findChild<QCheckBox*>("explainFaithfulness")->setChecked(false);
            dialog.findChild<QSpinBox*>("explainBranches")->setValue(99); // the spin box stops at its maximum
            QCOMPARE(dialog.findChild<QSpinBox*>("explainBranches")->value(), 5);
            dialog.store(settings);
            settings.sync();
        }
        {
            WorkbenchSettings settings(file);
            const ExplainSettings e = settings.explain();
            QCOMPARE(e.entropyThreshold, 1.75);
            QCOMPARE(e.marginThreshold, 0.125);
            QCOMPARE(e.maxDecisionPoints, 3);
            QCOMPARE(e.branchesPerPoint, 5);
            QCOMPARE(e.branchLength, 30);
            QVERIFY(!e.faithfulness);
        }
        {
            QSettings raw(file, QSettings::IniFormat);
            raw.setValue("explain/entropyThreshold", "nan");
            raw.setValue("explain/marginThreshold", 7.5);
            raw.setValue("explain/maxDecisionPoints", -4);
            raw.setValue("explain/branchesPerPoint", 1000);
            raw.setValue("explain/branchLength", 0);
            raw.sync();
        }
        WorkbenchSettings settings(file);
        const ExplainSettings c = settings.explain();
        QCOMPARE(c.entropyThreshold, 1.0); // not a number: the default
        QCOMPARE(c.marginThreshold, 1.0);
        QCOMPARE(c.maxDecisionPoints, 1);
        QCOMPARE(c.branchesPerPoint, 5);
        QCOMPARE(c.branchLength, 1);
    }

    void layoutSettingsAndRecentModelsPersist()
    {
        WorkbenchSettings settings(m_tmp.filePath("persist.ini"));
        settings.setReopenLastModel(true);
        {
            MainWindow w(&settings);
            w.show();
            w.openModel(kGolden + "loop3_dense");
            waitForState(w, MainWindow::State::Ready);
            w.findChild<QDockWidget*>("samplingDock")->hide();
            GenerationSettings gs;
            gs.maxTokens = 77;
            gs.temperature = 0.5;
            w.samplingPanel()->setSettings(gs);
            w.close();
        }
        WorkbenchSettings reread(m_tmp.filePath("persist.ini"));
        QVERIFY(reread.lastModel().endsWith("loop3_dense"));
        QCOMPARE(reread.recentModels().size(), 1);
        MainWindow w(&reread);
        w.show();
        QVERIFY(w.findChild<QDockWidget*>("samplingDock")->isHidden());
        QVERIFY(!w.findChild<QDockWidget*>("promptDock")->isHidden());
        QCOMPARE(w.samplingPanel()->settings().maxTokens, 77);
        QCOMPARE(w.samplingPanel()->settings().temperature, 0.5);
        QVERIFY(w.openStartupModel()); // reopens the last model
        waitForState(w, MainWindow::State::Ready);
        QVERIFY(w.modelFolder().endsWith("loop3_dense"));
        w.setPersistState(false);
    }

    void captureFeedsTheTraceViews()
    {
        // The bundled model with the default capture policy (standard); never asserts specific tokens.
        WorkbenchSettings settings(m_tmp.filePath("capture.ini"));
        QCOMPARE(settings.capturePolicy(), QStringLiteral("standard"));
        MainWindow w(&settings);
        w.setPersistState(false);
        w.show();
        w.openModel(MainWindow::bundledModelFolder());
        waitForState(w, MainWindow::State::Ready);
        QCOMPARE(w.traceStatusText(), QStringLiteral("Trace: off"));
        w.setPromptText("def add(a, b):");
        GenerationSettings gs;
        gs.maxTokens = 24;
        w.samplingPanel()->setSettings(gs);
        QSignalSpy finished(&w, &MainWindow::generationFinished);
        QVERIFY(w.startGeneration());
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 60000);

        const std::shared_ptr<const Trace> trace = w.document()->trace();
        QVERIFY(trace);
        QCOMPARE(trace->info().policy, std::string("standard"));
        // Every position of the final sequence is in the trace, and all of it reached the GUI.
        QCOMPARE(trace->size(), int64_t(w.document()->positionCount()));
        QTRY_COMPARE(w.document()->traceStepCount(), qint64(trace->size()));
        const QString label = w.traceStatusText();
        QVERIFY2(label.contains("MiB") && label.contains("standard"), qPrintable(label));
        QVERIFY(trace->bytes() > 0);

        // Heatmap: the short finished sequence's partial map is made exact automatically. Layer 1 has no
        // mch_heads in the bundled model, so its rows are top-k summaries under the standard preset (the
        // designated heads of layer 0 keep full rows and need no recompute).
        AttentionHeatmapView* heat = w.heatmapView();
        AttentionSelection summarised;
        summarised.layer = 1;
        heat->setAttentionSelection(summarised);
        QTRY_VERIFY_WITH_TIMEOUT(heat->matrix() && !heat->isBusy() && heat->isShowingExact(), 60000);
        QCOMPARE(heat->matrix()->rows, int(trace->size()));
        QVERIFY(!heat->isShowingPartial());
        QVERIFY2(heat->statusText().contains("exact"), qPrintable(heat->statusText()));
        const QImage image = heat->canvas()->image();
        QCOMPARE(image.size(), QSize(int(trace->size()), int(trace->size())));
        QSet<QRgb> colours;
        for (int y = 0; y < image.height(); ++y)
            for (int x = 0; x < image.width(); ++x) colours.insert(image.pixel(x, y));
        QVERIFY2(colours.size() > 3, qPrintable(QString::number(colours.size())));
        // Causal: nothing above the diagonal (value 0 = the colour map's first colour).
        QCOMPARE(image.pixel(image.width() - 1, 0), image.pixel(image.width() - 2, 1));
        // Exact rows sum to 1.
        for (int r = 0; r < heat->matrix()->rows; ++r) {
            double sum = 0;
            for (int c = 0; c < heat->matrix()->cols; ++c) sum += heat->matrix()->at(r, c);
            QVERIFY(std::fabs(sum - 1.0) < 1e-4);
        }

        // Loops: maps, the lens table (one row per position) and the gate statistics (loop 2 x 4 layers).
        LoopComparisonView* loops = w.loopComparisonView();
        QVERIFY(w.showView("loops"));
        loops->setLayerHead(1, 0);
        // Its partial maps are made exact too (short finished run).
        QTRY_VERIFY_WITH_TIMEOUT(loops->firstMatrix() && !loops->isBusy() && loops->statusText().contains("exact"),
                                 60000);
        QVERIFY(!loops->firstMatrix()->isPartial() && !loops->laterMatrix()->isPartial());
        QCOMPARE(loops->laterMatrix()->rows, int(trace->size()));
        QVERIFY(!loops->differenceCanvas()->image().isNull());
        QCOMPARE(loops->lensModel()->rowCount(), int(trace->size()));
        QCOMPARE(loops->gateModel()->rowCount(), 4);
        QCOMPARE(loops->gateModel()->index(0, 0).data(GateStatsModel::CountRole).toLongLong(), qint64(trace->size()));

        // Capture off: no trace, and the status bar says so.
        settings.setCapturePolicy("off");
        QVERIFY(w.startGeneration());
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 60000);
        QVERIFY(!w.document()->trace());
        QCOMPARE(w.traceStatusText(), QStringLiteral("Trace: off"));
        QVERIFY(heat->canvas()->image().isNull());
    }

    void captureSelectionPreferences()
    {
        // Empty by default; Preferences shows and stores every field; malformed text shows the engine's message
        // and disables OK; hand-edited numbers read back clamped.
        const QString file = m_tmp.filePath("selection.ini");
        {
            WorkbenchSettings settings(file);
            QVERIFY(settings.captureSelection().empty());
            PreferencesDialog dialog(settings);
            auto* ok = dialog.findChild<QDialogButtonBox*>()->button(QDialogButtonBox::Ok);
            QVERIFY(ok->isEnabled());
            auto* layers = dialog.findChild<QLineEdit*>("captureLayers");
            auto* error = dialog.findChild<QLabel*>("captureSelectionError");
            layers->setText("2-1");
            QVERIFY(!ok->isEnabled());
            QCOMPARE(error->text(), QStringLiteral("layers: the range 2-1 runs backwards; write 1-2"));
            layers->setText("1, 3");
            QVERIFY(ok->isEnabled());
            QVERIFY(error->text().isEmpty());
            // Without a model only the form is checked; with the loaded model's shape, its numbers too.
            layers->setText("7");
            QVERIFY(ok->isEnabled());
            dialog.setModelShape(4, 8, 2, "sage-mini-coder");
            QVERIFY(!ok->isEnabled());
            QCOMPARE(error->text(), QStringLiteral("layers: 7 is not a layer (this model has layers 0-3) — checked "
                                                   "against the loaded model, sage-mini-coder"));
            layers->setText("1, 3");
            QVERIFY(ok->isEnabled());
            dialog.findChild<QLineEdit*>("captureLoops")->setText("1");
            auto* streams = dialog.findChild<QComboBox*>("captureStreams");
            streams->setCurrentIndex(streams->findData("local"));
            QVERIFY(!ok->isEnabled()); // loop 1 has no local stream
            QVERIFY(error->text().startsWith("streams: loop 1 has only the global stream"));
            dialog.findChild<QLineEdit*>("captureLoops")->setText("2");
            dialog.findChild<QLineEdit*>("captureHeads")->setText("0-3");
            dialog.findChild<QLineEdit*>("captureFullHeads")->setText("1:2");
            dialog.findChild<QSpinBox*>("captureTopK")->setValue(8);
            dialog.findChild<QSpinBox*>("captureFullRowMaxKeys")->setValue(0);
            QVERIFY(ok->isEnabled());
            dialog.store(settings);
            settings.sync();
        }
        {
            WorkbenchSettings settings(file);
            const CaptureSelection s = settings.captureSelection();
            QCOMPARE(s.loops, std::string("2"));
            QCOMPARE(s.layers, std::string("1, 3"));
            QCOMPARE(s.heads, std::string("0-3"));
            QCOMPARE(s.streams, std::string("local"));
            QCOMPARE(s.fullHeads, std::string("1:2"));
            QCOMPARE(s.attentionTopK, 8);
            QCOMPARE(s.fullRowMaxKeys, int64_t(0));
            PreferencesDialog dialog(settings); // shows what was stored
            QCOMPARE(dialog.captureSelection().layers, std::string("1, 3"));
            QCOMPARE(dialog.findChild<QComboBox*>("captureStreams")->currentData().toString(), QStringLiteral("local"));
        }
        {
            QSettings raw(file, QSettings::IniFormat);
            raw.setValue("capture/attentionTopK", 1000);
            raw.setValue("capture/fullRowMaxKeys", "many");
            raw.sync();
        }
        WorkbenchSettings settings(file);
        QCOMPARE(settings.captureSelection().attentionTopK, kMaxAttentionTopK);
        QCOMPARE(settings.captureSelection().fullRowMaxKeys, int64_t(-1));
    }

    void captureSelectionNarrowsTheTrace()
    {
        // A run on the bundled model (4 layers, 8 heads) with the standard policy narrowed to layer 1 and heads 0-1:
        // the trace holds records of that layer only, attention of those heads only, and says so; a selection the
        // model does not have fails the run with the field named, and the window stays usable.
        WorkbenchSettings settings(m_tmp.filePath("narrow.ini"));
        CaptureSelection sel;
        sel.layers = "1";
        sel.heads = "0-1";
        settings.setCaptureSelection(sel);
        MainWindow w(&settings);
        QSignalSpy failed(&w, &MainWindow::generationFailed);
        generateOnBundled(w, 6);
        QVERIFY(!QTest::currentTestFailed());
        const std::shared_ptr<const Trace> trace = w.document()->trace();
        QVERIFY(trace);
        QCOMPARE(trace->info().policy, std::string("standard (layers 1; heads 0-1)"));
        QVERIFY(trace->size() > 6);
        for (const auto& step : trace->snapshot()) {
            QCOMPARE(step->layers.size(), size_t(2)); // layer 1 in loops 1 and 2
            for (const LayerRecord& r : step->layers) {
                QCOMPARE(r.layer, int16_t(1));
                for (int64_t h = 0; h < 8; ++h)
                    for (int64_t s = 0; s < r.streams; ++s) {
                        const size_t slot = size_t(h * r.streams + s);
                        QCOMPARE(std::isnan(r.entropy[slot]), h >= 2); // summaries of heads 0-1 only
                    }
            }
        }
        QVERIFY2(w.traceStatusText().contains("layers 1; heads 0-1"), qPrintable(w.traceStatusText()));

        sel.layers = "9";
        settings.setCaptureSelection(sel);
        QVERIFY(w.startGeneration());
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 60000);
        QVERIFY2(failed.at(0).at(0).toString().contains("layers: 9 is not a layer (this model has layers 0-3)"),
                 qPrintable(failed.at(0).at(0).toString()));
        QCOMPARE(w.state(), MainWindow::State::Ready);
    }

    void capturedRunsAreAutosaved()
    {
        // A captured run is saved while it runs (and in full when it ends) to the settings' autosave file, which
        // File > Open Autosaved Run opens: the same positions, tokens and policy.
        WorkbenchSettings settings(m_tmp.filePath("autosave.ini"));
        const QString file = settings.autosaveFile();
        QCOMPARE(file, m_tmp.filePath("autosave.autosave.sagetrace"));
        QFile::remove(file);
        MainWindow w(&settings);
        QVERIFY(!QFileInfo::exists(file)); // nothing autosaved yet
        generateOnBundled(w, 12);
        QVERIFY(!QTest::currentTestFailed());
        const std::shared_ptr<const Trace> trace = w.document()->trace();
        QVERIFY(trace);
        QVERIFY(QFileInfo::exists(file));
        Trace saved;
        const SessionMeta meta = SessionFile::open(file.toStdString(), saved);
        QCOMPARE(saved.size(), trace->size());
        QCOMPARE(saved.tokens(), trace->tokens());
        QCOMPARE(meta.policy, std::string("standard"));
        QCOMPARE(meta.maxNewTokens, int64_t(12));
        QTRY_VERIFY(w.openAutosaveAction()->isEnabled());

        QSignalSpy opened(&w, &MainWindow::sessionOpened);
        w.openAutosaveAction()->trigger();
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 30000);
        QVERIFY(w.document()->trace());
        QCOMPARE(w.document()->trace()->size(), trace->size());
        QCOMPARE(w.document()->trace()->tokens(), trace->tokens());
    }

    void screenshotAutomationWritesAPng()
    {
        const QString png = m_tmp.filePath("shot.png");
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("QT_QPA_PLATFORM", "offscreen");
        p.setProcessEnvironment(env);
        p.start(SAGE_WORKBENCH_PATH,
                {"--settings", m_tmp.filePath("shot.ini"), "--model", kGolden + "loop2_moe", "--tokens", "1,5,9,13",
                 "--generate", "16", "--view", "tokens", "--theme", "dark", "--screenshot", png});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0, p.readAllStandardError().constData());
        QImage image(png);
        QVERIFY(!image.isNull());
        QVERIFY(image.width() >= 640 && image.height() >= 400);
        QSet<QRgb> colours;
        for (int y = 0; y < image.height(); y += 7)
            for (int x = 0; x < image.width(); x += 7) colours.insert(image.pixel(x, y));
        QVERIFY2(colours.size() > 20, qPrintable(QString::number(colours.size())));

        // Errors exit nonzero with the engine's message.
        p.start(SAGE_WORKBENCH_PATH, {"--settings", m_tmp.filePath("shot.ini"), "--model", m_tmp.filePath("nothing"),
                                      "--generate", "4", "--screenshot", m_tmp.filePath("never.png")});
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 1);
        const QString err = QString::fromLocal8Bit(p.readAllStandardError());
        QVERIFY2(err.contains("error") && err.contains("config.json"), qPrintable(err));
        QVERIFY(!QFile::exists(m_tmp.filePath("never.png")));

        // The trace views render after generation and are in the screenshot.
        for (const QString view : {"heatmap", "loops"}) {
            const QString viewPng = m_tmp.filePath(view + ".png");
            p.start(SAGE_WORKBENCH_PATH,
                    {"--settings", m_tmp.filePath("shot.ini"), "--model", kGolden + "loop2_moe", "--tokens", "1,5,9,13",
                     "--generate", "12", "--view", view, "--screenshot", viewPng});
            QVERIFY(p.waitForFinished(120000));
            QVERIFY2(p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0, p.readAllStandardError().constData());
            QVERIFY(!QImage(viewPng).isNull());
        }

        p.start(SAGE_WORKBENCH_PATH, {"--view", "nonsense", "--screenshot", png});
        QVERIFY(p.waitForFinished(120000));
        QCOMPARE(p.exitCode(), 2);
    }
};

QTEST_MAIN(TestWorkbench)
#include "tst_workbench.moc"
