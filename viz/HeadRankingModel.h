#pragma once

#include "viz/TraceTableModel.h"

#include <QList>
#include <QPair>
#include <QSet>

#include <vector>

namespace sage {

// A ranking of attention heads by their MCH stream statistics over loops >= 2: one row per (layer, head),
// row = layer * heads + head. Columns: layer, head, mean divergence (1 - cos of the two streams), mean gate g,
// local/global norm ratio (sum ||o_proj_h((1-g) B)|| / sum ||o_proj_h(g A)||) and the score mean(divergence x
// min(g, 1 - g)) that MODEL.md ranks heads by when the config names no mch_heads. Statistics accumulate as
// steps arrive (dataChanged, no reset). Sort through a QSortFilterProxyModel with sortRole() = SortRole.
// The config's designated heads (mch_heads) are bold with a ★ before the head number.
class HeadRankingModel : public TraceTableModel
{
    Q_OBJECT

public:
    enum Column { LayerColumn, HeadColumn, DivergenceColumn, GateColumn, NormRatioColumn, ScoreColumn, ColumnCount };
    enum Role {
        SortRole = Qt::UserRole + 1, // double (NaN sorts as -inf): the numeric value of the cell
        DesignatedRole,              // bool
        SamplesRole,                 // qint64: (token, loop) samples in the row's statistics
    };
    Q_ENUM(Role)

    explicit HeadRankingModel(QObject* parent = nullptr);

    // (layer, head) pairs from the config's mch_heads.
    void setDesignatedHeads(const QList<QPair<int, int>>& heads);
    bool isDesignated(int layer, int head) const { return m_designated.contains({layer, head}); }
    // 0 = every loop >= 2 (default), else that loop only.
    void setLoop(int loop);
    int loop() const { return m_loop; }

    int heads() const { return m_heads; }
    double meanDivergence(int layer, int head) const;
    double meanGate(int layer, int head) const;
    double normRatio(int layer, int head) const;
    double score(int layer, int head) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

protected:
    void resetState() override;
    void appendSteps(qint64 first, qint64 last) override;

private:
    struct Stats {
        qint64 samples = 0;
        qint64 divergenceCount = 0, gateCount = 0, scoreCount = 0;
        double divergence = 0, gate = 0, normLocal = 0, normGlobal = 0, score = 0;
    };
    const Stats* stats(int layer, int head) const;
    double cell(int row, int column) const;

    QSet<QPair<int, int>> m_designated;
    int m_loop = 0;
    int m_layers = 0;
    int m_heads = 0;
    std::vector<Stats> m_stats; // [layers * heads]
};

} // namespace sage
