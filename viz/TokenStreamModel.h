#pragma once

#include "viz/RunDocument.h"
#include "viz/TokenColors.h"

#include <QAbstractListModel>
#include <QPointer>
#include <QSet>

namespace sage {

// One row per sequence position of a RunDocument: the prompt tokens, then the generated steps. Rows are
// appended (never moved) while a run streams in; a new run resets the model.
class TokenStreamModel : public QAbstractListModel
{
    Q_OBJECT

public:
    enum Role {
        TokenIdRole = Qt::UserRole + 1, // int
        IsPromptRole,                   // bool
        StepRole,                       // int: generated-step index, -1 for a prompt token
        ProbabilityRole,                // double (NaN for prompt tokens)
        EntropyRole,                    // double, nats (NaN for prompt tokens)
        MarginRole,                     // double (NaN for prompt tokens)
        ScoreRole,                      // double in [0, 1] per colorMode() (NaN for prompt tokens)
        AlternativesRole,               // QVariantList of QVariantMap {token: int, text: QString, probability: double}
        DecisionPointRole,              // bool: the position is a decision point of the run's IR report
    };
    Q_ENUM(Role)

    explicit TokenStreamModel(QObject* parent = nullptr);

    void setDocument(RunDocument* document);
    RunDocument* document() const { return m_document; }

    TokenColors::Mode colorMode() const { return m_colorMode; }
    void setColorMode(TokenColors::Mode mode);

    // Positions the views mark as decision points (from the IR report; empty clears the marks).
    void setDecisionPositions(const QSet<int>& positions);
    bool isDecisionPoint(int row) const { return m_decisions.contains(row); }

    int rowCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QHash<int, QByteArray> roleNames() const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;

    // The tooltip text of a row: token, probability, entropy and its top alternatives (rich text).
    QString toolTip(int row) const;

signals:
    void colorModeChanged(sage::TokenColors::Mode mode);

private:
    void onStepsAppended(int first, int last);
    void resetFromDocument();

    QPointer<RunDocument> m_document;
    TokenColors::Mode m_colorMode = TokenColors::Mode::Probability;
    int m_rows = 0; // rows the views know about (inserted so far)
    QSet<int> m_decisions;
};

} // namespace sage
