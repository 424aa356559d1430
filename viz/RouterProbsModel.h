#pragma once

#include "viz/TraceTableModel.h"

#include <vector>

namespace sage {

// The router distribution of one (position, loop, layer): one row per expert, column 0 = probability (a bar
// set for a QVBarModelMapper). With the full router softmax captured (standard/full capture) every expert has
// its probability; with only the chosen experts captured (summary) the chosen ones show their applied weight
// and the others 0, and fullDistribution() is false.
class RouterProbsModel : public TraceTableModel
{
    Q_OBJECT

public:
    enum Role {
        ChosenRole = Qt::UserRole + 1, // bool: the expert is among the chosen top-k
        RankRole,                      // int: 0 for the top-1 expert, ... ; -1 when not chosen
    };
    Q_ENUM(Role)

    explicit RouterProbsModel(QObject* parent = nullptr);

    // Shows (position, loop, layer); position -1 clears. Updated when that position arrives later.
    void setCell(qint64 position, int loop, int layer);
    qint64 position() const { return m_position; }
    int loop() const { return m_loop; }
    int layer() const { return m_layer; }
    // A record for the cell exists and has routing data.
    bool hasCell() const { return m_hasCell; }
    bool fullDistribution() const { return m_full; }
    double probability(int expert) const;

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

signals:
    void cellChanged();

protected:
    void resetState() override;
    void appendSteps(qint64 first, qint64 last) override;

private:
    void load();

    qint64 m_position = -1;
    int m_loop = 1;
    int m_layer = 0;
    int m_experts = 0;
    bool m_hasCell = false;
    bool m_full = false;
    std::vector<double> m_probs; // [experts]
    std::vector<int> m_rank;     // [experts]
};

} // namespace sage
