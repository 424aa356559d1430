#include "viz/LoopLensModel.h"

#include "viz/HeatmapColors.h"
#include "viz/RunDocument.h"

#include <QColor>
#include <QFont>

namespace sage {

LoopLensModel::LoopLensModel(QObject* parent) : QAbstractTableModel(parent) {}

void LoopLensModel::setDocument(RunDocument* document)
{
    if (m_doc) disconnect(m_doc, nullptr, this, nullptr);
    m_doc = document;
    if (m_doc) {
        connect(m_doc, &RunDocument::traceChanged, this, &LoopLensModel::reset);
        connect(m_doc, &RunDocument::cleared, this, &LoopLensModel::reset);
        connect(m_doc, &RunDocument::traceAppended, this, &LoopLensModel::append);
    }
    reset();
}

void LoopLensModel::setTokenText(TokenText text)
{
    m_text = std::move(text);
    if (!m_steps.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, columnCount() - 1));
}

void LoopLensModel::reset()
{
    beginResetModel();
    m_steps.clear();
    m_flips = 0;
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    m_loops = trace ? int(std::max<int64_t>(trace->info().loops, 1)) : 0;
    endResetModel();
    if (trace && m_doc->traceStepCount() > 0) append(0, m_doc->traceStepCount());
}

void LoopLensModel::append(qint64, qint64 last)
{
    // Rows continue from what the model holds, whatever range was announced.
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    const qint64 first = qint64(m_steps.size());
    if (!trace || last <= first) return;
    std::vector<Trace::StepPtr> added;
    for (qint64 i = first; i < last; ++i) {
        Trace::StepPtr s = trace->step(i);
        if (!s) break;
        added.push_back(std::move(s));
    }
    if (added.empty()) return;
    // The previous last row gains its next token now.
    const int oldRows = int(m_steps.size());
    beginInsertRows({}, oldRows, oldRows + int(added.size()) - 1);
    m_steps.insert(m_steps.end(), added.begin(), added.end());
    endInsertRows();
    for (int r = oldRows; r < int(m_steps.size()); ++r)
        if (flipped(r)) ++m_flips;
    if (oldRows > 0) emit dataChanged(index(oldRows - 1, nextColumn()), index(oldRows - 1, nextColumn()));
}

int LoopLensModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : int(m_steps.size());
}

int LoopLensModel::columnCount(const QModelIndex& parent) const
{
    return parent.isValid() || m_loops == 0 ? 0 : m_loops + 4;
}

const LensRecord* LoopLensModel::lens(int row, int loop) const
{
    for (const LensRecord& l : m_steps[size_t(row)]->lens)
        if (l.loop == loop && l.layer == -1) return &l;
    return nullptr;
}

int32_t LoopLensModel::top1(int row, int loop) const
{
    const LensRecord* l = lens(row, loop);
    return l && !l->tokens.empty() ? l->tokens[0] : -1;
}

int32_t LoopLensModel::nextToken(int row) const
{
    return row + 1 < int(m_steps.size()) ? m_steps[size_t(row + 1)]->token : -1;
}

bool LoopLensModel::flipped(int row) const
{
    if (m_loops < 2) return false;
    const int32_t a = top1(row, 1), b = top1(row, m_loops);
    return a >= 0 && b >= 0 && a != b;
}

QString LoopLensModel::text(int32_t token) const
{
    if (token < 0) return {};
    if (m_text) return m_text(token);
    return QStringLiteral("#%1").arg(token);
}

QVariant LoopLensModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) return {};
    const int row = index.row(), col = index.column();
    const StepRecord& step = *m_steps[size_t(row)];
    const bool isLoop = col >= loopColumn(1) && col <= loopColumn(m_loops);
    const int loop = col - 1;
    const int32_t last = top1(row, m_loops);

    if (role == PositionRole) return qint64(step.position);
    if (role == FlipRole) return flipped(row);
    if (col == positionColumn()) {
        if (role == Qt::DisplayRole) return qint64(step.position);
        if (role == Qt::TextAlignmentRole) return int(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    }
    if (col == tokenColumn()) {
        if (role == Qt::DisplayRole) return text(step.token);
        if (role == TokenIdRole) return step.token;
        if (role == Qt::ToolTipRole)
            return tr("%1 token %2").arg(step.generated ? tr("generated") : tr("prompt")).arg(step.token);
        return {};
    }
    if (isLoop) {
        const LensRecord* l = lens(row, loop);
        const bool has = l && !l->tokens.empty();
        const bool differs = has && last >= 0 && l->tokens[0] != last;
        switch (role) {
        case Qt::DisplayRole:
            return has ? QStringLiteral("%1  %2").arg(text(l->tokens[0])).arg(double(l->probs[0]), 0, 'f', 3)
                       : QVariant();
        case TokenIdRole: return has ? QVariant(l->tokens[0]) : QVariant();
        case ProbabilityRole: return has ? QVariant(double(l->probs[0])) : QVariant();
        case DiffersRole: return differs;
        case Qt::BackgroundRole:
            return differs ? QVariant(QColor(QColor::fromRgb(HeatmapColors::divergingColor(0.6)))) : QVariant();
        case Qt::ForegroundRole: return differs ? QVariant(QColor(Qt::black)) : QVariant();
        case Qt::FontRole:
            if (differs) {
                QFont f;
                f.setBold(true);
                return f;
            }
            return {};
        case Qt::ToolTipRole: {
            if (!l) return tr("No lens captured after loop %1").arg(loop);
            QStringList lines;
            lines << tr("After loop %1 (KL to the output %2 nats):").arg(loop).arg(double(l->kl), 0, 'f', 4);
            for (size_t k = 0; k < l->tokens.size(); ++k)
                lines << QStringLiteral("%1  %2")
                             .arg(text(l->tokens[k]).toHtmlEscaped())
                             .arg(double(l->probs[k]), 0, 'f', 4);
            return lines.join(QStringLiteral("<br/>"));
        }
        default: return {};
        }
    }
    if (col == nextColumn()) {
        const int32_t next = nextToken(row);
        const bool differs = next >= 0 && last >= 0 && next != last;
        switch (role) {
        case Qt::DisplayRole: return text(next);
        case TokenIdRole: return next >= 0 ? QVariant(next) : QVariant();
        case DiffersRole: return differs;
        case Qt::ToolTipRole:
            return next < 0 ? QVariant()
                            : QVariant(differs ? tr("The next token is not the output's top-1 (sampled or prompt)")
                                               : tr("The next token is the output's top-1"));
        default: return {};
        }
    }
    if (col == klColumn()) {
        const LensRecord* l = lens(row, 1);
        if (role == Qt::DisplayRole) return l ? QVariant(QString::number(double(l->kl), 'f', 3)) : QVariant();
        if (role == Qt::TextAlignmentRole) return int(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    }
    return {};
}

QVariant LoopLensModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole)
        return QAbstractTableModel::headerData(section, orientation, role);
    if (section == positionColumn()) return tr("Pos");
    if (section == tokenColumn()) return tr("Token");
    if (section >= loopColumn(1) && section <= loopColumn(m_loops))
        return section == loopColumn(m_loops) && m_loops > 1 ? tr("After loop %1 (final)").arg(section - 1)
                                                             : tr("After loop %1").arg(section - 1);
    if (section == nextColumn()) return tr("Next token");
    if (section == klColumn()) return tr("KL loop 1");
    return {};
}

} // namespace sage
