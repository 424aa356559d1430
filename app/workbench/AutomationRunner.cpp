#include "app/workbench/AutomationRunner.h"

#include "app/workbench/MainWindow.h"
#include "app/workbench/SamplingPanel.h"
#include "viz/TraceFeed.h"

#include <QApplication>
#include <QImage>
#include <QPixmap>
#include <QSpinBox>
#include <QTimer>

#include <cstdio>

namespace sage {

AutomationRunner::AutomationRunner(MainWindow* window, Options options, QObject* parent)
    : QObject(parent), m_window(window), m_options(std::move(options))
{
}

void AutomationRunner::start()
{
    connect(m_window, &MainWindow::modelLoadFailed, this, [this](const QString& m) { fail(m); });
    connect(m_window, &MainWindow::generationFailed, this, [this](const QString& m) { fail(m); });
    connect(m_window, &MainWindow::modelLoaded, this, &AutomationRunner::onModelReady, Qt::QueuedConnection);

    if (!m_options.model.isEmpty()) {
        m_window->openModel(m_options.model);
    } else if (!m_window->openStartupModel()) {
        if (m_options.generate >= 0) {
            fail(QStringLiteral("no model to generate with: the bundled model is not installed in %1; pass --model DIR")
                     .arg(MainWindow::bundledModelFolder()));
            return;
        }
        QTimer::singleShot(0, this, &AutomationRunner::capture); // a screenshot of the empty state
    }
}

void AutomationRunner::onModelReady()
{
    if (m_finished) return;
    if (m_options.hasPromptText)
        m_window->setPromptText(m_options.promptText);
    else if (!m_options.promptIds.isEmpty())
        m_window->setPromptTokens(m_options.promptIds);
    if (m_options.generate < 0) {
        QTimer::singleShot(0, this, &AutomationRunner::capture);
        return;
    }
    if (m_options.generate == 0) {
        QTimer::singleShot(0, this, &AutomationRunner::capture);
        return;
    }
    m_window->samplingPanel()->maxTokensBox()->setValue(m_options.generate);
    connect(m_window, &MainWindow::generationFinished, this, &AutomationRunner::onGenerated, Qt::QueuedConnection);
    if (!m_window->startGeneration() && m_window->lastError().isEmpty())
        fail(QStringLiteral("generation could not start"));
}

void AutomationRunner::onGenerated()
{
    if (m_finished) return;
    if (m_options.explain || !m_options.report.isEmpty() || m_options.view == QLatin1String("tree")) {
        connect(m_window, &MainWindow::explainFinished, this, &AutomationRunner::onExplained, Qt::QueuedConnection);
        connect(m_window, &MainWindow::explainFailed, this, [this](const QString& m) { fail(m); });
        if (!m_window->startExplain()) fail(QStringLiteral("Explain could not start: %1").arg(m_window->lastError()));
        return;
    }
    showAndWait();
}

void AutomationRunner::onExplained()
{
    if (m_finished) return;
    if (m_options.report.isEmpty()) {
        showAndWait();
        return;
    }
    connect(m_window, &MainWindow::reportExported, this, [this](const QString& path) {
        std::fprintf(stderr, "sage-workbench: wrote %s\n", qPrintable(path));
        showAndWait();
    });
    connect(m_window, &MainWindow::errorShown, this, [this](const QString& m) { fail(m); });
    if (!m_window->exportReport(m_options.report)) fail(m_window->lastError());
}

void AutomationRunner::showAndWait()
{
    if (m_finished) return;
    if (!m_window->showView(m_options.view)) {
        fail(QStringLiteral("unknown view '%1'; views: %2").arg(m_options.view, MainWindow::viewNames().join(", ")));
        return;
    }
    // Let layouts, the last trace notifications and the view's image builds settle before grabbing.
    m_idlePolls = 0;
    m_polls = 0;
    QTimer::singleShot(50, this, &AutomationRunner::waitForView);
}

void AutomationRunner::waitForView()
{
    if (m_finished) return;
    constexpr int kPollMs = 50;
    constexpr int kMaxPolls = 2400; // two minutes: an exact map of a long sequence may take a while
    // Idle for a few polls in a row: notifications batched at ~30 Hz have all arrived and been drawn.
    m_idlePolls = m_window->isViewBusy(m_options.view) ? 0 : m_idlePolls + 1;
    if (m_idlePolls >= 4 || ++m_polls >= kMaxPolls) {
        capture();
        return;
    }
    QTimer::singleShot(kPollMs, this, &AutomationRunner::waitForView);
}

void AutomationRunner::capture()
{
    if (m_finished) return;
    m_window->showView(m_options.view);
    // Trace views draw batches; the screenshot must show every captured step.
    m_window->traceFeed()->flush();
    if ((m_options.view == QLatin1String("routing") || m_options.view == QLatin1String("mch")) &&
        !m_window->traceFeed()->hasTrace())
        std::fprintf(stderr, "sage-workbench: note: the run has no captured trace; the %s view is empty\n",
                     qPrintable(m_options.view));
    QCoreApplication::processEvents();
    if (!m_options.screenshot.isEmpty()) {
        const QImage image = m_window->grab().toImage();
        if (!image.save(m_options.screenshot, "PNG")) {
            fail(QStringLiteral("%1: cannot write the screenshot; check that the folder exists and is writable")
                     .arg(m_options.screenshot));
            return;
        }
        std::fprintf(stderr, "sage-workbench: saved %s (%dx%d)\n", qPrintable(m_options.screenshot), image.width(),
                     image.height());
    }
    done();
}

void AutomationRunner::fail(const QString& message)
{
    if (m_finished) return;
    m_finished = true;
    std::fprintf(stderr, "sage-workbench: error: %s\n", qPrintable(message));
    emit finished(1);
}

void AutomationRunner::done()
{
    if (m_finished) return;
    m_finished = true;
    emit finished(0);
}

} // namespace sage
