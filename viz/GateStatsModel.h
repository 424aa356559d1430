#pragma once

#include <QAbstractTableModel>
#include <QPointer>

#include <vector>

namespace sage {

class RunDocument;

// Loop gate statistics of a run: one row per (loop >= 2, layer), one column per head; a cell holds the mean,
// minimum and maximum of the gate g over the captured positions (g -> 1: the head reads the global stream,
// g -> 0: the local window). Sums are kept per cell, so a batch of appended positions costs O(batch).
class GateStatsModel : public QAbstractTableModel
{
    Q_OBJECT

public:
    enum Role { MeanRole = Qt::UserRole + 1, MinRole, MaxRole, CountRole, LoopRole, LayerRole };

    explicit GateStatsModel(QObject* parent = nullptr);

    void setDocument(RunDocument* document);
    // Row of (loop, layer), or -1.
    int rowOf(int loop, int layer) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    struct Cell {
        double sum = 0;
        float min = 0, max = 0;
        qint64 count = 0;
    };
    void reset();
    void append(qint64 first, qint64 last);

    QPointer<RunDocument> m_doc;
    int m_layers = 0, m_heads = 0, m_loops = 0;
    qint64 m_seen = 0;         // trace steps folded in
    std::vector<Cell> m_cells; // [rows, heads]
};

} // namespace sage
