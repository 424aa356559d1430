#include "viz/GateStatsModel.h"

#include "engine/capture/Trace.h"
#include "viz/HeatmapColors.h"
#include "viz/RunDocument.h"

#include <QColor>

#include <algorithm>
#include <cmath>

namespace sage {

GateStatsModel::GateStatsModel(QObject* parent) : QAbstractTableModel(parent) {}

void GateStatsModel::setDocument(RunDocument* document)
{
    if (m_doc) disconnect(m_doc, nullptr, this, nullptr);
    m_doc = document;
    if (m_doc) {
        connect(m_doc, &RunDocument::traceChanged, this, &GateStatsModel::reset);
        connect(m_doc, &RunDocument::cleared, this, &GateStatsModel::reset);
        connect(m_doc, &RunDocument::traceAppended, this, &GateStatsModel::append);
    }
    reset();
}

void GateStatsModel::reset()
{
    beginResetModel();
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    m_layers = trace ? int(trace->info().layers) : 0;
    m_heads = trace ? int(trace->info().heads) : 0;
    m_loops = trace ? int(trace->info().loops) : 0;
    m_seen = 0;
    m_cells.assign(size_t(std::max(0, m_loops - 1)) * size_t(m_layers) * size_t(m_heads), Cell{});
    endResetModel();
    if (trace && m_doc->traceStepCount() > 0) append(0, m_doc->traceStepCount());
}

int GateStatsModel::rowOf(int loop, int layer) const
{
    if (loop < 2 || loop > m_loops || layer < 0 || layer >= m_layers) return -1;
    return (loop - 2) * m_layers + layer;
}

void GateStatsModel::append(qint64, qint64 last)
{
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    if (!trace || m_cells.empty() || last <= m_seen) return;
    for (qint64 i = m_seen; i < last; ++i) {
        const Trace::StepPtr step = trace->step(i);
        if (!step) break;
        for (const LayerRecord& r : step->layers) {
            const int row = rowOf(r.loop, r.layer);
            if (row < 0 || int(r.gate.size()) != m_heads) continue;
            for (int h = 0; h < m_heads; ++h) {
                const float g = r.gate[size_t(h)];
                if (std::isnan(g)) continue;
                Cell& c = m_cells[size_t(row) * size_t(m_heads) + size_t(h)];
                c.min = c.count ? std::min(c.min, g) : g;
                c.max = c.count ? std::max(c.max, g) : g;
                c.sum += g;
                ++c.count;
            }
        }
        m_seen = i + 1;
    }
    if (rowCount() > 0) emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

int GateStatsModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() || m_heads == 0 ? 0 : std::max(0, m_loops - 1) * m_layers;
}

int GateStatsModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() || rowCount() == 0 ? 0 : m_heads;
}

QVariant GateStatsModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const Cell& c = m_cells[size_t(index.row()) * size_t(m_heads) + size_t(index.column())];
    const double mean = c.count ? c.sum / double(c.count) : std::nan("");
    switch (role) {
    case Qt::DisplayRole: return c.count ? QVariant(QString::number(mean, 'f', 2)) : QVariant();
    case MeanRole: return c.count ? QVariant(mean) : QVariant();
    case MinRole: return c.count ? QVariant(double(c.min)) : QVariant();
    case MaxRole: return c.count ? QVariant(double(c.max)) : QVariant();
    case CountRole: return c.count;
    case LoopRole: return 2 + index.row() / std::max(1, m_layers);
    case LayerRole: return index.row() % std::max(1, m_layers);
    case Qt::TextAlignmentRole: return int(Qt::AlignCenter);
    case Qt::BackgroundRole:
        // Red: the head leans on the global stream (g > 0.5); blue: on the local window.
        return c.count ? QVariant(QColor::fromRgb(HeatmapColors::divergingColor((mean - 0.5) * 2.0))) : QVariant();
    case Qt::ForegroundRole: return c.count ? QVariant(QColor(Qt::black)) : QVariant();
    case Qt::ToolTipRole:
        if (!c.count) return tr("No gates captured");
        return tr("Loop %1, layer %2, head %3: gate mean %4, min %5, max %6 over %7 positions")
            .arg(2 + index.row() / m_layers)
            .arg(index.row() % m_layers)
            .arg(index.column())
            .arg(mean, 0, 'f', 4)
            .arg(double(c.min), 0, 'f', 4)
            .arg(double(c.max), 0, 'f', 4)
            .arg(c.count);
    default: return {};
    }
}

QVariant GateStatsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (role != Qt::DisplayRole) return QAbstractTableModel::headerData(section, orientation, role);
    if (orientation == Qt::Horizontal) return tr("h%1").arg(section);
    if (m_layers == 0) return {};
    return m_loops > 2 ? tr("L%1 · layer %2").arg(2 + section / m_layers).arg(section % m_layers)
                       : tr("layer %1").arg(section % m_layers);
}

} // namespace sage
