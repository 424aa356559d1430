#pragma once

#include "engine/capture/Trace.h"

#include <QAbstractTableModel>
#include <QPointer>

#include <functional>
#include <vector>

namespace sage {

class RunDocument;

// The loop lens of a run as a table: one row per trace position, the logit lens' top-1 prediction after every
// loop (the last loop's lens is the model's output), the token that actually followed, and whether the
// prediction flipped between loop 1 and the last loop. Rows arrive with the trace (RunDocument::traceAppended).
//
// Columns: Position, Token, After loop 1 .. After loop N, Next token, KL(final || loop 1).
class LoopLensModel : public QAbstractTableModel
{
    Q_OBJECT

public:
    enum Role {
        TokenIdRole = Qt::UserRole + 1, // the column's token id (prediction, or the row's/next token)
        ProbabilityRole,                // the prediction's probability (loop columns)
        FlipRole,                       // bool: the row's top-1 after loop 1 differs from the last loop's
        DiffersRole,                    // bool: this cell's token differs from the last loop's top-1
        PositionRole,                   // the row's sequence position
    };
    using TokenText = std::function<QString(int32_t token)>;

    explicit LoopLensModel(QObject* parent = nullptr);

    void setDocument(RunDocument* document);
    // How token ids are shown (default: the document's texts for positions, "#id" for other ids).
    void setTokenText(TokenText text);

    int loops() const { return m_loops; }
    int positionColumn() const { return 0; }
    int tokenColumn() const { return 1; }
    int loopColumn(int loop) const { return 1 + loop; } // loop 1-based
    int nextColumn() const { return 2 + m_loops; }
    int klColumn() const { return 3 + m_loops; }
    // Rows whose prediction flipped.
    int flipCount() const { return m_flips; }

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    void reset();
    void append(qint64 first, qint64 last);
    const LensRecord* lens(int row, int loop) const;
    int32_t top1(int row, int loop) const;
    int32_t nextToken(int row) const;
    bool flipped(int row) const;
    QString text(int32_t token) const;

    QPointer<RunDocument> m_doc;
    TokenText m_text;
    std::vector<Trace::StepPtr> m_steps; // [rows]
    int m_loops = 0;
    int m_flips = 0;
};

} // namespace sage
