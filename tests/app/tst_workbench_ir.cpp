// End-to-end: the bundled model in the window offscreen: generate with capture, every view has content,
// Explain (Inverse Reasoning) fills the Decisions dock, "Branch here" regenerates from a decision point with
// the alternative forced, reports export in every format, view images export, and a saved session opens back
// to the same run and the same report. Never asserts specific tokens of the bundled model.
#include "app/workbench/MainWindow.h"
#include "app/workbench/SamplingPanel.h"
#include "app/workbench/WorkbenchSettings.h"
#include "engine/capture/Trace.h"
#include "engine/ir/IrReport.h"
#include "engine/ir/ReportJson.h"
#include "viz/DecisionPointPanel.h"
#include "viz/DecisionTreeModel.h"
#include "viz/ExpertLoadModel.h"
#include "viz/HeadRankingModel.h"
#include "viz/MchStreamsView.h"
#include "viz/RoutingTableModel.h"
#include "viz/RoutingView.h"
#include "viz/RunDocument.h"
#include "viz/TokenStreamModel.h"
#include "viz/TraceFeed.h"

#include <QFile>
#include <QImage>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>

using namespace sage;

class TestWorkbenchIr : public QObject
{
    Q_OBJECT
    QTemporaryDir m_tmp;

private slots:
    void explainBranchExportAndSession()
    {
        QVERIFY(m_tmp.isValid());
        WorkbenchSettings settings(m_tmp.filePath("ir.ini"));
        settings.setReopenLastModel(false);
        settings.setCapturePolicy("standard");
        // Explain settings from Preferences reach the run (values other than the defaults).
        ExplainSettings explainSettings;
        explainSettings.entropyThreshold = 0.9;
        explainSettings.marginThreshold = 0.25;
        explainSettings.maxDecisionPoints = 5;
        explainSettings.branchesPerPoint = 1;
        explainSettings.branchLength = 6;
        settings.setExplain(explainSettings);
        MainWindow w(&settings);
        w.setPersistState(false);
        w.resize(1280, 900);
        w.show();
        w.openModel(MainWindow::bundledModelFolder());
        QTRY_COMPARE_WITH_TIMEOUT(w.state(), MainWindow::State::Ready, 30000);

        // Explain before any run: a clear error, nothing started.
        QSignalSpy explainFailed(&w, &MainWindow::explainFailed);
        QVERIFY(!w.startExplain());
        QCOMPARE(explainFailed.count(), 1);
        QVERIFY(w.lastError().contains("generate"));

        w.setPromptText("def add(a, b):\n    ");
        GenerationSettings gs;
        gs.maxTokens = 24;
        w.samplingPanel()->setSettings(gs);
        QSignalSpy finished(&w, &MainWindow::generationFinished);
        QVERIFY(w.startGeneration());
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 1, 60000);
        const int steps = w.document()->stepCount();
        QCOMPARE(steps, 24);
        const int positions = w.document()->positionCount();

        // Every trace view has content.
        QTRY_COMPARE(w.traceFeed()->stepCount(), qint64(positions));
        QCOMPARE(w.routingView()->routingModel()->rowCount(), positions);
        QVERIFY(w.routingView()->loadModel()->rowCount() == 4);
        QVERIFY(w.mchStreamsView()->rankingModel()->rowCount() > 0);

        // Explain: progress, then the Decisions dock.
        QSignalSpy explained(&w, &MainWindow::explainFinished);
        QVERIFY(w.startExplain());
        QCOMPARE(w.state(), MainWindow::State::Explaining);
        QTRY_COMPARE_WITH_TIMEOUT(explained.count(), 1, 120000);
        QCOMPARE(w.state(), MainWindow::State::Ready);
        const std::shared_ptr<const IrReport> report = w.irReport();
        QVERIFY(report);
        QCOMPARE(report->generatedCount(), int64_t(steps));
        QVERIFY2(!report->decisionPoints.empty(), "the bundled model's run has no decision point");
        QCOMPARE(report->config.entropyThreshold, 0.9);
        QCOMPARE(report->config.marginThreshold, 0.25);
        QCOMPARE(report->config.maxDecisionPoints, 5);
        QCOMPARE(report->config.branchesPerPoint, 1);
        QCOMPARE(report->config.branchLength, 6);
        QVERIFY(report->decisionPoints.size() <= 5);
        for (const IrDecisionPoint& p : report->decisionPoints) QVERIFY(p.branches.size() <= 1);
        DecisionPointPanel* panel = w.decisionPanel();
        QCOMPARE(panel->report(), report);
        int nodes = 0;
        std::function<void(const QModelIndex&)> count = [&](const QModelIndex& parent) {
            for (int r = 0; r < panel->model()->rowCount(parent); ++r) {
                ++nodes;
                count(panel->model()->index(r, 0, parent));
            }
        };
        count({});
        QCOMPARE(nodes, int(report->decisionPoints.size()));
        // The token stream marks exactly the decision points.
        for (int row = 0; row < positions; ++row) {
            bool isPoint = false;
            for (const IrDecisionPoint& d : report->decisionPoints) isPoint |= d.position == row;
            QCOMPARE(w.tokenStreamModel()->index(row, 0).data(TokenStreamModel::DecisionPointRole).toBool(), isPoint);
        }

        // Reports in every format, written off the GUI thread.
        QSignalSpy exported(&w, &MainWindow::reportExported);
        for (const char* ext : {"json", "md", "html", "pdf"})
            QVERIFY(w.exportReport(m_tmp.filePath(QString("report.%1").arg(ext))));
        QTRY_COMPARE_WITH_TIMEOUT(exported.count(), 4, 30000);
        const IrReport back = ReportJson::load(m_tmp.filePath("report.json").toStdString());
        QVERIFY(back == *report);
        QFile html(m_tmp.filePath("report.html"));
        QVERIFY(html.open(QIODevice::ReadOnly));
        const QByteArray htmlBytes = html.readAll();
        QVERIFY(htmlBytes.contains("<svg") && !htmlBytes.contains("http://") && !htmlBytes.contains("https://"));
        QFile pdf(m_tmp.filePath("report.pdf"));
        QVERIFY(pdf.open(QIODevice::ReadOnly));
        const QByteArray pdfBytes = pdf.readAll();
        QVERIFY(pdfBytes.startsWith("%PDF-") && pdfBytes.contains("/Type /Page"));
        QVERIFY(!w.exportReport(m_tmp.filePath("report.docx"))); // unknown format: refused with a message
        QVERIFY(w.lastError().contains(".pdf"));

        // View images: PNG and SVG of the raised view.
        QVERIFY(w.showView("tree"));
        QVERIFY(w.exportViewImage(m_tmp.filePath("view.png")));
        QVERIFY(!QImage(m_tmp.filePath("view.png")).isNull());
        QVERIFY(w.exportViewImage(m_tmp.filePath("view.svg")));
        QFile svg(m_tmp.filePath("view.svg"));
        QVERIFY(svg.open(QIODevice::ReadOnly) && svg.readAll().contains("<svg"));

        // Save the session (trace + IR), then open it back: same tokens, same report.
        QSignalSpy saved(&w, &MainWindow::sessionSaved);
        const QString session = m_tmp.filePath("run.sagetrace");
        QVERIFY(w.saveSession(session));
        QTRY_COMPARE_WITH_TIMEOUT(saved.count(), 1, 30000);
        QList<int32_t> tokens = w.document()->generatedTokens();
        const std::shared_ptr<const IrReport> before = w.irReport();

        // Branch here at the first decision point with its first alternative.
        const IrDecisionPoint& d = report->decisionPoints.front();
        QVERIFY(!d.alternatives.empty());
        const int32_t forced = d.alternatives.front().token;
        QVERIFY(panel->branchButton()->isEnabled());
        panel->selectPoint(d.id);
        panel->branchTable()->clearSelection();
        panel->branchTable()->setCurrentCell(-1, -1);
        QCOMPARE(panel->branchToken(), forced);
        QTest::mouseClick(panel->branchButton(), Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(finished.count(), 2, 60000);
        // The branch run's prompt is the prefix up to the decision point plus the forced token.
        QCOMPARE(w.document()->promptLength(), int(d.position) + 1);
        QCOMPARE(w.document()->promptToken(int(d.position)).token, forced);
        QVERIFY(w.document()->stepCount() >= 1);
        QVERIFY(!w.irReport()); // a new run forgets the previous report

        QSignalSpy opened(&w, &MainWindow::sessionOpened);
        QVERIFY(w.openSession(session));
        QTRY_COMPARE_WITH_TIMEOUT(opened.count(), 1, 30000);
        QCOMPARE(w.document()->generatedTokens(), tokens);
        QCOMPARE(w.document()->positionCount(), positions);
        QTRY_VERIFY(w.irReport() != nullptr);
        QVERIFY(*w.irReport() == *before);
        QVERIFY(w.document()->trace());
        QCOMPARE(w.document()->trace()->size(), int64_t(positions));

        // A corrupt session: a clear error, the opened run stays.
        const QString bad = m_tmp.filePath("bad.sagetrace");
        QFile f(bad);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("not a session");
        f.close();
        QSignalSpy errors(&w, &MainWindow::errorShown);
        QVERIFY(w.openSession(bad));
        QTRY_COMPARE_WITH_TIMEOUT(errors.count(), 1, 30000);
        QVERIFY2(errors.at(0).at(0).toString().contains("bad.sagetrace"), qPrintable(errors.at(0).at(0).toString()));
        QCOMPARE(w.state(), MainWindow::State::Ready);
        QCOMPARE(w.document()->generatedTokens(), tokens);
    }

    // The automation path: --view tree explains before the screenshot and --report writes the report.
    void automationExplainsAndWritesTheReport()
    {
        QProcess p;
        p.setProcessEnvironment([] {
            auto env = QProcessEnvironment::systemEnvironment();
            env.insert("QT_QPA_PLATFORM", "offscreen");
            return env;
        }());
        const QString png = m_tmp.filePath("tree.png"), report = m_tmp.filePath("auto.html");
        p.start(SAGE_WORKBENCH_PATH, {"--settings", m_tmp.filePath("auto.ini"), "--prompt", "import os\n", "--generate",
                                      "16", "--view", "tree", "--report", report, "--screenshot", png});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
        QVERIFY(!QImage(png).isNull());
        QFile f(report);
        QVERIFY(f.open(QIODevice::ReadOnly) && f.readAll().contains("decision"));
    }
};

QTEST_MAIN(TestWorkbenchIr)
#include "tst_workbench_ir.moc"
