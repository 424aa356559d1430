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

    // Explain (Inverse Reasoning) settings of new runs, each clamped to the range Preferences offers
    // (clamped()); defaults of docs/ir.md.
    ExplainSettings explain() const;
    void setExplain(const ExplainSettings& e);
    // Clamps every field to its range: thresholds to [0, 20] nats and [0, 1], 1..64 decision points,
    // 0..5 branches per point (the alternatives recorded per point), 1..256 branch tokens.
    static ExplainSettings clamped(ExplainSettings e);

    QByteArray windowGeometry() const;
    QByteArray windowState() const;
    void setWindowLayout(const QByteArray& geometry, const QByteArray& state);

    void sync();
    QString fileName() const;

    static QString themeName(Theme theme);
    static Theme themeFromName(const QString& name, Theme fallback = Theme::Light);

private:
    std::unique_ptr<QSettings> m_settings;
};

} // namespace sage
