#pragma once

#include "app/workbench/WorkbenchTypes.h"

#include <QByteArray>
#include <QSettings>
#include <QStringList>

#include <memory>

namespace sage {

// Typed access to the persisted settings (QSettings): engine threads, theme, last and recent models,
// sampling defaults, window layout. The default constructor uses the user's settings; tests and
// automation pass an INI file so they never touch them.
class WorkbenchSettings
{
public:
    enum class Theme { Light, Dark };
    static constexpr int kMaxRecentModels = 8;

    WorkbenchSettings();
    explicit WorkbenchSettings(const QString& iniFile);

    int threads() const; // 0 = all cores
    void setThreads(int threads);
    Theme theme() const;
    void setTheme(Theme theme);
    bool reopenLastModel() const;
    void setReopenLastModel(bool reopen);

    QString lastModel() const;
    QStringList recentModels() const;
    // Makes folder the last model and the first recent entry.
    void addRecentModel(const QString& folder);
    void clearRecentModels();

    GenerationSettings sampling() const;
    void setSampling(const GenerationSettings& s);
    // "probability" or "entropy"
    QString tokenColorMode() const;
    void setTokenColorMode(const QString& mode);

    // Capture policy of new runs: "off", "summary", "standard" (default) or "full".
    QString capturePolicy() const;
    void setCapturePolicy(const QString& policy);
    static QStringList capturePolicies();
    // What new runs' capture is narrowed to (CaptureSelection; empty fields keep the policy's choice). The text
    // fields are kept as written (a run checks them against its model); the numbers are clamped to their ranges.
    CaptureSelection captureSelection() const;
    // The session file the latest captured run is autosaved to while it runs (File > Open Autosaved Run):
    // next to the INI file for a settings file, else in the application's data folder.
    QString autosaveFile() const;
    static constexpr int64_t kMaxFullRowKeys = int64_t(1) << 30;
    void setCaptureSelection(const CaptureSelection& s);

    // Explain (Inverse Reasoning) settings of new runs, each clamped to the range Preferences offers
    // (clamped()); defaults of docs/ir.md.
    ExplainSettings explain() const;
    void setExplain(const ExplainSettings& e);
    // The ranges of the Explain settings, shared by clamped() and the Preferences fields: the entropy threshold
    // in [0, kMaxEntropyThreshold] nats, the margin in [0, 1], 1..kMaxDecisionPoints decision points,
    // 0..maxBranchesPerPoint() branches per point (the alternatives recorded per point), 1..kMaxBranchLength tokens.
    static constexpr double kMaxEntropyThreshold = 20.0;
    static constexpr int kMaxDecisionPoints = 64;
    static constexpr int kMaxBranchLength = 256;
    static int maxBranchesPerPoint();
    // Clamps every field to its range (a non-finite threshold becomes its default).
    static ExplainSettings clamped(ExplainSettings e);

    QByteArray windowGeometry() const;
    QByteArray windowState() const;
    void setWindowLayout(const QByteArray& geometry, const QByteArray& state);

    void sync();
    QString fileName() const;

    static QString themeName(Theme theme);
    static Theme themeFromName(const QString& name, Theme fallback = Theme::Light);

private:
    QString m_iniFile; // empty: the user's settings
    std::unique_ptr<QSettings> m_settings;
};

} // namespace sage
