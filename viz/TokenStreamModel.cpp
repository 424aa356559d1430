#include "viz/TokenStreamModel.h"

#include "viz/RunDocument.h"

#include <QVariantMap>

#include <cmath>
#include <limits>

namespace sage {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

TokenStreamModel::TokenStreamModel(QObject* parent) : QAbstractListModel(parent) {}

void TokenStreamModel::setDocument(RunDocument* document)
{
    if (m_document) disconnect(m_document, nullptr, this, nullptr);
    m_document = document;
    if (m_document) {
        connect(m_document, &RunDocument::runStarted, this, &TokenStreamModel::resetFromDocument);
        connect(m_document, &RunDocument::cleared, this, &TokenStreamModel::resetFromDocument);
        connect(m_document, &RunDocument::stepsAppended, this, &TokenStreamModel::onStepsAppended);
        connect(m_document, &QObject::destroyed, this, [this] {
            beginResetModel();
            m_rows = 0;
            endResetModel();
        });
    }
    resetFromDocument();
}

void TokenStreamModel::setColorMode(TokenColors::Mode mode)
{
    if (mode == m_colorMode) return;
    m_colorMode = mode;
    if (m_rows > 0) emit dataChanged(index(0), index(m_rows - 1), {ScoreRole, Qt::BackgroundRole});
    emit colorModeChanged(mode);
}

void TokenStreamModel::resetFromDocument()
{
    beginResetModel();
    m_rows = m_document ? m_document->positionCount() : 0;
    endResetModel();
}

void TokenStreamModel::onStepsAppended(int, int)
{
    // Insert everything the document has beyond what the views know, so that rows always mirror it.
    const int total = m_document ? m_document->positionCount() : 0;
    if (total <= m_rows) return;
    beginInsertRows({}, m_rows, total - 1);
    m_rows = total;
    endInsertRows();
}

void TokenStreamModel::setDecisionPositions(const QSet<int>& positions)
{
    if (positions == m_decisions) return;
    m_decisions = positions;
    if (m_rows > 0) emit dataChanged(index(0, 0), index(m_rows - 1, 0), {DecisionPointRole, Qt::ToolTipRole});
}

int TokenStreamModel::rowCount(const QModelIndex& parent) const
{
    return parent.isValid() ? 0 : m_rows;
}

Qt::ItemFlags TokenStreamModel::flags(const QModelIndex& index) const
{
    if (!index.isValid()) return Qt::NoItemFlags;
    return Qt::ItemIsEnabled | Qt::ItemIsSelectable | Qt::ItemNeverHasChildren;
}

QVariant TokenStreamModel::data(const QModelIndex& index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid) || !m_document)
        return {};
    const int row = index.row();
    const int promptLength = m_document->promptLength();
    const bool isPrompt = row < promptLength;
    const PromptToken* prompt = isPrompt ? &m_document->promptToken(row) : nullptr;
    const GeneratedStep* step = isPrompt ? nullptr : &m_document->step(row - promptLength);

    switch (role) {
    case Qt::DisplayRole: return isPrompt ? prompt->text : step->text;
    case Qt::ToolTipRole: return toolTip(row);
    case Qt::BackgroundRole: {
        const double s = data(index, ScoreRole).toDouble();
        return std::isnan(s) ? TokenColors::promptChipColor(false) : TokenColors::chipColor(s, false);
    }
    case TokenIdRole: return isPrompt ? prompt->token : step->token;
    case IsPromptRole: return isPrompt;
    case DecisionPointRole: return m_decisions.contains(row);
    case StepRole: return isPrompt ? -1 : row - promptLength;
    case ProbabilityRole: return isPrompt ? kNaN : double(step->probability);
    case EntropyRole: return isPrompt ? kNaN : double(step->entropy);
    case MarginRole: return isPrompt ? kNaN : double(step->margin);
    case ScoreRole:
        return isPrompt ? kNaN
                        : TokenColors::score(m_colorMode, step->probability, step->entropy, m_document->vocabSize());
    case AlternativesRole: {
        QVariantList list;
        if (step)
            for (const TokenAlternative& a : step->alternatives)
                list.append(QVariantMap{{"token", a.token}, {"text", a.text}, {"probability", double(a.probability)}});
        return list;
    }
    default: return {};
    }
}

QHash<int, QByteArray> TokenStreamModel::roleNames() const
{
    QHash<int, QByteArray> names = QAbstractListModel::roleNames();
    names[TokenIdRole] = "tokenId";
    names[IsPromptRole] = "isPrompt";
    names[StepRole] = "step";
    names[ProbabilityRole] = "probability";
    names[EntropyRole] = "entropy";
    names[MarginRole] = "margin";
    names[ScoreRole] = "score";
    names[AlternativesRole] = "alternatives";
    return names;
}

QString TokenStreamModel::toolTip(int row) const
{
    if (!m_document || row < 0 || row >= m_rows) return {};
    const int promptLength = m_document->promptLength();
    if (row < promptLength) {
        const PromptToken& t = m_document->promptToken(row);
        return QStringLiteral("<b>%1</b> &nbsp;<span>id %2</span><br/>prompt token, position %3")
            .arg(t.text.toHtmlEscaped())
            .arg(t.token)
            .arg(row);
    }
    const GeneratedStep& s = m_document->step(row - promptLength);
    QString html = QStringLiteral("<b>%1</b> &nbsp;id %2<br/>step %3 (position %4)<br/>p = %5 &nbsp; entropy = %6 nats "
                                  "&nbsp; margin = %7")
                       .arg(s.text.toHtmlEscaped())
                       .arg(s.token)
                       .arg(row - promptLength)
                       .arg(row)
                       .arg(double(s.probability), 0, 'f', 4)
                       .arg(double(s.entropy), 0, 'f', 3)
                       .arg(double(s.margin), 0, 'f', 4);
    if (!s.alternatives.isEmpty()) {
        html += QStringLiteral("<table cellspacing='0' cellpadding='1' style='margin-top:4px'>");
        for (const TokenAlternative& a : s.alternatives) {
            const bool chosen = a.token == s.token;
            html += QStringLiteral("<tr><td>%1%2%3</td><td align='right'>&nbsp;&nbsp;%4</td>"
                                   "<td align='right'>&nbsp;&nbsp;%5</td></tr>")
                        .arg(chosen ? "<b>" : "")
                        .arg(a.text.toHtmlEscaped())
                        .arg(chosen ? "</b>" : "")
                        .arg(a.token)
                        .arg(double(a.probability), 0, 'f', 4);
        }
        html += QStringLiteral("</table>");
    }
    return html;
}

} // namespace sage
