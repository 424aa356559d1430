// sage-workbench: the SAGE Workbench desktop application.
#include "app/workbench/AutomationRunner.h"
#include "app/workbench/MainWindow.h"
#include "app/workbench/ThemeManager.h"
#include "app/workbench/WorkbenchSettings.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QIcon>
#include <QTimer>

#include <cstdio>
#include <memory>

using namespace sage;

namespace {

int usageError(const QString& message)
{
    std::fprintf(stderr, "sage-workbench: %s (see sage-workbench --help)\n", qPrintable(message));
    return 2;
}

} // namespace

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    QApplication::setOrganizationName("SAGE");
    QApplication::setApplicationName("SAGE Workbench");
    QApplication::setApplicationVersion(SAGE_VERSION);
    QApplication::setDesktopFileName("sage-workbench");

    QCommandLineParser parser;
    parser.setApplicationDescription("SAGE Workbench: look inside looped mixture-of-experts transformers.");
    parser.addHelpOption();
    parser.addVersionOption();
    const QCommandLineOption model("model", "Open the model folder DIR (default: the last or the bundled model).",
                                   "DIR");
    const QCommandLineOption prompt("prompt", "Prompt text (needs a tokenizer).", "TEXT");
    const QCommandLineOption tokens("tokens", "Prompt as token ids, e.g. 1,5,9.", "IDS");
    const QCommandLineOption generate("generate", "Generate N tokens after loading.", "N");
    const QCommandLineOption view("view", "View to show: " + MainWindow::viewNames().join(", ") + ".", "VIEW",
                                  "tokens");
    const QCommandLineOption screenshot("screenshot", "Save a PNG of the window to FILE, then exit.", "FILE");
    const QCommandLineOption explain("explain",
                                     "After --generate, run Explain (Inverse Reasoning) before the screenshot.");
    const QCommandLineOption report("report",
                                    "After --generate, explain and write the IR report to FILE (.json, .md, "
                                    ".html or .pdf), then exit.",
                                    "FILE");
    const QCommandLineOption theme("theme", "light or dark (default: the saved preference).", "THEME");
    const QCommandLineOption settingsFile("settings",
                                          "Read and write settings in this INI file instead of the "
                                          "user's settings.",
                                          "FILE");
    parser.addOptions({model, prompt, tokens, generate, view, screenshot, explain, report, theme, settingsFile});
    parser.process(app);
    if (!parser.positionalArguments().isEmpty())
        return usageError("unexpected argument '" + parser.positionalArguments().first() + "'");
    if (parser.isSet(prompt) && parser.isSet(tokens)) return usageError("give --prompt or --tokens, not both");

    AutomationRunner::Options options;
    options.model = parser.value(model);
    if (parser.isSet(prompt)) {
        options.hasPromptText = true;
        options.promptText = parser.value(prompt);
    }
    if (parser.isSet(tokens)) {
        QString error;
        if (!MainWindow::parseTokenIds(parser.value(tokens), &options.promptIds, &error))
            return usageError("--tokens: " + error);
    }
    if (parser.isSet(generate)) {
        bool ok = false;
        options.generate = parser.value(generate).toInt(&ok);
        if (!ok || options.generate < 0) return usageError("--generate needs a non-negative number of tokens");
    }
    options.view = parser.value(view);
    if (!MainWindow::viewNames().contains(options.view))
        return usageError("unknown --view '" + options.view + "'; views: " + MainWindow::viewNames().join(", "));
    options.screenshot = parser.value(screenshot);
    options.explain = parser.isSet(explain);
    options.report = parser.value(report);
    if (parser.isSet(theme) && parser.value(theme) != "light" && parser.value(theme) != "dark")
        return usageError("--theme must be light or dark");

    std::unique_ptr<WorkbenchSettings> settings = parser.isSet(settingsFile)
                                                      ? std::make_unique<WorkbenchSettings>(parser.value(settingsFile))
                                                      : std::make_unique<WorkbenchSettings>();
    const WorkbenchSettings::Theme chosenTheme =
        parser.isSet(theme) ? WorkbenchSettings::themeFromName(parser.value(theme)) : settings->theme();
    ThemeManager::apply(chosenTheme);

    MainWindow window(settings.get());
    QApplication::setWindowIcon(window.windowIcon());
    const bool automated = parser.isSet(screenshot) || parser.isSet(generate) || parser.isSet(report);
    window.setPersistState(!automated);
    window.show();

    if (automated) {
        auto* runner = new AutomationRunner(&window, options, &window);
        QObject::connect(runner, &AutomationRunner::finished, &app, [](int code) { QApplication::exit(code); });
        QTimer::singleShot(0, runner, &AutomationRunner::start);
        return app.exec();
    }

    if (!options.model.isEmpty())
        window.openModel(options.model);
    else
        window.openStartupModel();
    // Interactive: a given prompt replaces the sample prompt once the model is in.
    QObject::connect(&window, &MainWindow::modelLoaded, &window, [&window, options] {
        static bool applied = false;
        if (applied) return;
        applied = true;
        if (options.hasPromptText)
            window.setPromptText(options.promptText);
        else if (!options.promptIds.isEmpty())
            window.setPromptTokens(options.promptIds);
    });
    return app.exec();
}
