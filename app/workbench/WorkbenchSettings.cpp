#include "app/workbench/WorkbenchSettings.h"

#include "engine/ir/IrConfig.h"

#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>

#include <algorithm>
#include <cmath>

namespace sage {

WorkbenchSettings::WorkbenchSettings() : m_settings(std::make_unique<QSettings>()) {}

WorkbenchSettings::WorkbenchSettings(const QString& iniFile)
    : m_iniFile(iniFile), m_settings(std::make_unique<QSettings>(iniFile, QSettings::IniFormat))
{
}

QString WorkbenchSettings::autosaveFile() const
{
    if (!m_iniFile.isEmpty()) {
        const QFileInfo ini(m_iniFile);
        return ini.absolutePath() + "/" + ini.completeBaseName() + ".autosave.sagetrace";
    }
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(dir);
    return dir + "/autosave.sagetrace";
}

int WorkbenchSettings::threads() const
{
    return std::max(0, m_settings->value("engine/threads", 0).toInt());
}

void WorkbenchSettings::setThreads(int threads)
{
    m_settings->setValue("engine/threads", std::max(0, threads));
}

WorkbenchSettings::Theme WorkbenchSettings::theme() const
{
    return themeFromName(m_settings->value("ui/theme", "light").toString());
}

void WorkbenchSettings::setTheme(Theme theme)
{
    m_settings->setValue("ui/theme", themeName(theme));
}

bool WorkbenchSettings::reopenLastModel() const
{
    return m_settings->value("session/reopenLastModel", true).toBool();
}

void WorkbenchSettings::setReopenLastModel(bool reopen)
{
    m_settings->setValue("session/reopenLastModel", reopen);
}

QString WorkbenchSettings::lastModel() const
{
    return m_settings->value("session/lastModel").toString();
}

QStringList WorkbenchSettings::recentModels() const
{
    return m_settings->value("session/recentModels").toStringList();
}

void WorkbenchSettings::addRecentModel(const QString& folder)
{
    QStringList list = recentModels();
    list.removeAll(folder);
    list.prepend(folder);
    while (list.size() > kMaxRecentModels) list.removeLast();
    m_settings->setValue("session/recentModels", list);
    m_settings->setValue("session/lastModel", folder);
}

void WorkbenchSettings::clearRecentModels()
{
    m_settings->remove("session/recentModels");
}

GenerationSettings WorkbenchSettings::sampling() const
{
    GenerationSettings d;
    GenerationSettings s;
    s.maxTokens = m_settings->value("sampling/maxTokens", d.maxTokens).toInt();
    s.temperature = m_settings->value("sampling/temperature", d.temperature).toDouble();
    s.topK = m_settings->value("sampling/topK", d.topK).toInt();
    s.topP = m_settings->value("sampling/topP", d.topP).toDouble();
    s.minP = m_settings->value("sampling/minP", d.minP).toDouble();
    s.repetitionPenalty = m_settings->value("sampling/repetitionPenalty", d.repetitionPenalty).toDouble();
    s.seed = m_settings->value("sampling/seed", d.seed).toULongLong();
    s.maxLoops = m_settings->value("sampling/maxLoops", d.maxLoops).toInt();
    return s;
}

void WorkbenchSettings::setSampling(const GenerationSettings& s)
{
    m_settings->setValue("sampling/maxTokens", s.maxTokens);
    m_settings->setValue("sampling/temperature", s.temperature);
    m_settings->setValue("sampling/topK", s.topK);
    m_settings->setValue("sampling/topP", s.topP);
    m_settings->setValue("sampling/minP", s.minP);
    m_settings->setValue("sampling/repetitionPenalty", s.repetitionPenalty);
    m_settings->setValue("sampling/seed", s.seed);
    m_settings->setValue("sampling/maxLoops", s.maxLoops);
}

QString WorkbenchSettings::tokenColorMode() const
{
    const QString mode = m_settings->value("ui/tokenColorMode", "probability").toString();
    return mode == "entropy" ? mode : QStringLiteral("probability");
}

void WorkbenchSettings::setTokenColorMode(const QString& mode)
{
    m_settings->setValue("ui/tokenColorMode", mode);
}

QStringList WorkbenchSettings::capturePolicies()
{
    return {QStringLiteral("off"), QStringLiteral("summary"), QStringLiteral("standard"), QStringLiteral("full")};
}

QString WorkbenchSettings::capturePolicy() const
{
    const QString p = m_settings->value("capture/policy", "standard").toString();
    return capturePolicies().contains(p) ? p : QStringLiteral("standard");
}

void WorkbenchSettings::setCapturePolicy(const QString& policy)
{
    m_settings->setValue("capture/policy", capturePolicies().contains(policy) ? policy : QStringLiteral("standard"));
}

CaptureSelection WorkbenchSettings::captureSelection() const
{
    CaptureSelection s;
    const auto text = [&](const char* key) { return m_settings->value(key).toString().trimmed().toStdString(); };
    s.loops = text("capture/loops");
    s.layers = text("capture/layers");
    s.heads = text("capture/heads");
    s.streams = text("capture/streams");
    s.fullHeads = text("capture/fullHeads");
    bool ok = false;
    const int k = m_settings->value("capture/attentionTopK", -1).toInt(&ok);
    s.attentionTopK = ok ? std::clamp(k, -1, kMaxAttentionTopK) : -1;
    const qlonglong keys = m_settings->value("capture/fullRowMaxKeys", -1).toLongLong(&ok);
    s.fullRowMaxKeys = ok ? std::clamp<qlonglong>(keys, -1, kMaxFullRowKeys) : -1;
    return s;
}

void WorkbenchSettings::setCaptureSelection(const CaptureSelection& s)
{
    m_settings->setValue("capture/loops", QString::fromStdString(s.loops));
    m_settings->setValue("capture/layers", QString::fromStdString(s.layers));
    m_settings->setValue("capture/heads", QString::fromStdString(s.heads));
    m_settings->setValue("capture/streams", QString::fromStdString(s.streams));
    m_settings->setValue("capture/fullHeads", QString::fromStdString(s.fullHeads));
    m_settings->setValue("capture/attentionTopK", std::clamp(s.attentionTopK, -1, kMaxAttentionTopK));
    m_settings->setValue("capture/fullRowMaxKeys",
                         qlonglong(std::clamp<int64_t>(s.fullRowMaxKeys, -1, kMaxFullRowKeys)));
}

int WorkbenchSettings::maxBranchesPerPoint()
{
    return IrConfig{}.alternatives;
}

ExplainSettings WorkbenchSettings::clamped(ExplainSettings e)
{
    const auto finiteOr = [](double v, double fallback) { return std::isfinite(v) ? v : fallback; };
    const ExplainSettings d;
    e.entropyThreshold = std::clamp(finiteOr(e.entropyThreshold, d.entropyThreshold), 0.0, kMaxEntropyThreshold);
    e.marginThreshold = std::clamp(finiteOr(e.marginThreshold, d.marginThreshold), 0.0, 1.0);
    e.maxDecisionPoints = std::clamp(e.maxDecisionPoints, 1, kMaxDecisionPoints);
    e.branchesPerPoint = std::clamp(e.branchesPerPoint, 0, maxBranchesPerPoint());
    e.branchLength = std::clamp(e.branchLength, 1, kMaxBranchLength);
    return e;
}

ExplainSettings WorkbenchSettings::explain() const
{
    ExplainSettings e;
    e.entropyThreshold = m_settings->value("explain/entropyThreshold", e.entropyThreshold).toDouble();
    e.marginThreshold = m_settings->value("explain/marginThreshold", e.marginThreshold).toDouble();
    e.maxDecisionPoints = m_settings->value("explain/maxDecisionPoints", e.maxDecisionPoints).toInt();
    e.branchesPerPoint = m_settings->value("explain/branchesPerPoint", e.branchesPerPoint).toInt();
    e.branchLength = m_settings->value("explain/branchLength", e.branchLength).toInt();
    e.faithfulness = m_settings->value("explain/faithfulness", e.faithfulness).toBool();
    return clamped(e);
}

void WorkbenchSettings::setExplain(const ExplainSettings& value)
{
    const ExplainSettings e = clamped(value);
    m_settings->setValue("explain/entropyThreshold", e.entropyThreshold);
    m_settings->setValue("explain/marginThreshold", e.marginThreshold);
    m_settings->setValue("explain/maxDecisionPoints", e.maxDecisionPoints);
    m_settings->setValue("explain/branchesPerPoint", e.branchesPerPoint);
    m_settings->setValue("explain/branchLength", e.branchLength);
    m_settings->setValue("explain/faithfulness", e.faithfulness);
}

QByteArray WorkbenchSettings::windowGeometry() const
{
    return m_settings->value("window/geometry").toByteArray();
}

QByteArray WorkbenchSettings::windowState() const
{
    return m_settings->value("window/state").toByteArray();
}

void WorkbenchSettings::setWindowLayout(const QByteArray& geometry, const QByteArray& state)
{
    m_settings->setValue("window/geometry", geometry);
    m_settings->setValue("window/state", state);
}

void WorkbenchSettings::sync()
{
    m_settings->sync();
}

QString WorkbenchSettings::fileName() const
{
    return m_settings->fileName();
}

QString WorkbenchSettings::themeName(Theme theme)
{
    return theme == Theme::Dark ? QStringLiteral("dark") : QStringLiteral("light");
}

WorkbenchSettings::Theme WorkbenchSettings::themeFromName(const QString& name, Theme fallback)
{
    if (name.compare("dark", Qt::CaseInsensitive) == 0) return Theme::Dark;
    if (name.compare("light", Qt::CaseInsensitive) == 0) return Theme::Light;
    return fallback;
}

} // namespace sage
