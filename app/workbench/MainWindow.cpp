#include "app/workbench/MainWindow.h"

#include "app/workbench/EngineWorker.h"
#include "app/workbench/ExactAttentionService.h"
#include "app/workbench/ModelSummaryPanel.h"
#include "app/workbench/PreferencesDialog.h"
#include "app/workbench/SamplingPanel.h"
#include "app/workbench/ThemeManager.h"
#include "app/workbench/WorkbenchSettings.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/ir/IrReport.h"
#include "engine/ir/ReportHtml.h"
#include "engine/ir/ReportJson.h"
#include "engine/ir/ReportMarkdown.h"
#include "engine/ir/ReportPdf.h"
#include "engine/model/Model.h"
#include "engine/model/ModelConfig.h"
#include "engine/tokenizer/Tokenizer.h"
#include "viz/AttentionHeatmapView.h"
#include "viz/DecisionPointPanel.h"
#include "viz/LoopComparisonView.h"
#include "viz/MchStreamsView.h"
#include "viz/RoutingView.h"
#include "viz/RunDocument.h"
#include "viz/StepSelection.h"
#include "viz/TokenColorLegend.h"
#include "viz/TokenStreamModel.h"
#include "viz/TokenStreamView.h"
#include "viz/TraceFeed.h"

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QCloseEvent>
#include <QComboBox>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QIcon>
#include <QKeySequence>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPainter>
#include <QPlainTextEdit>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QRegularExpression>
#include <QSet>
#include <QStackedWidget>
#include <QStatusBar>
#include <QSvgGenerator>
#include <QThreadPool>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

#include <filesystem>

static void initWorkbenchResources()
{
    // The .qrc lives in a static library: its initialiser must be referenced or the linker drops it.
    Q_INIT_RESOURCE(workbench);
}

namespace sage {

namespace {
const char* kSampleTextPrompt = "def fibonacci(n):";
const char* kSampleIdPrompt = "1, 5, 9, 13";
} // namespace

MainWindow::MainWindow(WorkbenchSettings* settings, QWidget* parent) : QMainWindow(parent), m_settings(settings)
{
    initWorkbenchResources();
    setWindowTitle(tr("SAGE Workbench"));
    setWindowIcon(QIcon(":/icons/sage-workbench.svg"));
    setAcceptDrops(true);
    setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowNestedDocks | QMainWindow::AllowTabbedDocks);

    m_document = new RunDocument(this);
    m_selection = new StepSelection(this);
    m_tokenModel = new TokenStreamModel(this);
    m_tokenModel->setDocument(m_document);
    connect(m_document, &RunDocument::runStarted, m_selection, &StepSelection::clear);
    connect(m_document, &RunDocument::cleared, m_selection, &StepSelection::clear);

    createActions();
    createCentral();
    createDocks();
    createTraceViews();
    createDecisionDock();
    createIrActions();
    createMenus();
    createStatusBar();
    startWorker();

    m_sampling->setSettings(m_settings->sampling());
    setColorMode(m_settings->tokenColorMode());

    resize(1280, 800);
    const QByteArray geometry = m_settings->windowGeometry();
    if (!geometry.isEmpty()) restoreGeometry(geometry);
    const QByteArray layout = m_settings->windowState();
    if (!layout.isEmpty()) restoreState(layout);
    setState(State::NoModel);
    updatePromptMode();
}

MainWindow::~MainWindow()
{
    // Stop whatever runs, then let the thread finish its queue; the worker is deleted on its own thread.
    m_worker->requestCancel(std::numeric_limits<quint64>::max() / 2);
    m_engineThread.quit();
    m_engineThread.wait();
}

QString MainWindow::bundledModelFolder()
{
    return QStringLiteral(SAGE_DEFAULT_MODEL_DIR);
}

QStringList MainWindow::viewNames()
{
    return {QStringLiteral("tokens"),  QStringLiteral("heatmap"), QStringLiteral("loops"),
            QStringLiteral("routing"), QStringLiteral("mch"),     QStringLiteral("tree")};
}

void MainWindow::startWorker()
{
    m_engineThread.setObjectName("engine");
    m_worker = new EngineWorker;
    m_worker->moveToThread(&m_engineThread);
    connect(&m_engineThread, &QThread::finished, m_worker, &QObject::deleteLater);
    connect(m_worker, &EngineWorker::loadProgress, this, &MainWindow::onLoadProgress);
    connect(m_worker, &EngineWorker::modelLoaded, this, &MainWindow::onModelLoaded);
    connect(m_worker, &EngineWorker::loadFailed, this, &MainWindow::onLoadFailed);
    connect(m_worker, &EngineWorker::generationStarted, this, &MainWindow::onGenerationStarted);
    connect(m_worker, &EngineWorker::stepsAppended, this, &MainWindow::onStepsAppended);
    connect(m_worker, &EngineWorker::generationFinished, this, &MainWindow::onGenerationFinished);
    connect(m_worker, &EngineWorker::generationFailed, this, &MainWindow::onGenerationFailed);
    connect(m_worker, &EngineWorker::traceStarted, this, &MainWindow::onTraceStarted);
    connect(m_worker, &EngineWorker::explainProgress, this, &MainWindow::onExplainProgress);
    connect(m_worker, &EngineWorker::explainFinished, this, &MainWindow::onExplainFinished);
    connect(m_worker, &EngineWorker::explainFailed, this, &MainWindow::onExplainFailed);
    connect(m_worker, &EngineWorker::irLoaded, this,
            [this](quint64, std::shared_ptr<const IrReport> report) { setIrReport(std::move(report)); });
    connect(m_worker, &EngineWorker::sessionWarning, this, [this](quint64, const QString& m) { showError(m); });
    connect(m_worker, &EngineWorker::sessionSaved, this, [this](quint64, const QString& path) {
        statusBar()->showMessage(tr("Saved %1").arg(path), 5000);
        emit sessionSaved(path);
    });
    connect(m_worker, &EngineWorker::sessionFailed, this, [this](quint64 job, const QString& message) {
        if (job == m_genJob) {
            // An open failed before the run began: the previous run stays as it was.
            m_genJob = 0;
            m_openingSession.clear();
            setState(State::Ready);
        }
        showError(message);
    });
    m_engineThread.start();
}

void MainWindow::createActions()
{
    m_openAction = new QAction(tr("&Open Model…"), this);
    m_openAction->setShortcut(QKeySequence::Open);
    connect(m_openAction, &QAction::triggered, this, &MainWindow::openModelDialog);

    m_generateAction = new QAction(tr("&Generate"), this);
    m_generateAction->setShortcuts({QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)});
    m_generateAction->setShortcutContext(Qt::WindowShortcut);
    connect(m_generateAction, &QAction::triggered, this, &MainWindow::startGeneration);

    m_stopAction = new QAction(tr("&Stop"), this);
    m_stopAction->setShortcut(QKeySequence(Qt::Key_Escape));
    m_stopAction->setShortcutContext(Qt::WindowShortcut);
    connect(m_stopAction, &QAction::triggered, this, &MainWindow::stopGeneration);
    addAction(m_generateAction);
    addAction(m_stopAction);
}

void MainWindow::createMenus()
{
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addAction(m_openAction);
    m_recentMenu = file->addMenu(tr("Open &Recent"));
    rebuildRecentMenu();
    QAction* bundled = file->addAction(tr("Open &Bundled Model"));
    connect(bundled, &QAction::triggered, this, [this] { openModel(bundledModelFolder()); });
    file->addSeparator();
    file->addAction(m_openSessionAction);
    file->addAction(m_openAutosaveAction);
    file->addAction(m_saveSessionAction);
    file->addSeparator();
    file->addAction(m_exportReportAction);
    file->addAction(m_exportViewAction);
    file->addAction(m_copyViewAction);
    file->addSeparator();
    QAction* prefs = file->addAction(tr("&Preferences…"));
    prefs->setShortcut(QKeySequence::Preferences);
    prefs->setMenuRole(QAction::PreferencesRole);
    connect(prefs, &QAction::triggered, this, &MainWindow::showPreferences);
    file->addSeparator();
    QAction* quit = file->addAction(tr("&Quit"));
    quit->setShortcut(QKeySequence::Quit);
    connect(quit, &QAction::triggered, this, &QWidget::close);

    QMenu* run = menuBar()->addMenu(tr("&Run"));
    run->addAction(m_generateAction);
    run->addAction(m_stopAction);
    run->addSeparator();
    run->addAction(m_explainAction);

    m_viewMenu = menuBar()->addMenu(tr("&View"));
    m_viewMenu->addAction(m_modelDock->toggleViewAction());
    m_viewMenu->addAction(m_promptDock->toggleViewAction());
    m_viewMenu->addAction(m_samplingDock->toggleViewAction());
    m_viewMenu->addAction(m_routingDock->toggleViewAction());
    m_viewMenu->addAction(m_mchDock->toggleViewAction());
    m_viewMenu->addAction(m_heatDock->toggleViewAction());
    m_viewMenu->addAction(m_loopsDock->toggleViewAction());
    m_viewMenu->addAction(m_decisionDock->toggleViewAction());
    m_viewMenu->addSeparator();
    QMenu* color = m_viewMenu->addMenu(tr("Colour Tokens By"));
    m_colorGroup = new QActionGroup(this);
    for (auto [name, label] :
         {std::pair{"probability", QT_TR_NOOP("Probability")}, {"entropy", QT_TR_NOOP("Entropy")}}) {
        QAction* a = color->addAction(tr(label));
        a->setCheckable(true);
        a->setData(QString::fromLatin1(name));
        m_colorGroup->addAction(a);
    }
    connect(m_colorGroup, &QActionGroup::triggered, this, [this](QAction* a) { setColorMode(a->data().toString()); });
    QMenu* theme = m_viewMenu->addMenu(tr("Theme"));
    m_themeGroup = new QActionGroup(this);
    for (auto t : {WorkbenchSettings::Theme::Light, WorkbenchSettings::Theme::Dark}) {
        QAction* a = theme->addAction(t == WorkbenchSettings::Theme::Dark ? tr("Dark") : tr("Light"));
        a->setCheckable(true);
        a->setChecked(m_settings->theme() == t);
        a->setData(WorkbenchSettings::themeName(t));
        m_themeGroup->addAction(a);
    }
    connect(m_themeGroup, &QActionGroup::triggered, this, [this](QAction* a) {
        const auto t = WorkbenchSettings::themeFromName(a->data().toString());
        m_settings->setTheme(t);
        ThemeManager::apply(t);
    });

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    QAction* about = help->addAction(tr("&About SAGE Workbench"));
    connect(about, &QAction::triggered, this, [this] {
        QMessageBox::about(this, tr("About SAGE Workbench"),
                           tr("<b>SAGE Workbench %1</b><p>Interpretability workbench for looped mixture-of-experts "
                              "transformers (SAGE-OSS-40B and its family).</p>")
                               .arg(QStringLiteral(SAGE_VERSION)));
    });
}

void MainWindow::createCentral()
{
    auto* central = new QWidget(this);
    auto* layout = new QVBoxLayout(central);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);

    // Errors show in a banner (never a modal box) so the window stays usable and scripts never block.
    m_errorBanner = new QWidget(central);
    m_errorBanner->setObjectName("errorBanner");
    m_errorBanner->setStyleSheet("#errorBanner { background: #b3261e; } QLabel { color: white; }");
    auto* bannerLayout = new QHBoxLayout(m_errorBanner);
    bannerLayout->setContentsMargins(10, 6, 6, 6);
    m_errorLabel = new QLabel(m_errorBanner);
    m_errorLabel->setWordWrap(true);
    m_errorLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    bannerLayout->addWidget(m_errorLabel, 1);
    auto* closeBanner = new QToolButton(m_errorBanner);
    closeBanner->setText(QStringLiteral("✕"));
    closeBanner->setAutoRaise(true);
    closeBanner->setToolTip(tr("Dismiss"));
    connect(closeBanner, &QToolButton::clicked, this, &MainWindow::clearError);
    bannerLayout->addWidget(closeBanner);
    m_errorBanner->hide();
    layout->addWidget(m_errorBanner);

    m_stack = new QStackedWidget(central);
    layout->addWidget(m_stack, 1);

    // Empty state: no model yet.
    m_emptyPage = new QWidget(m_stack);
    auto* emptyLayout = new QVBoxLayout(m_emptyPage);
    emptyLayout->addStretch(2);
    auto* icon = new QLabel(m_emptyPage);
    icon->setPixmap(QIcon(":/icons/sage-workbench.svg").pixmap(96, 96));
    icon->setAlignment(Qt::AlignCenter);
    emptyLayout->addWidget(icon);
    m_emptyLabel = new QLabel(m_emptyPage);
    m_emptyLabel->setAlignment(Qt::AlignCenter);
    m_emptyLabel->setWordWrap(true);
    m_emptyLabel->setText(tr("<h2>No model loaded</h2><p>Open a model folder (config.json, *.safetensors and "
                             "optionally tokenizer.model),<br/>or drop one onto this window.</p>"));
    emptyLayout->addWidget(m_emptyLabel);
    auto* openButton = new QPushButton(tr("Open Model…"), m_emptyPage);
    openButton->setObjectName("emptyOpenButton");
    connect(openButton, &QPushButton::clicked, this, &MainWindow::openModelDialog);
    auto* buttonRow = new QHBoxLayout;
    buttonRow->addStretch(1);
    buttonRow->addWidget(openButton);
    buttonRow->addStretch(1);
    emptyLayout->addLayout(buttonRow);
    emptyLayout->addStretch(3);
    m_stack->addWidget(m_emptyPage);

    // Token stream page.
    auto* tokensPage = new QWidget(m_stack);
    auto* tokensLayout = new QVBoxLayout(tokensPage);
    tokensLayout->setContentsMargins(6, 6, 6, 6);
    auto* header = new QHBoxLayout;
    m_runLabel = new QLabel(tr("Press Generate (Ctrl+Return) to run the prompt."), tokensPage);
    // Ignored: a long run summary is clipped rather than widening the window.
    m_runLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    header->addWidget(m_runLabel, 1);
    m_legend = new TokenColorLegend(tokensPage);
    header->addWidget(m_legend);
    header->addSpacing(8);
    header->addWidget(new QLabel(tr("Colour by"), tokensPage));
    m_colorCombo = new QComboBox(tokensPage);
    m_colorCombo->addItem(tr("Probability"), "probability");
    m_colorCombo->addItem(tr("Entropy"), "entropy");
    connect(m_colorCombo, &QComboBox::activated, this,
            [this](int i) { setColorMode(m_colorCombo->itemData(i).toString()); });
    header->addWidget(m_colorCombo);
    tokensLayout->addLayout(header);
    m_tokenView = new TokenStreamView(tokensPage);
    m_tokenView->setModel(m_tokenModel);
    m_tokenView->setSelection(m_selection);
    tokensLayout->addWidget(m_tokenView, 1);
    m_stepLabel = new QLabel(tokensPage);
    m_stepLabel->setTextFormat(Qt::RichText);
    m_stepLabel->setWordWrap(true);
    m_stepLabel->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    m_stepLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_stepLabel->setText(tr("Click a token to select its step; hover for its alternatives."));
    tokensLayout->addWidget(m_stepLabel);
    connect(m_selection, &StepSelection::positionChanged, this, &MainWindow::updateStepLabel);
    m_stack->addWidget(tokensPage);

    setCentralWidget(central);
}

void MainWindow::createDocks()
{
    m_modelDock = new QDockWidget(tr("Model"), this);
    m_modelDock->setObjectName("modelDock");
    m_summaryPanel = new ModelSummaryPanel(m_modelDock);
    m_modelDock->setWidget(m_summaryPanel);
    addDockWidget(Qt::LeftDockWidgetArea, m_modelDock);

    m_promptDock = new QDockWidget(tr("Prompt"), this);
    m_promptDock->setObjectName("promptDock");
    auto* promptWidget = new QWidget(m_promptDock);
    auto* promptLayout = new QVBoxLayout(promptWidget);
    m_prompt = new QPlainTextEdit(promptWidget);
    m_prompt->setObjectName("promptEditor");
    m_prompt->setTabChangesFocus(false);
    QFont mono = QFontDatabase::systemFont(QFontDatabase::FixedFont);
    m_prompt->setFont(mono);
    connect(m_prompt, &QPlainTextEdit::textChanged, this, [this] {
        if (!m_settingPrompt) m_promptIsSample = false;
    });
    promptLayout->addWidget(m_prompt, 1);
    m_promptHint = new QLabel(promptWidget);
    m_promptHint->setWordWrap(true);
    m_promptHint->setEnabled(false);
    promptLayout->addWidget(m_promptHint);
    auto* row = new QHBoxLayout;
    m_tokenIdsBox = new QCheckBox(tr("Token ids"), promptWidget);
    m_tokenIdsBox->setToolTip(tr("Treat the prompt as a list of token ids (1, 5, 9)."));
    connect(m_tokenIdsBox, &QCheckBox::toggled, this, [this] { updatePromptMode(); });
    row->addWidget(m_tokenIdsBox);
    row->addStretch(1);
    m_generateButton = new QPushButton(tr("Generate"), promptWidget);
    m_generateButton->setToolTip(tr("Generate (Ctrl+Return)"));
    m_generateButton->setDefault(true);
    connect(m_generateButton, &QPushButton::clicked, this, &MainWindow::startGeneration);
    m_stopButton = new QPushButton(tr("Stop"), promptWidget);
    m_stopButton->setToolTip(tr("Stop (Esc)"));
    connect(m_stopButton, &QPushButton::clicked, this, &MainWindow::stopGeneration);
    row->addWidget(m_generateButton);
    row->addWidget(m_stopButton);
    promptLayout->addLayout(row);
    m_promptDock->setWidget(promptWidget);
    addDockWidget(Qt::LeftDockWidgetArea, m_promptDock);

    m_samplingDock = new QDockWidget(tr("Sampling"), this);
    m_samplingDock->setObjectName("samplingDock");
    m_sampling = new SamplingPanel(m_samplingDock);
    m_samplingDock->setWidget(m_sampling);
    addDockWidget(Qt::RightDockWidgetArea, m_samplingDock);
    createTraceDocks();
}

void MainWindow::createTraceDocks()
{
    // The trace views share one feed of the document's trace and the step selection.
    m_traceFeed = new TraceFeed(this);
    m_traceFeed->setDocument(m_document);

    m_routingDock = new QDockWidget(tr("Expert Routing"), this);
    m_routingDock->setObjectName("routingDock");
    m_routingView = new RoutingView(m_routingDock);
    m_routingView->setFeed(m_traceFeed);
    m_routingView->setSelection(m_selection);
    m_routingDock->setWidget(m_routingView);
    addDockWidget(Qt::BottomDockWidgetArea, m_routingDock);

    m_mchDock = new QDockWidget(tr("MCH Streams"), this);
    m_mchDock->setObjectName("mchDock");
    m_mchView = new MchStreamsView(m_mchDock);
    m_mchView->setFeed(m_traceFeed);
    m_mchView->setSelection(m_selection);
    m_mchDock->setWidget(m_mchView);
    addDockWidget(Qt::BottomDockWidgetArea, m_mchDock);
    tabifyDockWidget(m_routingDock, m_mchDock);
    m_routingDock->raise();
}

void MainWindow::createTraceViews()
{
    m_exactService = new ExactAttentionService(this);

    m_heatDock = new QDockWidget(tr("Attention"), this);
    m_heatDock->setObjectName("attentionDock");
    m_heatmapView = new AttentionHeatmapView(m_heatDock);
    m_heatmapView->setDocument(m_document);
    m_heatmapView->setSelection(m_selection);
    m_heatmapView->setExactSource(m_exactService);
    m_heatDock->setWidget(m_heatmapView);
    addDockWidget(Qt::BottomDockWidgetArea, m_heatDock);

    m_loopsDock = new QDockWidget(tr("Loops"), this);
    m_loopsDock->setObjectName("loopsDock");
    m_loopsView = new LoopComparisonView(m_loopsDock);
    m_loopsView->setDocument(m_document);
    m_loopsView->setSelection(m_selection);
    m_loopsView->setExactSource(m_exactService);
    m_loopsDock->setWidget(m_loopsView);
    addDockWidget(Qt::BottomDockWidgetArea, m_loopsDock);
    tabifyDockWidget(m_heatDock, m_loopsDock);
    // One tab group for every trace view: attention, loops, routing, MCH (and the decision tree).
    tabifyDockWidget(m_loopsDock, m_routingDock);
    tabifyDockWidget(m_routingDock, m_mchDock);
    m_heatDock->raise();

    connect(m_document, &RunDocument::traceAppended, this, &MainWindow::updateTraceLabel);
    connect(m_document, &RunDocument::traceChanged, this, &MainWindow::updateTraceLabel);
}

void MainWindow::onTraceStarted(quint64 job, std::shared_ptr<const Trace> trace)
{
    if (job != m_genJob) return;
    m_document->setTrace(std::move(trace));
}

void MainWindow::updateTraceLabel()
{
    const std::shared_ptr<const Trace> trace = m_document->trace();
    if (!trace) {
        m_traceLabel->setText(tr("Trace: off"));
        return;
    }
    const double mib = double(trace->bytes()) / (1024.0 * 1024.0);
    m_traceLabel->setText(
        tr("Trace %1 MiB · %2").arg(mib, 0, 'f', mib < 10 ? 2 : 1).arg(QString::fromStdString(trace->info().policy)));
}

QString MainWindow::traceStatusText() const
{
    return m_traceLabel->text();
}

bool MainWindow::isViewBusy(const QString& name) const
{
    if (name == QLatin1String("heatmap")) return m_heatmapView->isBusy();
    if (name == QLatin1String("loops")) return m_loopsView->isBusy();
    return false;
}

void MainWindow::createStatusBar()
{
    m_speedLabel = new QLabel(this);
    m_traceLabel = new QLabel(tr("Trace: off"), this);
    m_traceLabel->setToolTip(tr("Memory held by the captured trace of this run"));
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 100);
    m_progress->setMaximumWidth(180);
    m_progress->hide();
    statusBar()->addPermanentWidget(m_progress);
    statusBar()->addPermanentWidget(m_speedLabel);
    statusBar()->addPermanentWidget(m_traceLabel);
}

void MainWindow::setState(State state)
{
    m_state = state;
    const bool ready = state == State::Ready;
    const bool running = state == State::Generating;
    m_generateAction->setEnabled(ready);
    m_generateButton->setEnabled(ready);
    m_stopAction->setEnabled(running || state == State::Explaining);
    m_stopButton->setEnabled(running || state == State::Explaining);
    m_progress->setVisible(state == State::Loading || state == State::Explaining);
    updateRunActions();
    m_stack->setCurrentIndex(m_hasModel ? 1 : 0);
    if (state == State::Loading)
        m_emptyLabel->setText(tr("<h2>Loading model…</h2>"));
    else if (!m_hasModel)
        m_emptyLabel->setText(tr("<h2>No model loaded</h2><p>Open a model folder (config.json, *.safetensors and "
                                 "optionally tokenizer.model),<br/>or drop one onto this window.</p>"));
    emit stateChanged(state);
}

void MainWindow::showError(const QString& message)
{
    m_lastError = message;
    m_errorLabel->setText(message);
    m_errorBanner->show();
    statusBar()->showMessage(tr("Error: %1").arg(message), 10000);
    emit errorShown(message);
}

void MainWindow::clearError()
{
    m_errorBanner->hide();
}

void MainWindow::rebuildRecentMenu()
{
    m_recentMenu->clear();
    const QStringList recent = m_settings->recentModels();
    for (const QString& folder : recent) {
        QAction* a = m_recentMenu->addAction(QDir::toNativeSeparators(folder));
        connect(a, &QAction::triggered, this, [this, folder] { openModel(folder); });
    }
    if (recent.isEmpty()) m_recentMenu->addAction(tr("(none)"))->setEnabled(false);
    m_recentMenu->addSeparator();
    QAction* clear = m_recentMenu->addAction(tr("Clear Recent Models"));
    clear->setEnabled(!recent.isEmpty());
    connect(clear, &QAction::triggered, this, [this] {
        m_settings->clearRecentModels();
        rebuildRecentMenu();
    });
}

bool MainWindow::openStartupModel()
{
    QString folder;
    if (m_settings->reopenLastModel()) {
        const QString last = m_settings->lastModel();
        if (!last.isEmpty() && QFileInfo::exists(last + "/config.json")) folder = last;
    }
    if (folder.isEmpty() && QFileInfo::exists(bundledModelFolder() + "/config.json")) folder = bundledModelFolder();
    if (folder.isEmpty()) {
        statusBar()->showMessage(tr("The bundled model is not installed; open a model folder to start."));
        return false;
    }
    openModel(folder);
    return true;
}

void MainWindow::openModel(const QString& folder)
{
    clearError();
    if (m_genJob != 0) {
        m_worker->requestCancel(m_genJob);
        m_genJob = 0; // its remaining results are dropped
    }
    const QString path = QDir::cleanPath(QFileInfo(folder).absoluteFilePath());
    m_loadJob = ++m_lastJob;
    m_progress->setValue(0);
    setState(State::Loading);
    statusBar()->showMessage(tr("Loading %1…").arg(QDir::toNativeSeparators(path)));
    const quint64 job = m_loadJob;
    const int threads = m_settings->threads();
    QMetaObject::invokeMethod(
        m_worker, [w = m_worker, job, path, threads] { w->loadModel(job, path, threads); }, Qt::QueuedConnection);
}

void MainWindow::openModelDialog()
{
    const QString start = m_hasModel ? QFileInfo(m_summary.folder).absolutePath() : QDir::homePath();
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Open Model Folder"), start);
    if (!folder.isEmpty()) openModel(folder);
}

void MainWindow::showPreferences()
{
    PreferencesDialog dialog(*m_settings, this);
    if (m_summary.layers > 0)
        dialog.setModelShape(m_summary.layers, m_summary.heads, m_summary.loops, QDir(m_summary.folder).dirName());
    if (dialog.exec() != QDialog::Accepted) return;
    dialog.store(*m_settings);
    ThemeManager::apply(dialog.theme());
    for (QAction* a : m_themeGroup->actions())
        a->setChecked(a->data().toString() == WorkbenchSettings::themeName(dialog.theme()));
    const int threads = dialog.threads();
    if (m_hasModel) m_exactService->setModel(m_worker->sharedModel(), threads);
    QMetaObject::invokeMethod(
        m_worker, [w = m_worker, threads] { w->setThreads(threads); }, Qt::QueuedConnection);
}

void MainWindow::onLoadProgress(quint64 job, int percent, const QString& stage)
{
    if (job != m_loadJob) return;
    m_progress->setValue(percent);
    statusBar()->showMessage(stage);
}

void MainWindow::onModelLoaded(quint64 job, const ModelSummary& summary)
{
    if (job != m_loadJob) return;
    m_loadJob = 0;
    m_hasModel = true;
    m_summary = summary;
    m_summaryPanel->setSummary(summary);
    m_sampling->setModelLoops(summary.loops);
    // Exact attention maps and lens token texts use the same (read-only) model from the GUI side.
    const std::shared_ptr<const Model> model = m_worker->sharedModel();
    m_exactService->setModel(model, m_settings->threads());
    m_loopsView->setTokenText([model](int32_t id) {
        const Tokenizer* t = model ? model->tokenizer() : nullptr;
        return t ? QString::fromStdString(t->pieceText(id)) : QStringLiteral("#%1").arg(id);
    });
    m_document->clear();
    // The designated multi-context heads come from the config (a few bytes; already validated by the load).
    QList<QPair<int, int>> mchHeads;
    try {
        for (const auto& [layer, head] : ModelConfig::load(summary.folder.toStdString()).mchHeads)
            mchHeads.append({int(layer), int(head)});
    } catch (const std::exception&) {
        // No designated heads then: the ranking still orders heads by their measured score.
    }
    m_mchView->setDesignatedHeads(mchHeads);
    m_settings->addRecentModel(summary.folder);
    rebuildRecentMenu();
    setWindowTitle(tr("%1 — SAGE Workbench").arg(QDir(summary.folder).dirName()));
    m_tokenIdsBox->setEnabled(summary.hasTokenizer);
    if (!summary.hasTokenizer)
        m_tokenIdsBox->setChecked(true);
    else if (m_promptIsSample || m_prompt->toPlainText().trimmed().isEmpty())
        m_tokenIdsBox->setChecked(false);
    updatePromptMode();
    if (m_promptIsSample || m_prompt->toPlainText().trimmed().isEmpty()) setSamplePrompt();
    m_runLabel->setText(tr("Press Generate (Ctrl+Return) to run the prompt."));
    if (QFileInfo::exists(m_settings->autosaveFile()))
        statusBar()->showMessage(tr("Loaded %1 · the latest captured run is kept: File > Open Autosaved Run")
                                     .arg(QDir::toNativeSeparators(summary.folder)),
                                 10000);
    else
        statusBar()->showMessage(tr("Loaded %1").arg(QDir::toNativeSeparators(summary.folder)), 5000);
    setState(State::Ready);
    emit modelLoaded(summary.folder);
}

void MainWindow::onLoadFailed(quint64 job, const QString& folder, const QString& message)
{
    if (job != m_loadJob) return;
    m_loadJob = 0;
    Q_UNUSED(folder);
    setState(m_hasModel ? State::Ready : State::NoModel);
    showError(message);
    emit modelLoadFailed(message);
}

void MainWindow::setSamplePrompt()
{
    m_settingPrompt = true;
    m_prompt->setPlainText(QString::fromLatin1(m_tokenIdsBox->isChecked() ? kSampleIdPrompt : kSampleTextPrompt));
    m_settingPrompt = false;
    m_promptIsSample = true;
}

void MainWindow::updatePromptMode()
{
    const bool ids = m_tokenIdsBox->isChecked();
    if (m_hasModel && !m_summary.hasTokenizer)
        m_promptHint->setText(
            tr("This model has no tokenizer: enter token ids (below %1), e.g. 1, 5, 9.").arg(m_summary.vocabSize));
    else if (ids)
        m_promptHint->setText(tr("Token ids, separated by commas or spaces."));
    else
        m_promptHint->setText(tr("Text is encoded with the model's tokenizer."));
    m_prompt->setPlaceholderText(ids ? tr("1, 5, 9, 13") : tr("Prompt text"));
    if (m_promptIsSample) setSamplePrompt();
}

void MainWindow::setPromptText(const QString& text)
{
    m_tokenIdsBox->setChecked(false);
    m_prompt->setPlainText(text);
    m_promptIsSample = false;
}

void MainWindow::setPromptTokens(const QList<int>& ids)
{
    QStringList parts;
    for (int id : ids) parts << QString::number(id);
    m_tokenIdsBox->setChecked(true);
    m_prompt->setPlainText(parts.join(", "));
    m_promptIsSample = false;
}

QString MainWindow::promptText() const
{
    return m_prompt->toPlainText();
}

bool MainWindow::promptUsesTokenIds() const
{
    return m_tokenIdsBox->isChecked();
}

bool MainWindow::parseTokenIds(const QString& text, QList<int>* ids, QString* error)
{
    ids->clear();
    const QStringList parts = text.split(QRegularExpression("[,\\s]+"), Qt::SkipEmptyParts);
    for (const QString& part : parts) {
        bool ok = false;
        const int id = part.toInt(&ok);
        if (!ok || id < 0) {
            *error = tr("the prompt is not a list of token ids: '%1' is not a non-negative integer").arg(part);
            return false;
        }
        ids->append(id);
    }
    if (ids->isEmpty()) {
        *error = tr("the prompt is empty; enter token ids such as 1, 5, 9");
        return false;
    }
    return true;
}

bool MainWindow::startGeneration()
{
    if (m_state != State::Ready) return false;
    clearError();
    GenerationJob job;
    job.useTokenIds = m_tokenIdsBox->isChecked();
    if (job.useTokenIds) {
        QString error;
        if (!parseTokenIds(m_prompt->toPlainText(), &job.promptIds, &error)) {
            showError(error);
            emit generationFailed(error);
            return false;
        }
    } else {
        job.promptText = m_prompt->toPlainText();
    }
    job.settings = m_sampling->settings();
    job.capturePolicy = m_settings->capturePolicy();
    job.captureSelection = m_settings->captureSelection();
    job.autosavePath = m_settings->autosaveFile();
    m_settings->setSampling(job.settings);
    launchGeneration(job);
    return true;
}

void MainWindow::launchGeneration(const GenerationJob& job)
{
    m_genJob = ++m_lastJob;
    m_tokensPerSecond = 0;
    m_stepsAtClock = 0;
    m_genClock.invalidate();
    m_speedLabel->clear();
    m_runLabel->setText(tr("Generating…"));
    setState(State::Generating);
    const quint64 id = m_genJob;
    QMetaObject::invokeMethod(
        m_worker, [w = m_worker, id, job] { w->generate(id, job); }, Qt::QueuedConnection);
}

void MainWindow::stopGeneration()
{
    if (m_state == State::Explaining) {
        m_worker->requestCancel(m_irJob);
        m_runLabel->setText(tr("Cancelling Explain…"));
        return;
    }
    if (m_state != State::Generating) return;
    m_worker->requestCancel(m_genJob);
    m_runLabel->setText(tr("Stopping…"));
    setState(State::Stopping);
}

void MainWindow::onGenerationStarted(quint64 job, const QList<PromptToken>& prompt, int vocabSize)
{
    if (job != m_genJob) return;
    setIrReport(nullptr);
    m_document->beginRun(prompt, vocabSize);
}

void MainWindow::onStepsAppended(quint64 job, int first, const QList<GeneratedStep>& steps)
{
    if (job != m_genJob || first != m_document->stepCount()) return;
    if (!m_genClock.isValid()) {
        // Speed is measured from the first batch on, so it reflects decoding rather than prefill.
        m_genClock.start();
        m_stepsAtClock = first + int(steps.size());
    }
    m_document->appendSteps(steps);
    const double seconds = m_genClock.elapsed() / 1000.0;
    if (seconds > 0.2) {
        m_tokensPerSecond = (m_document->stepCount() - m_stepsAtClock) / seconds;
        m_speedLabel->setText(
            tr("%1 tokens · %2 tok/s").arg(m_document->stepCount()).arg(m_tokensPerSecond, 0, 'f', 1));
    } else {
        m_speedLabel->setText(tr("%1 tokens").arg(m_document->stepCount()));
    }
}

void MainWindow::onGenerationFinished(quint64 job, const GenerationStats& stats)
{
    if (job != m_genJob) return;
    m_genJob = 0;
    m_document->finishRun(stats.stopReason, stats.text);
    m_tokensPerSecond = stats.decodeTokensPerSecond();
    m_speedLabel->setText(tr("%1 tokens · %2 tok/s").arg(stats.steps).arg(m_tokensPerSecond, 0, 'f', 1));
    const QString summary = tr("%1 prompt + %2 generated tokens · stopped: %3 · prefill %4 tok/s · decode %5 tok/s")
                                .arg(stats.promptTokens)
                                .arg(stats.steps)
                                .arg(stats.stopReason)
                                .arg(stats.prefillTokensPerSecond(), 0, 'f', 1)
                                .arg(m_tokensPerSecond, 0, 'f', 1);
    m_runLabel->setText(summary);
    if (!m_openingSession.isEmpty()) {
        m_runLabel->setText(tr("Session %1: %2 prompt + %3 generated tokens")
                                .arg(QFileInfo(m_openingSession).fileName())
                                .arg(stats.promptTokens)
                                .arg(stats.steps));
        statusBar()->showMessage(tr("Opened %1").arg(m_openingSession), 5000);
        const QString path = m_openingSession;
        m_openingSession.clear();
        setState(State::Ready);
        emit sessionOpened(path);
        return;
    }
    statusBar()->showMessage(tr("Generation finished (%1)").arg(stats.stopReason), 5000);
    setState(State::Ready);
    emit generationFinished(stats.stopReason);
}

void MainWindow::onGenerationFailed(quint64 job, const QString& message)
{
    if (job != m_genJob) return;
    m_genJob = 0;
    if (m_document->state() == RunDocument::State::Running) m_document->finishRun(QStringLiteral("error"), {});
    m_runLabel->setText(tr("Generation failed."));
    setState(State::Ready);
    showError(message);
    emit generationFailed(message);
}

bool MainWindow::showView(const QString& name)
{
    if (name == QLatin1String("heatmap") || name == QLatin1String("loops") || name == QLatin1String("routing") ||
        name == QLatin1String("mch") || name == QLatin1String("tree")) {
        QDockWidget* dock = name == QLatin1String("heatmap")   ? m_heatDock
                            : name == QLatin1String("loops")   ? m_loopsDock
                            : name == QLatin1String("routing") ? m_routingDock
                            : name == QLatin1String("mch")     ? m_mchDock
                                                               : m_decisionDock;
        dock->show();
        dock->raise();
        // The views need room: give the dock most of the window's height.
        resizeDocks({dock}, {int(height() * 0.62)}, Qt::Vertical);
        // Again once the dock's layout has settled (a freshly shown dock ignores the first request).
        QTimer::singleShot(0, dock, [this, dock] { resizeDocks({dock}, {int(height() * 0.62)}, Qt::Vertical); });
        dock->widget()->setFocus();
        return true;
    }
    if (name != QLatin1String("tokens")) return false;
    if (m_hasModel) m_stack->setCurrentIndex(1);
    m_tokenView->setFocus();
    return true;
}

void MainWindow::setColorMode(const QString& mode)
{
    const bool entropy = mode == QLatin1String("entropy");
    m_tokenModel->setColorMode(entropy ? TokenColors::Mode::Entropy : TokenColors::Mode::Probability);
    m_settings->setTokenColorMode(entropy ? "entropy" : "probability");
    m_colorCombo->setCurrentIndex(entropy ? 1 : 0);
    m_legend->setMode(m_tokenModel->colorMode());
    if (m_colorGroup)
        for (QAction* a : m_colorGroup->actions())
            a->setChecked(a->data().toString() == (entropy ? "entropy" : "probability"));
}

void MainWindow::updateStepLabel(int position)
{
    if (position < 0 || position >= m_tokenModel->rowCount()) {
        m_stepLabel->setText(tr("Click a token to select its step; hover for its alternatives."));
        return;
    }
    const QModelIndex idx = m_tokenModel->index(position);
    const QString text = idx.data(Qt::DisplayRole).toString().toHtmlEscaped();
    const int id = idx.data(TokenStreamModel::TokenIdRole).toInt();
    if (idx.data(TokenStreamModel::IsPromptRole).toBool()) {
        m_stepLabel->setText(tr("Position %1 · prompt token <b>%2</b> (id %3)").arg(position).arg(text).arg(id));
        return;
    }
    QStringList alts;
    for (const QVariant& v : idx.data(TokenStreamModel::AlternativesRole).toList()) {
        const QVariantMap m = v.toMap();
        alts << QStringLiteral("%1 %2")
                    .arg(m.value("text").toString().toHtmlEscaped())
                    .arg(m.value("probability").toDouble(), 0, 'f', 3);
    }
    m_stepLabel->setText(tr("Step %1 (position %2) · <b>%3</b> (id %4) · p %5 · entropy %6 nats · top: %7")
                             .arg(idx.data(TokenStreamModel::StepRole).toInt())
                             .arg(position)
                             .arg(text)
                             .arg(id)
                             .arg(idx.data(TokenStreamModel::ProbabilityRole).toDouble(), 0, 'f', 4)
                             .arg(idx.data(TokenStreamModel::EntropyRole).toDouble(), 0, 'f', 3)
                             .arg(alts.join(QStringLiteral(" · "))));
}

void MainWindow::saveLayout()
{
    if (!m_persistState) return;
    m_settings->setWindowLayout(saveGeometry(), saveState());
    m_settings->setSampling(m_sampling->settings());
    m_settings->sync();
}

void MainWindow::closeEvent(QCloseEvent* event)
{
    if (m_genJob != 0) m_worker->requestCancel(m_genJob);
    saveLayout();
    event->accept();
}

QString MainWindow::droppedFolder(const QMimeData* mime)
{
    if (!mime || !mime->hasUrls()) return {};
    for (const QUrl& url : mime->urls()) {
        if (!url.isLocalFile()) continue;
        QFileInfo info(url.toLocalFile());
        if (info.isDir()) return info.absoluteFilePath();
        if (info.fileName() == QLatin1String("config.json")) return info.absolutePath();
    }
    return {};
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event)
{
    if (!droppedFolder(event->mimeData()).isEmpty()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event)
{
    const QString folder = droppedFolder(event->mimeData());
    if (folder.isEmpty()) return;
    event->acceptProposedAction();
    openModel(folder);
}

void MainWindow::createDecisionDock()
{
    m_decisionDock = new QDockWidget(tr("Decisions"), this);
    m_decisionDock->setObjectName("decisionDock");
    m_decisionPanel = new DecisionPointPanel(m_decisionDock);
    m_decisionPanel->setSelection(m_selection);
    m_decisionDock->setWidget(m_decisionPanel);
    addDockWidget(Qt::BottomDockWidgetArea, m_decisionDock);
    tabifyDockWidget(m_mchDock, m_decisionDock);
    m_heatDock->raise();
    connect(m_decisionPanel, &DecisionPointPanel::branchRequested, this,
            [this](qint64 position, int token) { branchFrom(position, token); });
}

void MainWindow::createIrActions()
{
    m_explainAction = new QAction(tr("&Explain (Inverse Reasoning)"), this);
    m_explainAction->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_E));
    m_explainAction->setToolTip(tr("Find the run's decision points, their evidence and counterfactual branches"));
    connect(m_explainAction, &QAction::triggered, this, &MainWindow::startExplain);

    m_exportReportAction = new QAction(tr("Export &Report…"), this);
    m_exportReportAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_E));
    connect(m_exportReportAction, &QAction::triggered, this, [this] {
        QString filter;
        const QString path = QFileDialog::getSaveFileName(
            this, tr("Export IR Report"), QDir::home().filePath(QStringLiteral("sage-report.html")),
            tr("HTML report (*.html);;PDF report (*.pdf);;Markdown (*.md);;JSON (*.json)"), &filter);
        if (!path.isEmpty()) exportReport(path);
    });

    m_exportViewAction = new QAction(tr("Export &View Image…"), this);
    m_exportViewAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_S));
    connect(m_exportViewAction, &QAction::triggered, this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Export View"),
                                                          QDir::home().filePath(QStringLiteral("sage-view.png")),
                                                          tr("PNG image (*.png);;SVG drawing (*.svg)"));
        if (!path.isEmpty()) exportViewImage(path);
    });

    m_copyViewAction = new QAction(tr("&Copy View Image"), this);
    m_copyViewAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C));
    connect(m_copyViewAction, &QAction::triggered, this, &MainWindow::copyViewImage);

    m_saveSessionAction = new QAction(tr("&Save Session…"), this);
    m_saveSessionAction->setShortcut(QKeySequence::Save);
    connect(m_saveSessionAction, &QAction::triggered, this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Save Session"),
                                                          QDir::home().filePath(QStringLiteral("run.sagetrace")),
                                                          tr("SAGE session (*.sagetrace)"));
        if (!path.isEmpty()) saveSession(path);
    });

    m_openSessionAction = new QAction(tr("Open Se&ssion…"), this);
    m_openSessionAction->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O));
    connect(m_openSessionAction, &QAction::triggered, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Open Session"), QDir::homePath(),
                                                          tr("SAGE session (*.sagetrace);;All files (*)"));
        if (!path.isEmpty()) openSession(path);
    });
    m_openAutosaveAction = new QAction(tr("Open &Autosaved Run"), this);
    m_openAutosaveAction->setToolTip(tr("The latest captured run, saved while it ran (also after a crash)"));
    connect(m_openAutosaveAction, &QAction::triggered, this, [this] { openSession(m_settings->autosaveFile()); });
    for (QAction* a : {m_explainAction, m_exportReportAction, m_exportViewAction, m_copyViewAction, m_saveSessionAction,
                       m_openSessionAction})
        addAction(a);
}

void MainWindow::updateRunActions()
{
    if (!m_explainAction) return;
    const bool ready = m_state == State::Ready;
    const bool hasRun = m_document->stepCount() > 0 && m_document->state() == RunDocument::State::Finished;
    m_explainAction->setEnabled(ready && hasRun);
    m_saveSessionAction->setEnabled(ready && hasRun && m_document->trace() != nullptr);
    m_openSessionAction->setEnabled(ready);
    m_openAutosaveAction->setEnabled(ready && QFileInfo::exists(m_settings->autosaveFile()));
    m_exportReportAction->setEnabled(m_irReport != nullptr);
}

bool MainWindow::startExplain()
{
    if (m_state != State::Ready) return false;
    if (m_document->stepCount() == 0) {
        showError(tr("Nothing to explain yet: generate some tokens first (Ctrl+Return), then Explain (Ctrl+E)."));
        emit explainFailed(m_lastError);
        return false;
    }
    clearError();
    m_irJob = ++m_lastJob;
    m_progress->setRange(0, 100);
    m_progress->setValue(0);
    m_progress->setFormat(tr("Explain: starting… %p%"));
    m_runLabel->setText(tr("Explaining (Esc cancels)…"));
    setState(State::Explaining);
    const quint64 id = m_irJob;
    const ExplainSettings settings = m_settings->explain(); // Preferences; defaults of docs/ir.md
    QMetaObject::invokeMethod(
        m_worker, [w = m_worker, id, settings] { w->explain(id, settings); }, Qt::QueuedConnection);
    return true;
}

void MainWindow::onExplainProgress(quint64 job, const QString& stage, double fraction)
{
    if (job != m_irJob) return;
    // Stages in order, each a quarter of the bar: generate (skipped after a run), sweep, branches, report.
    static const QStringList stages = {QStringLiteral("generate"), QStringLiteral("sweep"), QStringLiteral("branches"),
                                       QStringLiteral("report")};
    const int index = std::max(0, int(stages.indexOf(stage)));
    m_progress->setValue(int(100.0 * (index + std::clamp(fraction, 0.0, 1.0)) / stages.size()));
    m_progress->setFormat(tr("Explain: %1 %p%").arg(stage));
}

void MainWindow::onExplainFinished(quint64 job, std::shared_ptr<const IrReport> report)
{
    if (job != m_irJob) return;
    m_irJob = 0;
    setIrReport(std::move(report));
    const int points = int(m_irReport->decisionPoints.size());
    m_runLabel->setText(tr("Explained: %n decision point(s)", nullptr, points));
    statusBar()->showMessage(tr("Explain finished: %n decision point(s)", nullptr, points), 5000);
    setState(State::Ready);
    showView(QStringLiteral("tree"));
    emit explainFinished();
}

void MainWindow::onExplainFailed(quint64 job, const QString& message)
{
    if (job != m_irJob) return;
    m_irJob = 0;
    setState(State::Ready);
    m_runLabel->setText(message);
    if (message != tr("Explain cancelled")) showError(message);
    emit explainFailed(message);
}

void MainWindow::setIrReport(std::shared_ptr<const IrReport> report)
{
    m_irReport = std::move(report);
    m_decisionPanel->setReport(m_irReport);
    QSet<int> positions;
    if (m_irReport)
        for (const IrDecisionPoint& d : m_irReport->decisionPoints) positions.insert(int(d.position));
    m_tokenModel->setDecisionPositions(positions);
    updateRunActions();
}

bool MainWindow::branchFrom(qint64 position, int token)
{
    if (m_state != State::Ready) return false;
    if (position < m_document->promptLength() || position > m_document->positionCount()) {
        showError(tr("Cannot branch at position %1: it is not a generated step of this run.").arg(position));
        return false;
    }
    clearError();
    GenerationJob job;
    job.useTokenIds = true;
    for (const PromptToken& t : m_document->prompt()) job.promptIds.append(t.token);
    const int generated = int(position) - m_document->promptLength();
    for (int s = 0; s < generated; ++s) job.promptIds.append(m_document->step(s).token);
    job.promptIds.append(token);
    job.settings = m_sampling->settings();
    // The branch continues for the rest of the original run's length.
    job.settings.maxTokens = std::max(1, m_document->stepCount() - generated - 1);
    job.capturePolicy = m_settings->capturePolicy();
    job.captureSelection = m_settings->captureSelection();
    job.autosavePath = m_settings->autosaveFile();
    statusBar()->showMessage(tr("Branching at position %1 with token %2").arg(position).arg(token), 5000);
    launchGeneration(job);
    return true;
}

bool MainWindow::exportReport(const QString& path)
{
    if (!m_irReport) {
        showError(tr("No IR report to export: run Explain (Ctrl+E) first."));
        return false;
    }
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix != QLatin1String("json") && suffix != QLatin1String("md") && suffix != QLatin1String("html") &&
        suffix != QLatin1String("pdf")) {
        showError(tr("%1: unknown report format '%2'; use .json, .md, .html or .pdf").arg(path, suffix));
        return false;
    }
    // Formatting and writing happen on a pool thread (a long run's PDF takes a moment); the result comes back
    // queued to this window.
    const std::shared_ptr<const IrReport> report = m_irReport;
    QPointer<MainWindow> self(this);
    QThreadPool::globalInstance()->start([self, report, path, suffix] {
        QString error;
        try {
            std::string bytes;
            if (suffix == QLatin1String("json"))
                bytes = ReportJson::write(*report);
            else if (suffix == QLatin1String("md"))
                bytes = ReportMarkdown::write(*report);
            else if (suffix == QLatin1String("html"))
                bytes = ReportHtml::write(*report);
            else
                bytes = ReportPdf::write(*report);
            writeFileAtomically(std::filesystem::path(QFile::encodeName(path).toStdString()), bytes);
        } catch (const std::exception& e) {
            error = QString::fromStdString(e.what());
        }
        QMetaObject::invokeMethod(qApp, [self, path, error] {
            if (!self) return;
            if (!error.isEmpty()) {
                self->showError(error);
                return;
            }
            self->statusBar()->showMessage(tr("Exported %1").arg(path), 5000);
            emit self->reportExported(path);
        });
    });
    return true;
}

QWidget* MainWindow::currentViewWidget() const
{
    // The raised dock of the trace-view tab group that is visible, else the token stream.
    for (QDockWidget* d : {m_heatDock, m_loopsDock, m_routingDock, m_mchDock, m_decisionDock})
        if (d && d->isVisible() && !d->visibleRegion().isEmpty()) return d->widget();
    return m_tokenView;
}

bool MainWindow::exportViewImage(const QString& path)
{
    QWidget* w = currentViewWidget();
    if (QFileInfo(path).suffix().toLower() == QLatin1String("svg")) {
        QSvgGenerator gen;
        gen.setFileName(path);
        gen.setSize(w->size());
        gen.setViewBox(QRect(QPoint(0, 0), w->size()));
        gen.setTitle(tr("SAGE Workbench view"));
        QPainter painter;
        if (!painter.begin(&gen)) {
            showError(tr("%1: cannot write the SVG file; check that the folder exists and is writable").arg(path));
            return false;
        }
        w->render(&painter);
        painter.end();
    } else if (!w->grab().save(path, "PNG")) {
        showError(tr("%1: cannot write the PNG file; check that the folder exists and is writable").arg(path));
        return false;
    }
    statusBar()->showMessage(tr("Saved the view to %1").arg(path), 5000);
    return true;
}

void MainWindow::copyViewImage()
{
    QGuiApplication::clipboard()->setPixmap(currentViewWidget()->grab());
    statusBar()->showMessage(tr("View image copied to the clipboard"), 3000);
}

bool MainWindow::saveSession(const QString& path)
{
    if (m_state != State::Ready || m_document->state() != RunDocument::State::Finished) {
        showError(tr("Save Session needs a finished run: generate first (Ctrl+Return)."));
        return false;
    }
    const quint64 id = ++m_lastJob;
    const std::shared_ptr<const IrReport> report = m_irReport;
    QMetaObject::invokeMethod(
        m_worker, [w = m_worker, id, path, report] { w->saveSession(id, path, report); }, Qt::QueuedConnection);
    return true;
}

bool MainWindow::openSession(const QString& path)
{
    if (m_state != State::Ready) {
        showError(tr("Open a model before opening a session (a session is shown with its model's tokenizer)."));
        return false;
    }
    clearError();
    m_genJob = ++m_lastJob;
    m_openingSession = path;
    m_runLabel->setText(tr("Opening %1…").arg(QFileInfo(path).fileName()));
    setState(State::Generating);
    const quint64 id = m_genJob;
    QMetaObject::invokeMethod(
        m_worker, [w = m_worker, id, path] { w->openSession(id, path); }, Qt::QueuedConnection);
    return true;
}

} // namespace sage
