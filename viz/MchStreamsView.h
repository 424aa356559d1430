#pragma once

#include <QList>
#include <QPair>
#include <QPointer>
#include <QWidget>

class QChartView;
class QComboBox;
class QLabel;
class QLineSeries;
class QSortFilterProxyModel;
class QTableView;
class QVXYModelMapper;
class QValueAxis;

namespace sage {

class HeadRankingModel;
class MchSeriesModel;
class StepSelection;
class TraceFeed;

// The multi-context-head streams of loops >= 2 (MODEL.md, "MCH context streams"): for the chosen loop and
// layer, each head's gate g over tokens and its streams' divergence over tokens (line charts, one series per
// head through a QVXYModelMapper over MchSeriesModel), and a sortable ranking of all heads (HeadRankingModel).
// The config's designated heads (mch_heads) are drawn with a thick line and point markers, and are bold with a
// ★ in the table. Clicking a chart point selects that position; the selected position is a vertical line.
// Clicking a ranking row shows that row's layer.
class MchStreamsView : public QWidget
{
    Q_OBJECT

public:
    explicit MchStreamsView(QWidget* parent = nullptr);
    ~MchStreamsView() override;

    void setFeed(TraceFeed* feed);
    void setSelection(StepSelection* selection);
    void setDesignatedHeads(const QList<QPair<int, int>>& heads);
    bool isDesignated(int layer, int head) const;

    void setLoopLayer(int loop, int layer);
    int loop() const;
    int layer() const;

    QComboBox* loopCombo() const { return m_loopCombo; }
    QComboBox* layerCombo() const { return m_layerCombo; }
    MchSeriesModel* gateModel() const { return m_gate; }
    MchSeriesModel* divergenceModel() const { return m_divergence; }
    HeadRankingModel* rankingModel() const { return m_ranking; }
    QSortFilterProxyModel* rankingProxy() const { return m_proxy; }
    QTableView* rankingTable() const { return m_table; }
    QChartView* gateChart() const { return m_gateView; }
    QChartView* divergenceChart() const { return m_divergenceView; }
    // Whether the run's capture policy kept the streams of (loop, layer) (true while no step has arrived). A
    // narrowed policy (docs/capture.md, "Policies") may leave layers out: the view then says so instead of
    // drawing empty charts, and starts on a captured layer.
    bool isCaptured(int loop, int layer) const;
    QLabel* notCapturedLabel() const { return m_notCaptured; }
    // Head h's series in the gate / divergence chart (nullptr when out of range).
    QLineSeries* gateSeries(int head) const;
    QLineSeries* divergenceSeries(int head) const;

private:
    struct Chart {
        QChartView* view = nullptr;
        QValueAxis* x = nullptr;
        QValueAxis* y = nullptr;
        QList<QLineSeries*> series;      // [heads]
        QList<QVXYModelMapper*> mappers; // [heads]
        QLineSeries* marker = nullptr;   // the selected position
    };
    Chart makeChart(const QString& title, const QString& yTitle);
    void rebuildSeries(Chart& chart, MchSeriesModel* model);
    void styleSeries(Chart& chart);
    void onTraceReset();
    void onStepsAppended();
    void updateMarkers();
    void updateRanges();

    QPointer<TraceFeed> m_feed;
    QPointer<StepSelection> m_selection;
    QList<QPair<int, int>> m_designated;

    MchSeriesModel* m_gate;
    MchSeriesModel* m_divergence;
    HeadRankingModel* m_ranking;
    QSortFilterProxyModel* m_proxy;

    QComboBox* m_loopCombo;
    QComboBox* m_layerCombo;
    QLabel* m_summary;
    QLabel* m_placeholder;
    QLabel* m_notCaptured = nullptr;
    bool m_layersChecked = false; // the layer list was marked with what the first step holds
    void checkCapturedLayers();
    void updateCapturedState();
    QWidget* m_content;
    Chart m_gateChart;
    Chart m_divergenceChart;
    QChartView* m_gateView = nullptr;
    QChartView* m_divergenceView = nullptr;
    QTableView* m_table;
    int m_divergenceRows = 0;     // divergence rows already folded into m_divergenceTop
    double m_divergenceTop = 0.1; // largest divergence seen at the shown (loop, layer)
};

} // namespace sage
