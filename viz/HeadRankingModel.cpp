#include "viz/HeadRankingModel.h"

#include "engine/capture/Trace.h"
#include "viz/TraceFeed.h"

#include <QFont>

#include <algorithm>
#include <cmath>
#include <limits>

namespace sage {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

HeadRankingModel::HeadRankingModel(QObject* parent) : TraceTableModel(parent) {}

void HeadRankingModel::setDesignatedHeads(const QList<QPair<int, int>>& heads)
{
    m_designated = QSet<QPair<int, int>>(heads.begin(), heads.end());
    if (!m_stats.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
}

void HeadRankingModel::setLoop(int loop)
{
    loop = std::max(loop, 0);
    if (loop == m_loop) return;
    m_loop = loop;
    rebuild();
}

void HeadRankingModel::resetState()
{
    const bool looped = hasFeedData() && feed()->info().loops >= 2;
    m_layers = looped ? int(feed()->info().layers) : 0;
    m_heads = looped ? int(feed()->info().heads) : 0;
    m_stats.assign(size_t(m_layers) * size_t(m_heads), Stats{});
}

void HeadRankingModel::appendSteps(qint64 first, qint64 last)
{
    if (m_stats.empty() || last <= first) return;
    for (qint64 i = first; i < last; ++i) {
        for (const LayerRecord& r : feed()->step(i).layers) {
            if (r.loop < 2 || (m_loop > 0 && r.loop != m_loop) || r.layer < 0 || r.layer >= m_layers) continue;
            for (int h = 0; h < m_heads; ++h) {
                Stats& s = m_stats[size_t(r.layer) * size_t(m_heads) + size_t(h)];
                const size_t k = size_t(h);
                const bool hasGate = k < r.gate.size() && std::isfinite(r.gate[k]);
                const bool hasDiv = k < r.divergence.size() && std::isfinite(r.divergence[k]);
                if (!hasGate && !hasDiv) continue;
                ++s.samples;
                if (hasGate) {
                    s.gate += r.gate[k];
                    ++s.gateCount;
                }
                if (hasDiv) {
                    s.divergence += r.divergence[k];
                    ++s.divergenceCount;
                }
                if (hasGate && hasDiv) {
                    const double g = r.gate[k];
                    s.score += double(r.divergence[k]) * std::min(g, 1.0 - g);
                    ++s.scoreCount;
                }
                if (k < r.normLocal.size() && k < r.normGlobal.size() && std::isfinite(r.normLocal[k]) &&
                    std::isfinite(r.normGlobal[k])) {
                    s.normLocal += r.normLocal[k];
                    s.normGlobal += r.normGlobal[k];
                }
            }
        }
    }
    emit dataChanged(index(0, DivergenceColumn), index(rowCount() - 1, ColumnCount - 1));
}

const HeadRankingModel::Stats* HeadRankingModel::stats(int layer, int head) const
{
    if (layer < 0 || layer >= m_layers || head < 0 || head >= m_heads) return nullptr;
    return &m_stats[size_t(layer) * size_t(m_heads) + size_t(head)];
}

double HeadRankingModel::meanDivergence(int layer, int head) const
{
    const Stats* s = stats(layer, head);
    return s && s->divergenceCount ? s->divergence / double(s->divergenceCount) : kNaN;
}

double HeadRankingModel::meanGate(int layer, int head) const
{
    const Stats* s = stats(layer, head);
    return s && s->gateCount ? s->gate / double(s->gateCount) : kNaN;
}

double HeadRankingModel::normRatio(int layer, int head) const
{
    const Stats* s = stats(layer, head);
    return s && s->normGlobal > 0 ? s->normLocal / s->normGlobal : kNaN;
}

double HeadRankingModel::score(int layer, int head) const
{
    const Stats* s = stats(layer, head);
    return s && s->scoreCount ? s->score / double(s->scoreCount) : kNaN;
}

double HeadRankingModel::cell(int row, int column) const
{
    const int layer = row / std::max(m_heads, 1), head = row % std::max(m_heads, 1);
    switch (column) {
    case LayerColumn: return layer;
    case HeadColumn: return head;
    case DivergenceColumn: return meanDivergence(layer, head);
    case GateColumn: return meanGate(layer, head);
    case NormRatioColumn: return normRatio(layer, head);
    case ScoreColumn: return score(layer, head);
    default: return kNaN;
    }
}

int HeadRankingModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_stats.size());
}

int HeadRankingModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant HeadRankingModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const int layer = index.row() / m_heads, head = index.row() % m_heads;
    const bool designated = isDesignated(layer, head);
    const double v = cell(index.row(), index.column());
    switch (role) {
    case Qt::DisplayRole:
        if (index.column() == LayerColumn) return layer;
        if (index.column() == HeadColumn) return designated ? QStringLiteral("★ %1").arg(head) : QString::number(head);
        return std::isfinite(v) ? QString::number(v, 'f', 4) : QStringLiteral("–");
    case SortRole: return std::isfinite(v) ? v : -std::numeric_limits<double>::infinity();
    case DesignatedRole: return designated;
    case SamplesRole: return m_stats[size_t(index.row())].samples;
    case Qt::FontRole:
        if (designated) {
            QFont f;
            f.setBold(true);
            return f;
        }
        return {};
    case Qt::TextAlignmentRole: return int(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ToolTipRole:
        return designated ? tr("layer %1, head %2: a designated multi-context head (mch_heads)").arg(layer).arg(head)
                          : tr("layer %1, head %2").arg(layer).arg(head);
    default: return {};
    }
}

QVariant HeadRankingModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount) return {};
    if (role == Qt::DisplayRole) {
        switch (section) {
        case LayerColumn: return tr("Layer");
        case HeadColumn: return tr("Head");
        case DivergenceColumn: return tr("Divergence");
        case GateColumn: return tr("Gate g");
        case NormRatioColumn: return tr("Local/global");
        case ScoreColumn: return tr("Score");
        }
    }
    if (role == Qt::ToolTipRole) {
        switch (section) {
        case DivergenceColumn: return tr("Mean 1 - cos(global stream, local stream)");
        case GateColumn: return tr("Mean loop gate g (share of the global stream)");
        case NormRatioColumn: return tr("Sum of local-stream norms / sum of global-stream norms after o_proj");
        case ScoreColumn: return tr("Mean divergence x min(g, 1 - g): high when both streams differ and both count");
        }
    }
    return {};
}

} // namespace sage
