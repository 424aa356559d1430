#pragma once

#include "app/workbench/WorkbenchTypes.h"
#include "viz/StepRecord.h"

#include <QElapsedTimer>
#include <QMainWindow>
#include <QThread>

#include <memory>

class QAction;
class QActionGroup;
class QCheckBox;
class QComboBox;
class QDockWidget;
class QLabel;
class QMenu;
class QMimeData;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QStackedWidget;
class QToolButton;

namespace sage {

class AttentionHeatmapView;
class DecisionPointPanel;
struct IrReport;
class EngineWorker;
class MchStreamsView;
class ExactAttentionService;
class LoopComparisonView;
class Trace;
class ModelSummaryPanel;
class RoutingView;
class RunDocument;
class SamplingPanel;
class StepSelection;
class TokenColorLegend;
class TokenStreamModel;
class TokenStreamView;
class TraceFeed;
class WorkbenchSettings;

// The workbench window: dockable panels (model summary, prompt, sampling) around the views of the current
// run (the token stream for now). All engine work happens on the EngineWorker's thread; this class only
// sends it jobs and folds the results into the RunDocument, dropping results of superseded jobs.
class MainWindow : public QMainWindow
{
    Q_OBJECT

public:
    enum class State { NoModel, Loading, Ready, Generating, Stopping, Explaining };
    Q_ENUM(State)

    // settings must outlive the window.
    explicit MainWindow(WorkbenchSettings* settings, QWidget* parent = nullptr);
    ~MainWindow() override;

    // The folder of the model shipped with the workbench.
    static QString bundledModelFolder();
    // The views --view accepts.
    static QStringList viewNames();

    // Opens --model, else (when the preference is on) the last model, else the bundled model; shows the
    // empty state when none of them exists. Returns false when nothing was opened.
    bool openStartupModel();
    void openModel(const QString& folder);
    bool startGeneration();
    void stopGeneration();
    bool showView(const QString& name);

    // Inverse Reasoning over the finished run (Run > Explain, Ctrl+E): progress in the status bar, Stop cancels.
    bool startExplain();
    // Regenerates from `position` of the current run with `token` forced there (the decision tree's
    // "Branch here"): the prefix and the token become the prompt, as token ids.
    bool branchFrom(qint64 position, int token);
    // Writes the IR report as JSON, Markdown, HTML or PDF by the path's suffix (.json, .md, .html, .pdf), on a
    // pool thread; reportExported / errorShown tell the result.
    bool exportReport(const QString& path);
    // The view image (PNG by default, SVG for a .svg path) of the raised trace view or the token stream.
    bool exportViewImage(const QString& path);
    void copyViewImage();
    bool saveSession(const QString& path);
    bool openSession(const QString& path);
    std::shared_ptr<const IrReport> irReport() const { return m_irReport; }
    DecisionPointPanel* decisionPanel() const { return m_decisionPanel; }
    // The widget "Export View" and "Copy View" use: the raised trace dock's view, else the token stream.
    QWidget* currentViewWidget() const;

    void setPromptText(const QString& text);
    void setPromptTokens(const QList<int>& ids);
    QString promptText() const;
    bool promptUsesTokenIds() const;
    // Parses "1, 5, 9" / "1 5 9"; on failure returns false and sets *error to a message naming the bad item.
    static bool parseTokenIds(const QString& text, QList<int>* ids, QString* error);

    // Automation and tests: don't write the window layout or settings back on close.
    void setPersistState(bool persist) { m_persistState = persist; }

    State state() const { return m_state; }
    QString lastError() const { return m_lastError; }
    const ModelSummary& modelSummary() const { return m_summary; }
    QString modelFolder() const { return m_summary.folder; }
    RunDocument* document() const { return m_document; }
    TokenStreamModel* tokenStreamModel() const { return m_tokenModel; }
    TokenStreamView* tokenStreamView() const { return m_tokenView; }
    StepSelection* selection() const { return m_selection; }
    TraceFeed* traceFeed() const { return m_traceFeed; }
    RoutingView* routingView() const { return m_routingView; }
    MchStreamsView* mchStreamsView() const { return m_mchView; }
    SamplingPanel* samplingPanel() const { return m_sampling; }
    ModelSummaryPanel* modelSummaryPanel() const { return m_summaryPanel; }
    QAction* generateAction() const { return m_generateAction; }
    QAction* stopAction() const { return m_stopAction; }
    QAction* openAutosaveAction() const { return m_openAutosaveAction; }
    AttentionHeatmapView* heatmapView() const { return m_heatmapView; }
    LoopComparisonView* loopComparisonView() const { return m_loopsView; }
    // True while a view builds its image or fetches an exact map (automation waits for it before a screenshot).
    bool isViewBusy(const QString& name) const;
    // The status bar's trace memory text ("Trace: off" without capture).
    QString traceStatusText() const;
    // Decode tokens per second of the running (or last) generation.
    double tokensPerSecond() const { return m_tokensPerSecond; }

signals:
    void stateChanged(sage::MainWindow::State state);
    void modelLoaded(const QString& folder);
    void modelLoadFailed(const QString& message);
    void generationFinished(const QString& stopReason);
    void generationFailed(const QString& message);
    void errorShown(const QString& message);
    void explainFinished();
    void explainFailed(const QString& message);
    void reportExported(const QString& path);
    void sessionSaved(const QString& path);
    void sessionOpened(const QString& path);

protected:
    void closeEvent(QCloseEvent* event) override;
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;

private:
    void createActions();
    void createMenus();
    void createCentral();
    void createDocks();
    void createTraceDocks();
    void createStatusBar();
    void startWorker();
    void setState(State state);
    void showError(const QString& message);
    void clearError();
    void rebuildRecentMenu();
    void openModelDialog();
    void showPreferences();
    void setSamplePrompt();
    void updatePromptMode();
    void setColorMode(const QString& mode);
    void saveLayout();
    void updateStepLabel(int position);
    static QString droppedFolder(const QMimeData* mime);

    void onLoadProgress(quint64 job, int percent, const QString& stage);
    void onModelLoaded(quint64 job, const ModelSummary& summary);
    void onLoadFailed(quint64 job, const QString& folder, const QString& message);
    void onGenerationStarted(quint64 job, const QList<PromptToken>& prompt, int vocabSize);
    void onStepsAppended(quint64 job, int first, const QList<GeneratedStep>& steps);
    void onGenerationFinished(quint64 job, const GenerationStats& stats);
    void onGenerationFailed(quint64 job, const QString& message);
    void onTraceStarted(quint64 job, std::shared_ptr<const Trace> trace);
    void updateTraceLabel();
    void createTraceViews();
    void createDecisionDock();
    void createIrActions();
    void launchGeneration(const GenerationJob& job);
    void onExplainProgress(quint64 job, const QString& stage, double fraction);
    void onExplainFinished(quint64 job, std::shared_ptr<const IrReport> report);
    void onExplainFailed(quint64 job, const QString& message);
    void setIrReport(std::shared_ptr<const IrReport> report);
    void updateRunActions();

    WorkbenchSettings* m_settings;
    QThread m_engineThread;
    EngineWorker* m_worker = nullptr;
    quint64 m_lastJob = 0;
    quint64 m_loadJob = 0;    // the load whose result is wanted (0 = none)
    quint64 m_genJob = 0;     // the generation whose results are wanted (0 = none)
    quint64 m_irJob = 0;      // the Explain run whose results are wanted (0 = none)
    QString m_openingSession; // the session file being opened by m_genJob, if any
    State m_state = State::NoModel;
    bool m_hasModel = false;
    ModelSummary m_summary;
    QString m_lastError;
    bool m_persistState = true;
    bool m_promptIsSample = false;
    bool m_settingPrompt = false;
    QElapsedTimer m_genClock; // since the first step of the running generation
    int m_stepsAtClock = 0;
    double m_tokensPerSecond = 0;

    RunDocument* m_document = nullptr;
    StepSelection* m_selection = nullptr;
    TokenStreamModel* m_tokenModel = nullptr;
    TraceFeed* m_traceFeed = nullptr; // the document's trace, batched for the trace views

    // Central area
    QWidget* m_errorBanner = nullptr;
    QLabel* m_errorLabel = nullptr;
    QStackedWidget* m_stack = nullptr;
    QWidget* m_emptyPage = nullptr;
    QLabel* m_emptyLabel = nullptr;
    TokenStreamView* m_tokenView = nullptr;
    QComboBox* m_colorCombo = nullptr;
    QLabel* m_runLabel = nullptr;
    QLabel* m_stepLabel = nullptr;
    TokenColorLegend* m_legend = nullptr;

    // Docks
    QDockWidget* m_modelDock = nullptr;
    QDockWidget* m_promptDock = nullptr;
    QDockWidget* m_samplingDock = nullptr;
    ModelSummaryPanel* m_summaryPanel = nullptr;
    QPlainTextEdit* m_prompt = nullptr;
    QCheckBox* m_tokenIdsBox = nullptr;
    QLabel* m_promptHint = nullptr;
    QPushButton* m_generateButton = nullptr;
    QPushButton* m_stopButton = nullptr;
    SamplingPanel* m_sampling = nullptr;
    QDockWidget* m_routingDock = nullptr;
    QDockWidget* m_mchDock = nullptr;
    RoutingView* m_routingView = nullptr;
    MchStreamsView* m_mchView = nullptr;

    // Trace views (docks)
    AttentionHeatmapView* m_heatmapView = nullptr;
    LoopComparisonView* m_loopsView = nullptr;
    QDockWidget* m_heatDock = nullptr;
    QDockWidget* m_loopsDock = nullptr;
    ExactAttentionService* m_exactService = nullptr;
    QDockWidget* m_decisionDock = nullptr;
    DecisionPointPanel* m_decisionPanel = nullptr;
    std::shared_ptr<const IrReport> m_irReport;

    // Status bar
    QProgressBar* m_progress = nullptr;
    QLabel* m_speedLabel = nullptr;
    QLabel* m_traceLabel = nullptr;

    QAction* m_openAction = nullptr;
    QAction* m_generateAction = nullptr;
    QAction* m_stopAction = nullptr;
    QAction* m_explainAction = nullptr;
    QAction* m_exportReportAction = nullptr;
    QAction* m_exportViewAction = nullptr;
    QAction* m_copyViewAction = nullptr;
    QAction* m_saveSessionAction = nullptr;
    QAction* m_openAutosaveAction = nullptr;
    QAction* m_openSessionAction = nullptr;
    QMenu* m_recentMenu = nullptr;
    QMenu* m_viewMenu = nullptr;
    QActionGroup* m_colorGroup = nullptr;
    QActionGroup* m_themeGroup = nullptr;
};

} // namespace sage
