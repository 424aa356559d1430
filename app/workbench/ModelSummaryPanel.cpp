#include "app/workbench/ModelSummaryPanel.h"

#include <QDir>
#include <QFormLayout>
#include <QLabel>
#include <QVBoxLayout>

namespace sage {

ModelSummaryPanel::ModelSummaryPanel(QWidget* parent) : QWidget(parent)
{
    auto* outer = new QVBoxLayout(this);
    m_empty = new QLabel(tr("No model loaded."), this);
    m_empty->setEnabled(false);
    outer->addWidget(m_empty);
    m_form = new QFormLayout;
    m_form->setLabelAlignment(Qt::AlignRight);
    m_form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    outer->addLayout(m_form);
    outer->addStretch(1);
}

QString ModelSummaryPanel::formatBytes(double b)
{
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    return u == 0 ? QStringLiteral("%1 B").arg(qint64(b)) : QStringLiteral("%1 %2").arg(b, 0, 'f', 2).arg(units[u]);
}

QString ModelSummaryPanel::formatCount(qint64 n)
{
    if (n >= 1'000'000'000) return QStringLiteral("%1 B").arg(double(n) / 1e9, 0, 'f', 2);
    if (n >= 1'000'000) return QStringLiteral("%1 M").arg(double(n) / 1e6, 0, 'f', 2);
    if (n >= 1'000) return QStringLiteral("%1 K").arg(double(n) / 1e3, 0, 'f', 1);
    return QString::number(n);
}

void ModelSummaryPanel::setRows(const QList<QPair<QString, QString>>& rows)
{
    while (m_form->rowCount() > 0) m_form->removeRow(0);
    m_values.clear();
    for (const auto& [field, text] : rows) {
        auto* label = new QLabel(text, this);
        label->setTextInteractionFlags(Qt::TextSelectableByMouse);
        label->setWordWrap(true);
        m_form->addRow(field, label);
        m_values.append({field, label});
    }
    m_empty->setVisible(rows.isEmpty());
}

void ModelSummaryPanel::setSummary(const ModelSummary& s)
{
    QList<QPair<QString, QString>> rows;
    rows.append({tr("Model"), QDir(s.folder).dirName()});
    rows.append({tr("Architecture"), s.architecture});
    rows.append({tr("Parameters"), QStringLiteral("%1 (%2)").arg(formatCount(s.parameters)).arg(s.parameters)});
    rows.append({tr("Weights"), QStringLiteral("%1, %2").arg(s.dtype, formatBytes(double(s.weightBytes)))});
    rows.append({tr("Layers"), QString::number(s.layers)});
    rows.append(
        {tr("Hidden"), tr("%1, %2 heads (KV %3) × %4").arg(s.hiddenSize).arg(s.heads).arg(s.kvHeads).arg(s.headDim)});
    rows.append({tr("Loops"), QString::number(s.loops)});
    rows.append({tr("Window"), s.loops > 1 ? tr("%1 tokens").arg(s.loopWindow) : tr("n/a (one loop)")});
    rows.append({tr("Experts"), s.experts > 0 ? tr("%1, top-%2").arg(s.experts).arg(s.expertsPerToken) : tr("dense")});
    if (s.mchHeads > 0) rows.append({tr("MCH heads"), QString::number(s.mchHeads)});
    rows.append({tr("Vocabulary"), QString::number(s.vocabSize)});
    rows.append({tr("Context"), tr("%1 tokens").arg(s.maxContext)});
    const double at4k = double(s.weightBytes) + s.loopRingBytes + s.kvBytesPerToken * 4096;
    rows.append({tr("Memory"), tr("%1 at 4096 tokens").arg(formatBytes(at4k))});
    rows.append({tr("KV cache"), tr("%1 per token").arg(formatBytes(s.kvBytesPerToken))});
    rows.append({tr("Tokenizer"), s.hasTokenizer ? tr("yes") : tr("none (token ids)")});
    rows.append({tr("Backend"), tr("CPU %1, %2 threads").arg(s.cpuIsa).arg(s.threads)});
    setRows(rows);
    setToolTip(s.folder);
}

void ModelSummaryPanel::clear()
{
    setRows({});
    setToolTip({});
}

QString ModelSummaryPanel::value(const QString& field) const
{
    for (const auto& [f, label] : m_values)
        if (f == field) return label->text();
    return {};
}

} // namespace sage
