#include "viz/MchStreamsView.h"

#include "engine/capture/Trace.h"
#include "viz/ChartAxes.h"
#include "viz/ChartStyle.h"
#include "viz/HeadRankingModel.h"
#include "viz/MchSeriesModel.h"
#include "viz/StepSelection.h"
#include "viz/TraceFeed.h"

#include <QChart>
#include <QChartView>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLegendMarker>
#include <QLineSeries>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>
#include <QVXYModelMapper>
#include <QValueAxis>

#include <algorithm>
#include <cmath>

namespace sage {

MchStreamsView::MchStreamsView(QWidget* parent)
    : QWidget(parent), m_gate(new MchSeriesModel(MchSeriesModel::Quantity::Gate, this)),
      m_divergence(new MchSeriesModel(MchSeriesModel::Quantity::Divergence, this)),
      m_ranking(new HeadRankingModel(this)), m_proxy(new QSortFilterProxyModel(this))
{
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    auto* header = new QHBoxLayout;
    header->addWidget(new QLabel(tr("Loop"), this));
    m_loopCombo = new QComboBox(this);
    m_loopCombo->setObjectName("mchLoopCombo");
    m_loopCombo->setToolTip(tr("Loops >= 2 have two context streams per head"));
    header->addWidget(m_loopCombo);
    header->addWidget(new QLabel(tr("Layer"), this));
    m_layerCombo = new QComboBox(this);
    m_layerCombo->setObjectName("mchLayerCombo");
    header->addWidget(m_layerCombo);
    m_summary = new QLabel(this);
    m_summary->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    header->addWidget(m_summary, 1);
    layout->addLayout(header);
    auto changeLoopLayer = [this] {
        setLoopLayer(m_loopCombo->currentData().toInt(), std::max(m_layerCombo->currentIndex(), 0));
    };
    connect(m_loopCombo, &QComboBox::activated, this, changeLoopLayer);
    connect(m_layerCombo, &QComboBox::activated, this, changeLoopLayer);

    m_placeholder = new QLabel(this);
    m_placeholder->setAlignment(Qt::AlignCenter);
    m_placeholder->setWordWrap(true);
    layout->addWidget(m_placeholder, 1);

    m_notCaptured = new QLabel(this);
    m_notCaptured->setObjectName("mchNotCaptured");
    m_notCaptured->setWordWrap(true);
    m_notCaptured->hide();
    layout->addWidget(m_notCaptured);

    auto* splitter = new QSplitter(Qt::Vertical, this);
    m_content = splitter;
    m_gateChart = makeChart(tr("Gate g per head (1 = global stream, 0 = local stream)"), tr("g"));
    m_gateChart.y->setRange(0, 1);
    m_gateView = m_gateChart.view;
    splitter->addWidget(m_gateView);
    m_divergenceChart = makeChart(tr("Stream divergence per head (1 - cos of global and local)"), tr("1 - cos"));
    m_divergenceView = m_divergenceChart.view;
    splitter->addWidget(m_divergenceView);

    m_proxy->setSourceModel(m_ranking);
    m_proxy->setSortRole(HeadRankingModel::SortRole);
    m_table = new QTableView(splitter);
    m_table->setObjectName("mchRankingTable");
    m_table->setModel(m_proxy);
    m_table->setSortingEnabled(true);
    m_table->sortByColumn(HeadRankingModel::ScoreColumn, Qt::DescendingOrder);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->verticalHeader()->hide();
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    connect(m_table, &QTableView::clicked, this, [this](const QModelIndex& proxyIndex) {
        const QModelIndex source = m_proxy->mapToSource(proxyIndex);
        const int layer = m_ranking->index(source.row(), HeadRankingModel::LayerColumn).data().toInt();
        setLoopLayer(loop(), layer);
    });
    splitter->addWidget(m_table);
    layout->addWidget(splitter, 1);

    onTraceReset();
}

MchStreamsView::~MchStreamsView() = default;

MchStreamsView::Chart MchStreamsView::makeChart(const QString& title, const QString& yTitle)
{
    Chart c;
    auto* chart = new QChart;
    chart->setTitle(title);
    chart->legend()->setAlignment(Qt::AlignRight);
    c.x = new QValueAxis;
    c.x->setLabelFormat("%d");
    c.x->setTitleText(tr("position"));
    c.y = new QValueAxis;
    c.y->setTitleText(yTitle);
    c.y->setLabelFormat("%.2f");
    chart->addAxis(c.x, Qt::AlignBottom);
    chart->addAxis(c.y, Qt::AlignLeft);
    c.marker = new QLineSeries;
    c.marker->setName(tr("selected"));
    chart->addSeries(c.marker);
    c.marker->attachAxis(c.x);
    c.marker->attachAxis(c.y);
    for (QLegendMarker* m : chart->legend()->markers(c.marker)) m->setVisible(false);
    c.view = ChartStyle::makeView(chart, this);
    return c;
}

void MchStreamsView::setFeed(TraceFeed* feed)
{
    if (m_feed) disconnect(m_feed, nullptr, this, nullptr);
    m_feed = feed;
    m_gate->setFeed(feed);
    m_divergence->setFeed(feed);
    m_ranking->setFeed(feed);
    if (m_feed) {
        connect(m_feed, &TraceFeed::traceReset, this, &MchStreamsView::onTraceReset);
        connect(m_feed, &TraceFeed::stepsAppended, this, &MchStreamsView::onStepsAppended);
    }
    onTraceReset();
    onStepsAppended();
}

void MchStreamsView::setSelection(StepSelection* selection)
{
    if (m_selection) disconnect(m_selection, nullptr, this, nullptr);
    m_selection = selection;
    if (m_selection) connect(m_selection, &StepSelection::positionChanged, this, &MchStreamsView::updateMarkers);
    updateMarkers();
}

void MchStreamsView::setDesignatedHeads(const QList<QPair<int, int>>& heads)
{
    m_designated = heads;
    m_ranking->setDesignatedHeads(heads);
    styleSeries(m_gateChart);
    styleSeries(m_divergenceChart);
}

bool MchStreamsView::isDesignated(int layer, int head) const
{
    return m_designated.contains({layer, head});
}

int MchStreamsView::loop() const
{
    return m_gate->loop();
}

int MchStreamsView::layer() const
{
    return m_gate->layer();
}

void MchStreamsView::setLoopLayer(int loop, int layer)
{
    const bool has = m_feed && m_feed->hasTrace();
    const int loops = has ? int(m_feed->info().loops) : 2;
    const int layers = has ? int(m_feed->info().layers) : 1;
    loop = std::clamp(loop, 2, std::max(loops, 2));
    layer = std::clamp(layer, 0, std::max(layers - 1, 0));
    m_gate->setLoopLayer(loop, layer);
    m_divergence->setLoopLayer(loop, layer);
    m_loopCombo->setCurrentIndex(m_loopCombo->findData(loop));
    m_layerCombo->setCurrentIndex(layer);
    styleSeries(m_gateChart);
    styleSeries(m_divergenceChart);
    m_divergenceRows = 0; // other values: rescan
    m_divergenceTop = 0.1;
    updateRanges();
    updateCapturedState();
}

bool MchStreamsView::isCaptured(int loop, int layer) const
{
    if (!m_feed || m_feed->stepCount() == 0) return true;
    const LayerRecord* r = m_feed->step(0).layer(loop, layer);
    return r && (!r->gate.empty() || !r->divergence.empty()); // what the two charts show
}

void MchStreamsView::checkCapturedLayers()
{
    if (m_layersChecked || !m_feed || m_feed->stepCount() == 0 || m_layerCombo->count() == 0) return;
    m_layersChecked = true;
    const int lp = loop();
    int first = -1, firstDesignated = -1;
    for (int l = 0; l < m_layerCombo->count(); ++l) {
        const bool kept = isCaptured(lp, l);
        m_layerCombo->setItemText(l, kept ? tr("Layer %1").arg(l) : tr("Layer %1 (not captured)").arg(l));
        if (!kept) continue;
        if (first < 0) first = l;
        if (firstDesignated < 0)
            for (const auto& [dl, dh] : m_designated)
                if (dl == l) firstDesignated = l;
    }
    // Start on a captured layer (one with a designated head first) when the current one was left out.
    if (!isCaptured(lp, layer()) && first >= 0) setLoopLayer(lp, firstDesignated >= 0 ? firstDesignated : first);
}

void MchStreamsView::updateCapturedState()
{
    const bool missing = !isCaptured(loop(), layer());
    if (missing) {
        const QString policy = m_feed ? QString::fromStdString(m_feed->info().policy) : QString();
        m_notCaptured->setText(tr("Loop %1 · layer %2 was not captured by this run's policy (%3). Choose a captured "
                                  "layer, or widen File > Preferences > Capture for the next run.")
                                   .arg(loop())
                                   .arg(layer())
                                   .arg(policy));
    }
    m_notCaptured->setVisible(missing);
    m_gateView->setVisible(!missing);
    m_divergenceView->setVisible(!missing);
}

void MchStreamsView::rebuildSeries(Chart& c, MchSeriesModel* model)
{
    QChart* chart = c.view->chart();
    qDeleteAll(c.mappers);
    c.mappers.clear();
    for (QLineSeries* s : c.series) {
        chart->removeSeries(s);
        delete s;
    }
    c.series.clear();
    for (int h = 0; h < model->heads(); ++h) {
        auto* series = new QLineSeries;
        chart->addSeries(series);
        series->attachAxis(c.x);
        series->attachAxis(c.y);
        auto* mapper = new QVXYModelMapper(this);
        mapper->setXColumn(0);
        mapper->setYColumn(1 + h);
        mapper->setSeries(series);
        mapper->setModel(model);
        connect(series, &QLineSeries::clicked, this, [this](const QPointF& p) {
            if (m_selection) m_selection->setPosition(int(std::lround(p.x())));
        });
        c.series << series;
        c.mappers << mapper;
    }
    styleSeries(c);
}

void MchStreamsView::styleSeries(Chart& c)
{
    for (int h = 0; h < c.series.size(); ++h) {
        QLineSeries* s = c.series[h];
        const bool designated = isDesignated(layer(), h);
        s->setName(designated ? tr("h%1 ★").arg(h) : tr("h%1").arg(h));
        QPen pen = s->pen();
        pen.setWidthF(designated ? 3.0 : 1.2);
        s->setPen(pen);
        s->setPointsVisible(designated);
        s->setMarkerSize(designated ? 6.0 : 4.0);
    }
}

void MchStreamsView::onTraceReset()
{
    const bool has = m_feed && m_feed->hasTrace();
    const int loops = has ? int(m_feed->info().loops) : 0;
    const int layers = has ? int(m_feed->info().layers) : 0;
    const bool looped = has && loops >= 2 && m_feed->info().heads > 0;

    m_loopCombo->clear();
    for (int l = 2; l <= loops; ++l) m_loopCombo->addItem(tr("Loop %1").arg(l), l);
    m_layerCombo->clear();
    for (int l = 0; l < layers; ++l) m_layerCombo->addItem(tr("Layer %1").arg(l));
    m_loopCombo->setEnabled(loops > 2);

    rebuildSeries(m_gateChart, m_gate);
    rebuildSeries(m_divergenceChart, m_divergence);
    m_divergenceRows = 0;
    m_divergenceTop = 0.1;
    m_layersChecked = false;
    if (looped) {
        // Start on a layer with a designated head: those are the ones to look at first.
        int layer = 0;
        for (const auto& [l, h] : m_designated)
            if (l >= 0 && l < layers) {
                layer = l;
                break;
            }
        setLoopLayer(2, layer);
    }
    m_placeholder->setText(!has ? tr("No trace: generate with capture on to see the MCH streams.")
                                : tr("This model runs one loop: its heads have a single context stream."));
    m_placeholder->setVisible(!looped);
    m_content->setVisible(looped);
    updateMarkers();
    updateRanges();
    updateCapturedState();
}

void MchStreamsView::onStepsAppended()
{
    checkCapturedLayers();
    updateCapturedState();
    updateRanges();
    updateMarkers();
    if (!m_feed || !m_feed->hasTrace()) {
        m_summary->clear();
        return;
    }
    m_summary->setText(tr("%1 tokens · %2 heads x %3 layers · %4 designated")
                           .arg(m_feed->stepCount())
                           .arg(m_feed->info().heads)
                           .arg(m_feed->info().layers)
                           .arg(m_designated.size()));
}

void MchStreamsView::updateRanges()
{
    const qint64 n = m_feed ? m_feed->stepCount() : 0;
    const qint64 origin = m_feed ? m_feed->origin() : 0;
    for (Chart* c : {&m_gateChart, &m_divergenceChart}) ChartAxes::setPositionRange(c->x, origin, origin + n - 1);
    // Only the rows since the last call: the divergence axis grows with the data at O(new rows x heads).
    if (m_divergenceRows > m_divergence->rowCount()) {
        m_divergenceRows = 0;
        m_divergenceTop = 0.1;
    }
    for (int row = m_divergenceRows; row < m_divergence->rowCount(); ++row)
        for (int h = 0; h < m_divergence->heads(); ++h) {
            const double v = m_divergence->value(row, h);
            if (std::isfinite(v)) m_divergenceTop = std::max(m_divergenceTop, v);
        }
    m_divergenceRows = m_divergence->rowCount();
    m_divergenceChart.y->setRange(0, std::min(2.0, m_divergenceTop * 1.1));
    updateMarkers();
}

void MchStreamsView::updateMarkers()
{
    const int position = m_selection ? m_selection->position() : -1;
    for (Chart* c : {&m_gateChart, &m_divergenceChart}) {
        if (position < 0) {
            c->marker->clear();
            continue;
        }
        c->marker->replace(QList<QPointF>{{double(position), c->y->min()}, {double(position), c->y->max()}});
        QPen pen(palette().color(QPalette::Text));
        pen.setStyle(Qt::DashLine);
        c->marker->setPen(pen);
    }
}

QLineSeries* MchStreamsView::gateSeries(int head) const
{
    return head >= 0 && head < m_gateChart.series.size() ? m_gateChart.series[head] : nullptr;
}

QLineSeries* MchStreamsView::divergenceSeries(int head) const
{
    return head >= 0 && head < m_divergenceChart.series.size() ? m_divergenceChart.series[head] : nullptr;
}

} // namespace sage
