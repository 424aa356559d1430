#include "viz/RoutingView.h"

#include "engine/capture/Trace.h"
#include "viz/ChartAxes.h"
#include "viz/ChartStyle.h"
#include "viz/ExpertLegend.h"
#include "viz/ExpertLoadModel.h"
#include "viz/RouterProbsModel.h"
#include "viz/RoutingChangeModel.h"
#include "viz/RoutingGridView.h"
#include "viz/RoutingTableModel.h"
#include "viz/StepSelection.h"
#include "viz/TraceFeed.h"

#include <QBarCategoryAxis>
#include <QBarSeries>
#include <QBarSet>
#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineSeries>
#include <QSplitter>
#include <QTabWidget>
#include <QVBarModelMapper>
#include <QVBoxLayout>
#include <QVXYModelMapper>
#include <QValueAxis>

#include <algorithm>

namespace sage {

namespace {

QChartView* chartView(QChart* chart, QWidget* parent)
{
    chart->legend()->setAlignment(Qt::AlignBottom);
    return ChartStyle::makeView(chart, parent);
}

QStringList labels(const QString& prefix, int n)
{
    QStringList out;
    for (int i = 0; i < n; ++i) out << prefix + QString::number(i);
    return out;
}

// A bar chart whose sets are columns [0, sets) of `model`, read through a QVBarModelMapper.
void mapBars(QVBarModelMapper* mapper, QBarSeries* series, QAbstractItemModel* model, int sets)
{
    mapper->setFirstBarSetColumn(0);
    mapper->setLastBarSetColumn(std::max(sets - 1, 0));
    mapper->setFirstRow(0);
    mapper->setRowCount(-1);
    mapper->setSeries(series);
    mapper->setModel(model);
}

} // namespace

RoutingView::RoutingView(QWidget* parent)
    : QWidget(parent), m_routing(new RoutingTableModel(this)), m_load(new ExpertLoadModel(this)),
      m_changeByLayer(new RoutingChangeModel(RoutingChangeModel::Axis::ByLayer, this)),
      m_changeByToken(new RoutingChangeModel(RoutingChangeModel::Axis::ByToken, this)),
      m_probs(new RouterProbsModel(this))
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);

    auto* header = new QHBoxLayout;
    header->addWidget(new QLabel(tr("Loop"), this));
    m_loopCombo = new QComboBox(this);
    m_loopCombo->setObjectName("routingLoopCombo");
    m_loopCombo->setToolTip(tr("The loop whose routing the grid and the router chart show"));
    connect(m_loopCombo, &QComboBox::activated, this, [this](int i) { setLoop(i + 1); });
    header->addWidget(m_loopCombo);
    m_summary = new QLabel(this);
    m_summary->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    header->addWidget(m_summary, 1);
    layout->addLayout(header);

    m_legend = new ExpertLegend(this);
    layout->addWidget(m_legend);

    auto* splitter = new QSplitter(Qt::Vertical, this);
    m_grid = new RoutingGridView(splitter);
    m_grid->setModel(m_routing);
    connect(m_grid, &RoutingGridView::cellClicked, this, &RoutingView::onCellClicked);
    splitter->addWidget(m_grid);

    m_tabs = new QTabWidget(splitter);

    // Router probabilities of the clicked cell.
    auto* routerPage = new QWidget(m_tabs);
    auto* routerLayout = new QVBoxLayout(routerPage);
    routerLayout->setContentsMargins(0, 0, 0, 0);
    m_cellLabel = new QLabel(tr("Click a cell of the grid to see its router probabilities."), routerPage);
    m_cellLabel->setWordWrap(true);
    routerLayout->addWidget(m_cellLabel);
    auto* probsChart = new QChart;
    m_probsSeries = new QBarSeries;
    probsChart->addSeries(m_probsSeries);
    m_probsCategories = new QBarCategoryAxis;
    m_probsAxis = new QValueAxis;
    m_probsAxis->setRange(0, 1);
    m_probsAxis->setLabelFormat("%.2f");
    probsChart->addAxis(m_probsCategories, Qt::AlignBottom);
    probsChart->addAxis(m_probsAxis, Qt::AlignLeft);
    m_probsSeries->attachAxis(m_probsCategories);
    m_probsSeries->attachAxis(m_probsAxis);
    probsChart->legend()->hide();
    m_probsView = chartView(probsChart, routerPage);
    routerLayout->addWidget(m_probsView, 1);
    m_probsMapper = new QVBarModelMapper(this);
    mapBars(m_probsMapper, m_probsSeries, m_probs, 1);
    connect(m_probs, &RouterProbsModel::cellChanged, this, &RoutingView::updateRouterChart);
    m_tabs->addTab(routerPage, tr("Router"));

    // Expert load per loop.
    auto* loadChart = new QChart;
    loadChart->setTitle(tr("Share of routing slots per expert"));
    m_loadSeries = new QBarSeries;
    loadChart->addSeries(m_loadSeries);
    m_loadCategories = new QBarCategoryAxis;
    m_loadAxis = new QValueAxis;
    m_loadAxis->setLabelFormat("%.2f");
    loadChart->addAxis(m_loadCategories, Qt::AlignBottom);
    loadChart->addAxis(m_loadAxis, Qt::AlignLeft);
    m_loadSeries->attachAxis(m_loadCategories);
    m_loadSeries->attachAxis(m_loadAxis);
    m_loadView = chartView(loadChart, m_tabs);
    m_loadMapper = new QVBarModelMapper(this);
    mapBars(m_loadMapper, m_loadSeries, m_load, 1);
    m_tabs->addTab(m_loadView, tr("Load"));

    // Routing changes between loop 1 and loop 2.
    auto* changesPage = new QWidget(m_tabs);
    auto* changesLayout = new QHBoxLayout(changesPage);
    changesLayout->setContentsMargins(0, 0, 0, 0);
    auto* layerChart = new QChart;
    layerChart->setTitle(tr("Tokens whose experts changed, per layer"));
    m_changeLayerSeries = new QBarSeries;
    layerChart->addSeries(m_changeLayerSeries);
    m_changeLayerCategories = new QBarCategoryAxis;
    m_changeLayerAxis = new QValueAxis;
    m_changeLayerAxis->setRange(0, 1);
    m_changeLayerAxis->setLabelFormat("%.1f");
    layerChart->addAxis(m_changeLayerCategories, Qt::AlignBottom);
    layerChart->addAxis(m_changeLayerAxis, Qt::AlignLeft);
    m_changeLayerSeries->attachAxis(m_changeLayerCategories);
    m_changeLayerSeries->attachAxis(m_changeLayerAxis);
    layerChart->legend()->hide();
    m_changeLayerView = chartView(layerChart, changesPage);
    m_changeLayerMapper = new QVBarModelMapper(this);
    mapBars(m_changeLayerMapper, m_changeLayerSeries, m_changeByLayer, 1);
    changesLayout->addWidget(m_changeLayerView, 1);

    auto* tokenChart = new QChart;
    tokenChart->setTitle(tr("Layers whose experts changed, per token"));
    m_changeTokenSeries = new QLineSeries;
    m_changeTokenSeries->setName(tr("changed fraction"));
    tokenChart->addSeries(m_changeTokenSeries);
    m_changeTokenX = new QValueAxis;
    m_changeTokenX->setLabelFormat("%d");
    m_changeTokenX->setTitleText(tr("position"));
    m_changeTokenY = new QValueAxis;
    m_changeTokenY->setRange(0, 1);
    m_changeTokenY->setLabelFormat("%.1f");
    tokenChart->addAxis(m_changeTokenX, Qt::AlignBottom);
    tokenChart->addAxis(m_changeTokenY, Qt::AlignLeft);
    m_changeTokenSeries->attachAxis(m_changeTokenX);
    m_changeTokenSeries->attachAxis(m_changeTokenY);
    tokenChart->legend()->hide();
    m_changeTokenView = chartView(tokenChart, changesPage);
    m_changeTokenMapper = new QVXYModelMapper(this);
    m_changeTokenMapper->setXColumn(0);
    m_changeTokenMapper->setYColumn(1);
    m_changeTokenMapper->setSeries(m_changeTokenSeries);
    m_changeTokenMapper->setModel(m_changeByToken);
    changesLayout->addWidget(m_changeTokenView, 1);
    m_tabs->addTab(changesPage, tr("Loop changes"));

    splitter->addWidget(m_tabs);
    splitter->setStretchFactor(0, 2);
    splitter->setStretchFactor(1, 3);
    layout->addWidget(splitter, 1);

    onTraceReset();
}

RoutingView::~RoutingView() = default;

void RoutingView::setFeed(TraceFeed* feed)
{
    if (m_feed) disconnect(m_feed, nullptr, this, nullptr);
    m_feed = feed;
    // Models first: the view's handlers read the models' new shape.
    m_routing->setFeed(feed);
    m_load->setFeed(feed);
    m_changeByLayer->setFeed(feed);
    m_changeByToken->setFeed(feed);
    m_probs->setFeed(feed);
    if (m_feed) {
        connect(m_feed, &TraceFeed::traceReset, this, &RoutingView::onTraceReset);
        connect(m_feed, &TraceFeed::stepsAppended, this, &RoutingView::onStepsAppended);
    }
    onTraceReset();
    onStepsAppended();
}

void RoutingView::setSelection(StepSelection* selection)
{
    if (m_selection) disconnect(m_selection, nullptr, this, nullptr);
    m_selection = selection;
    m_grid->setSelection(selection);
    if (m_selection) connect(m_selection, &StepSelection::positionChanged, this, &RoutingView::onSelectionChanged);
}

void RoutingView::showTab(Tab tab)
{
    m_tabs->setCurrentIndex(int(tab));
}

int RoutingView::loop() const
{
    return m_routing->loop();
}

void RoutingView::setLoop(int loop)
{
    m_routing->setLoop(loop);
    m_loopCombo->setCurrentIndex(m_routing->loop() - 1);
    if (m_probs->position() >= 0) m_probs->setCell(m_probs->position(), m_routing->loop(), m_layer);
}

void RoutingView::onTraceReset()
{
    const bool has = m_feed && m_feed->hasTrace();
    const int experts = has ? int(m_feed->info().experts) : 0;
    const int loops = has ? int(std::max<int64_t>(1, m_feed->info().loops)) : 1;
    const int layers = has ? int(m_feed->info().layers) : 0;

    m_loopCombo->clear();
    for (int l = 1; l <= loops; ++l) m_loopCombo->addItem(tr("Loop %1").arg(l));
    m_loopCombo->setEnabled(loops > 1);
    m_loopCombo->setCurrentIndex(m_routing->loop() - 1);
    m_legend->setExpertCount(experts);

    m_probsCategories->setCategories(labels(QStringLiteral("E"), experts));
    m_loadCategories->setCategories(labels(QStringLiteral("E"), experts));
    m_changeLayerCategories->setCategories(labels(QStringLiteral("L"), layers));
    // The number of bar sets follows the loops; the mapper re-creates them, named from the model's headers.
    m_loadMapper->setLastBarSetColumn(std::max(m_load->columnCount() - 1, 0));

    m_layer = 0;
    m_followLatest = true;
    m_probs->setCell(-1, m_routing->loop(), 0);
    m_cellLabel->setText(has ? tr("Click a cell of the grid to see its router probabilities.")
                             : tr("No trace: generate with capture on to see the expert routing."));
    updateAxes();
}

void RoutingView::onStepsAppended()
{
    updateAxes();
    const bool has = m_feed && m_feed->hasTrace();
    if (!has) {
        m_summary->clear();
        return;
    }
    const TraceInfo& info = m_feed->info();
    // Until a cell or a step is chosen, the router chart follows the newest token (layer 0), so it is never
    // empty while a routed trace has steps.
    if (m_followLatest && info.experts > 0 && m_feed->stepCount() > 0)
        m_probs->setCell(m_feed->origin() + m_feed->stepCount() - 1, m_routing->loop(), m_layer);
    m_summary->setText(info.experts > 0 ? tr("%1 tokens · %2 experts, top-%3 · %4 layers")
                                              .arg(m_feed->stepCount())
                                              .arg(info.experts)
                                              .arg(info.expertsPerTok)
                                              .arg(info.layers)
                                        : tr("%1 tokens · dense model: no routing").arg(m_feed->stepCount()));
}

void RoutingView::updateAxes()
{
    m_loadAxis->setRange(0, std::max(0.05, std::min(1.0, m_load->maxShare() * 1.15)));
    const qint64 n = m_feed ? m_feed->stepCount() : 0;
    const qint64 origin = m_feed ? m_feed->origin() : 0;
    ChartAxes::setPositionRange(m_changeTokenX, origin, origin + n - 1);
}

void RoutingView::onCellClicked(int row, int layer)
{
    m_followLatest = false;
    m_layer = layer;
    m_probs->setCell(m_routing->positionOfRow(row), m_routing->loop(), layer);
    showTab(Tab::Router);
}

void RoutingView::onSelectionChanged(int position)
{
    if (position == m_probs->position()) return;
    m_followLatest = false;
    m_probs->setCell(position, m_routing->loop(), m_layer);
}

void RoutingView::updateRouterChart()
{
    // The chosen experts stand out: QBarSet selection colours individual bars.
    const QList<QBarSet*> sets = m_probsSeries->barSets();
    if (!sets.isEmpty()) {
        QBarSet* set = sets.front();
        set->setColor(palette().color(QPalette::Mid));
        set->setSelectedColor(palette().color(QPalette::Highlight));
        set->deselectAllBars();
        for (int e = 0; e < m_probs->rowCount(); ++e)
            if (m_probs->index(e, 0).data(RouterProbsModel::ChosenRole).toBool()) set->selectBar(e);
    }
    double top = 0;
    for (int e = 0; e < m_probs->rowCount(); ++e) top = std::max(top, m_probs->probability(e));
    m_probsAxis->setRange(0, std::max(0.05, std::min(1.0, top * 1.15)));

    if (m_probs->position() < 0) return;
    const StepRecord* s = m_feed ? m_feed->stepAtPosition(m_probs->position()) : nullptr;
    QString text = tr("Position %1").arg(m_probs->position());
    if (s) text += tr(" (token %1)").arg(s->token);
    text += tr(", layer %1, loop %2: ").arg(m_probs->layer()).arg(m_probs->loop());
    if (!m_probs->hasCell())
        text += tr("no routing captured here.");
    else if (m_probs->fullDistribution())
        text += tr("router softmax over all experts; chosen experts highlighted.");
    else
        text += tr("only the chosen experts' weights were captured (capture with the standard or full preset for "
                   "the whole softmax).");
    m_cellLabel->setText(text);
}

} // namespace sage
