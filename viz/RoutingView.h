#pragma once

#include <QPointer>
#include <QWidget>

class QBarCategoryAxis;
class QBarSeries;
class QChartView;
class QComboBox;
class QLabel;
class QLineSeries;
class QTabWidget;
class QVBarModelMapper;
class QVXYModelMapper;
class QValueAxis;

namespace sage {

class ExpertLegend;
class ExpertLoadModel;
class RouterProbsModel;
class RoutingChangeModel;
class RoutingGridView;
class RoutingTableModel;
class StepSelection;
class TraceFeed;

// The expert-routing timeline of a trace: the tokens x layers grid coloured by top-1 expert (with a legend and,
// for looped models, a loop selector) above three charts, each a view of a Qt model through a model mapper:
//   Router:  the router probabilities of the clicked cell (QVBarModelMapper over RouterProbsModel; chosen
//            experts drawn in the highlight colour);
//   Load:    each expert's share of the routing slots per loop (QVBarModelMapper over ExpertLoadModel);
//   Changes: loop 1 -> 2 expert-set changes per layer (QVBarModelMapper) and per token (QVXYModelMapper over
//            RoutingChangeModel).
// Clicking a cell selects its position (StepSelection) so that the other views follow; a selection made
// elsewhere shows that position's router distribution at the last clicked layer.
class RoutingView : public QWidget
{
    Q_OBJECT

public:
    enum class Tab { Router, Load, Changes };

    explicit RoutingView(QWidget* parent = nullptr);
    ~RoutingView() override;

    void setFeed(TraceFeed* feed);
    void setSelection(StepSelection* selection);
    void showTab(Tab tab);

    // The loop shown in the grid and the router chart (1-based).
    void setLoop(int loop);
    int loop() const;

    RoutingGridView* grid() const { return m_grid; }
    ExpertLegend* legend() const { return m_legend; }
    QComboBox* loopCombo() const { return m_loopCombo; }
    QLabel* cellLabel() const { return m_cellLabel; }
    RoutingTableModel* routingModel() const { return m_routing; }
    ExpertLoadModel* loadModel() const { return m_load; }
    RoutingChangeModel* changeByLayerModel() const { return m_changeByLayer; }
    RoutingChangeModel* changeByTokenModel() const { return m_changeByToken; }
    RouterProbsModel* routerProbsModel() const { return m_probs; }
    QChartView* routerChart() const { return m_probsView; }
    QChartView* loadChart() const { return m_loadView; }
    QChartView* changeByLayerChart() const { return m_changeLayerView; }
    QChartView* changeByTokenChart() const { return m_changeTokenView; }
    QBarSeries* routerSeries() const { return m_probsSeries; }
    QBarSeries* loadSeries() const { return m_loadSeries; }
    QBarSeries* changeByLayerSeries() const { return m_changeLayerSeries; }
    QLineSeries* changeByTokenSeries() const { return m_changeTokenSeries; }

private:
    void onTraceReset();
    void onStepsAppended();
    void onCellClicked(int row, int layer);
    void onSelectionChanged(int position);
    void updateRouterChart();
    void updateAxes();

    QPointer<TraceFeed> m_feed;
    QPointer<StepSelection> m_selection;
    int m_layer = 0;            // layer of the router chart (last clicked)
    bool m_followLatest = true; // the router chart shows the newest token until a cell or step is chosen

    RoutingTableModel* m_routing;
    ExpertLoadModel* m_load;
    RoutingChangeModel* m_changeByLayer;
    RoutingChangeModel* m_changeByToken;
    RouterProbsModel* m_probs;

    QComboBox* m_loopCombo;
    QLabel* m_summary;
    ExpertLegend* m_legend;
    RoutingGridView* m_grid;
    QTabWidget* m_tabs;
    QLabel* m_cellLabel;

    QChartView* m_probsView;
    QBarSeries* m_probsSeries;
    QVBarModelMapper* m_probsMapper;
    QBarCategoryAxis* m_probsCategories;
    QValueAxis* m_probsAxis;

    QChartView* m_loadView;
    QBarSeries* m_loadSeries;
    QVBarModelMapper* m_loadMapper;
    QBarCategoryAxis* m_loadCategories;
    QValueAxis* m_loadAxis;

    QChartView* m_changeLayerView;
    QBarSeries* m_changeLayerSeries;
    QVBarModelMapper* m_changeLayerMapper;
    QBarCategoryAxis* m_changeLayerCategories;
    QValueAxis* m_changeLayerAxis;

    QChartView* m_changeTokenView;
    QLineSeries* m_changeTokenSeries;
    QVXYModelMapper* m_changeTokenMapper;
    QValueAxis* m_changeTokenX;
    QValueAxis* m_changeTokenY;
};

} // namespace sage
