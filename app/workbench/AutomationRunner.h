#pragma once

#include <QList>
#include <QObject>
#include <QString>

namespace sage {

class MainWindow;

// Drives the window for --generate / --screenshot: waits for the model, sets the prompt, generates N
// tokens, shows the view, saves a PNG of the window and quits with 0; any error is printed to stderr and
// quits with 1. Nothing here blocks: each step follows the window's signals.
class AutomationRunner : public QObject
{
    Q_OBJECT

public:
    struct Options {
        QString model;      // empty: the window's startup model
        QString promptText; // set when --prompt was given
        bool hasPromptText = false;
        QList<int> promptIds; // set when --tokens was given
        int generate = -1;    // -1: no generation
        QString view = QStringLiteral("tokens");
        QString screenshot; // empty: none
        // Explain the run (Inverse Reasoning) before the screenshot; implied by --view tree and --report.
        bool explain = false;
        QString report; // write the IR report here (.json, .md, .html or .pdf); empty: none
    };

    AutomationRunner(MainWindow* window, Options options, QObject* parent = nullptr);

    // Starts the sequence; the application's event loop must be running or start soon after.
    void start();

signals:
    void finished(int exitCode);

private:
    void onModelReady();
    void onGenerated();
    void onExplained();
    void showAndWait();
    void capture();
    // heatmap / loops build their images off the GUI thread: wait until the view is idle, then capture.
    void waitForView();
    void fail(const QString& message);
    void done();

    MainWindow* m_window;
    Options m_options;
    bool m_finished = false;
    int m_idlePolls = 0;
    int m_polls = 0;
};

} // namespace sage
