#include "viz/LoopComparisonView.h"

#include "engine/capture/StreamRecompute.h"
#include "viz/AttentionHeatmapView.h"
#include "viz/ExactAttentionSource.h"
#include "viz/GateStatsModel.h"
#include "viz/HeatmapCanvas.h"
#include "viz/HeatmapColors.h"
#include "viz/RenderQueue.h"
#include "viz/RunDocument.h"
#include "viz/StepSelection.h"

#include <QComboBox>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QKeyEvent>
#include <QLabel>
#include <QSpinBox>
#include <QSplitter>
#include <QTableView>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace sage {

LoopComparisonView::LoopComparisonView(QWidget* parent) : QWidget(parent)
{
    m_queue = new RenderQueue(this);
    connect(m_queue, &RenderQueue::idle, this, &LoopComparisonView::idle);
    m_lens = new LoopLensModel(this);
    m_gates = new GateStatsModel(this);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    auto* bar = new QHBoxLayout;
    layout->addLayout(bar);
    bar->addWidget(new QLabel(tr("Layer"), this));
    m_layerBox = new QSpinBox(this);
    m_layerBox->setObjectName("loopsLayer");
    m_layerBox->setToolTip(tr("Layer ([ and ] step)"));
    bar->addWidget(m_layerBox);
    bar->addWidget(new QLabel(tr("Head"), this));
    m_headBox = new QComboBox(this);
    m_headBox->setObjectName("loopsHead");
    m_headBox->setToolTip(tr("Head or the head mean (, and . step)"));
    bar->addWidget(m_headBox);
    bar->addWidget(new QLabel(tr("Compare loop 1 with"), this));
    m_loopBox = new QComboBox(this);
    m_loopBox->setObjectName("loopsLater");
    bar->addWidget(m_loopBox);
    m_streamBox = new QComboBox(this);
    m_streamBox->setObjectName("loopsStream");
    m_streamBox->addItem(tr("Global stream"), int(AttentionSelection::Stream::Global));
    m_streamBox->addItem(tr("Local stream"), int(AttentionSelection::Stream::Local));
    m_streamBox->addItem(tr("Mixed (effective)"), int(AttentionSelection::Stream::Mixed));
    m_streamBox->setCurrentIndex(2);
    bar->addWidget(m_streamBox);
    bar->addStretch(1);
    m_status = new QLabel(this);
    m_status->setObjectName("loopsStatus");
    m_status->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    layout->addWidget(m_status);

    auto* split = new QSplitter(Qt::Vertical, this);
    layout->addWidget(split, 1);
    auto* maps = new QWidget(split);
    auto* grid = new QGridLayout(maps);
    grid->setContentsMargins(0, 0, 0, 0);
    for (int i = 0; i < 3; ++i) {
        m_titles[i] = new QLabel(maps);
        m_titles[i]->setAlignment(Qt::AlignCenter);
        grid->addWidget(m_titles[i], 0, i);
        m_canvas[i] = new HeatmapCanvas(maps);
        m_canvas[i]->setObjectName(QStringList{"loopsFirst", "loopsLater", "loopsDifference"}[i]);
        m_canvas[i]->setToolTipProvider([this, i](int r, int c) { return describe(i, r, c); });
        grid->addWidget(m_canvas[i], 1, i);
        grid->setColumnStretch(i, 1);
        connect(m_canvas[i], &HeatmapCanvas::cellClicked, this, [this](int row, int) {
            if (m_stepSelection && m_a) m_stepSelection->setPosition(m_a->rowOrigin + row);
        });
    }
    // The three maps show the same positions: zoom and pan move together.
    for (int i = 0; i < 3; ++i)
        connect(m_canvas[i], &HeatmapCanvas::viewChanged, this, [this, i](double zoom, QPointF offset, bool fitted) {
            for (int j = 0; j < 3; ++j)
                if (j != i) m_canvas[j]->setView(zoom, offset, fitted);
        });
    split->addWidget(maps);

    auto* tables = new QSplitter(Qt::Horizontal, split);
    m_lensTable = new QTableView(tables);
    m_lensTable->setObjectName("loopLensTable");
    m_lensTable->setModel(m_lens);
    m_lensTable->verticalHeader()->hide();
    m_lensTable->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_lensTable->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_lensTable->setToolTip(tr("Logit lens after each loop: highlighted cells differ from the final prediction"));
    connect(m_lensTable, &QTableView::clicked, this, [this](const QModelIndex& idx) {
        if (m_stepSelection) m_stepSelection->setPosition(idx.data(LoopLensModel::PositionRole).toInt());
    });
    m_gateTable = new QTableView(tables);
    m_gateTable->setObjectName("gateStatsTable");
    m_gateTable->setModel(m_gates);
    m_gateTable->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_gateTable->setToolTip(tr("Mean loop gate per layer and head (hover: min / max). Red: global stream, blue: "
                               "local window"));
    tables->addWidget(m_lensTable);
    tables->addWidget(m_gateTable);
    split->addWidget(tables);
    split->setStretchFactor(0, 3);
    split->setStretchFactor(1, 2);

    auto changed = [this] {
        if (!m_syncing) readControls();
    };
    connect(m_layerBox, &QSpinBox::valueChanged, this, changed);
    connect(m_headBox, &QComboBox::currentIndexChanged, this, changed);
    connect(m_loopBox, &QComboBox::currentIndexChanged, this, changed);
    connect(m_streamBox, &QComboBox::currentIndexChanged, this, changed);
    syncControls();
    scheduleRender();
}

LoopComparisonView::~LoopComparisonView()
{
    if (m_exactSource)
        for (quint64 t : m_tickets) m_exactSource->cancel(t);
}

void LoopComparisonView::setExactSource(ExactAttentionSource* source)
{
    if (m_exactSource) disconnect(m_exactSource, nullptr, this, nullptr);
    m_exactSource = source;
    if (m_exactSource) {
        connect(m_exactSource, &ExactAttentionSource::finished, this, &LoopComparisonView::onExactFinished);
        connect(m_exactSource, &ExactAttentionSource::failed, this, &LoopComparisonView::onExactFailed);
    }
}

std::shared_ptr<const HeadStreams> LoopComparisonView::exactFor(int loop) const
{
    for (const auto& x : m_exact) {
        if (x->loop != loop || x->layer != m_layer) continue;
        if (m_head < 0 ? int64_t(x->heads.size()) == m_heads : x->headIndex(m_head) >= 0) return x;
    }
    return nullptr;
}

void LoopComparisonView::maybeFetchExact()
{
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    if (!m_exactSource || !trace || !m_a || !m_b || !m_tickets.empty()) return;
    if (!m_a->isPartial() && !m_b->isPartial()) return;
    if (m_doc->state() == RunDocument::State::Running || trace->origin() != 0) return;
    const qint64 count = m_doc->traceStepCount();
    if (count > AttentionHeatmapView::kAutoExactTokens) return;
    const std::tuple<int, int, int, qint64> key{m_layer, m_head, m_loopB, count};
    if (std::find(m_tried.begin(), m_tried.end(), key) != m_tried.end()) return;
    m_tried.push_back(key);
    std::vector<int32_t> tokens = trace->tokens();
    if (qint64(tokens.size()) > count) tokens.resize(size_t(count));
    std::vector<int32_t> heads;
    if (m_head >= 0) heads.push_back(m_head);
    for (int loop : {1, m_loopB}) {
        if ((loop == 1 ? m_a : m_b)->isPartial())
            if (const quint64 t = m_exactSource->request(tokens, loop, m_layer, heads)) m_tickets.push_back(t);
    }
}

void LoopComparisonView::onExactFinished(quint64 ticket, std::shared_ptr<const HeadStreams> result)
{
    const auto it = std::find(m_tickets.begin(), m_tickets.end(), ticket);
    if (it == m_tickets.end() || !result) return;
    m_tickets.erase(it);
    m_exact.insert(m_exact.begin(), std::move(result));
    if (m_exact.size() > 8) m_exact.pop_back();
    if (m_tickets.empty()) scheduleRender();
}

void LoopComparisonView::onExactFailed(quint64 ticket, const QString&)
{
    const auto it = std::find(m_tickets.begin(), m_tickets.end(), ticket);
    if (it == m_tickets.end()) return;
    m_tickets.erase(it);
    if (m_tickets.empty()) scheduleRender();
}

void LoopComparisonView::setDocument(RunDocument* document)
{
    if (m_doc) disconnect(m_doc, nullptr, this, nullptr);
    m_doc = document;
    m_lens->setDocument(document);
    m_gates->setDocument(document);
    if (m_doc) {
        connect(m_doc, &RunDocument::traceChanged, this, &LoopComparisonView::onTraceChanged);
        connect(m_doc, &RunDocument::cleared, this, &LoopComparisonView::onTraceChanged);
        connect(m_doc, &RunDocument::traceAppended, this, &LoopComparisonView::scheduleRender);
        connect(m_doc, &RunDocument::runFinished, this, &LoopComparisonView::maybeFetchExact);
    }
    onTraceChanged();
}

void LoopComparisonView::setSelection(StepSelection* selection)
{
    if (m_stepSelection) disconnect(m_stepSelection, nullptr, this, nullptr);
    m_stepSelection = selection;
    if (m_stepSelection)
        connect(m_stepSelection, &StepSelection::positionChanged, this, &LoopComparisonView::updateHighlight);
    updateHighlight();
}

void LoopComparisonView::setTokenText(LoopLensModel::TokenText text)
{
    m_lens->setTokenText(std::move(text));
}

void LoopComparisonView::onTraceChanged()
{
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    m_layers = trace ? trace->info().layers : 0;
    m_heads = trace ? trace->info().heads : 0;
    m_loops = trace ? trace->info().loops : 0;
    m_layer = std::clamp<int>(m_layer, 0, int(std::max<int64_t>(m_layers - 1, 0)));
    if (m_head >= m_heads) m_head = 0;
    m_loopB = std::clamp<int>(m_loopB, 2, int(std::max<int64_t>(m_loops, 2)));
    m_a.reset();
    m_b.reset();
    m_diff.reset();
    if (m_exactSource)
        for (quint64 t : m_tickets) m_exactSource->cancel(t);
    m_tickets.clear();
    m_exact.clear();
    m_tried.clear();
    for (HeatmapCanvas* c : m_canvas) c->setImage({});
    syncControls();
    scheduleRender();
}

void LoopComparisonView::syncControls()
{
    m_syncing = true;
    m_layerBox->setRange(0, int(std::max<int64_t>(m_layers - 1, 0)));
    m_layerBox->setValue(m_layer);
    m_headBox->clear();
    m_headBox->addItem(tr("mean"), -1);
    for (int64_t h = 0; h < m_heads; ++h) m_headBox->addItem(QString::number(h), int(h));
    m_headBox->setCurrentIndex(m_head + 1);
    m_loopBox->clear();
    for (int64_t l = 2; l <= m_loops; ++l) m_loopBox->addItem(tr("loop %1").arg(l), int(l));
    m_loopBox->setCurrentIndex(m_loopB - 2);
    m_streamBox->setCurrentIndex(int(m_streamB));
    m_syncing = false;
    m_titles[0]->setText(tr("Loop 1 (causal)"));
    m_titles[1]->setText(tr("Loop %1 (%2)").arg(m_loopB).arg(m_streamBox->currentText()));
    m_titles[2]->setText(tr("Loop %1 − loop 1 (red: more, blue: less)").arg(m_loopB));
}

void LoopComparisonView::readControls()
{
    m_layer = m_layerBox->value();
    m_head = m_headBox->currentIndex() >= 0 ? m_headBox->currentData().toInt() : 0;
    m_loopB = std::max(2, m_loopBox->currentData().toInt());
    m_streamB = AttentionSelection::Stream(m_streamBox->currentData().toInt());
    syncControls();
    scheduleRender();
}

void LoopComparisonView::setLayerHead(int layer, int head)
{
    m_layer = std::clamp<int>(layer, 0, int(std::max<int64_t>(m_layers - 1, 0)));
    m_head = std::clamp<int>(head, -1, int(std::max<int64_t>(m_heads - 1, 0)));
    syncControls();
    scheduleRender();
}

void LoopComparisonView::setLaterLoop(int loop, AttentionSelection::Stream stream)
{
    m_loopB = std::clamp<int>(loop, 2, int(std::max<int64_t>(m_loops, 2)));
    m_streamB = stream;
    syncControls();
    scheduleRender();
}

void LoopComparisonView::keyPressEvent(QKeyEvent* event)
{
    const int n = int(m_heads) + 1;
    switch (event->key()) {
    case Qt::Key_BracketRight:
    case Qt::Key_PageDown:
        if (m_layers > 0) setLayerHead(int((m_layer + 1) % m_layers), m_head);
        break;
    case Qt::Key_BracketLeft:
    case Qt::Key_PageUp:
        if (m_layers > 0) setLayerHead(int((m_layer - 1 + m_layers) % m_layers), m_head);
        break;
    case Qt::Key_Period: setLayerHead(m_layer, ((m_head + 2) % n + n) % n - 1); break;
    case Qt::Key_Comma: setLayerHead(m_layer, ((m_head) % n + n) % n - 1); break;
    default: QWidget::keyPressEvent(event); return;
    }
    event->accept();
}

void LoopComparisonView::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    if (m_renderDeferred) scheduleRender();
}

void LoopComparisonView::scheduleRender()
{
    if (!isVisible()) {
        m_queue->cancelAll();
        m_renderDeferred = true;
        return;
    }
    m_renderDeferred = false;
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    if (!trace || m_loops < 2) {
        m_queue->cancelAll();
        const QString text = !trace ? tr("No trace for this run. Choose a capture policy other than “off” in "
                                         "Preferences and generate.")
                                    : tr("This model has a single loop: there is nothing to compare.");
        for (HeatmapCanvas* c : m_canvas) {
            c->setImage({});
            c->setPlaceholderText(text);
        }
        m_status->clear();
        return;
    }
    std::vector<Trace::StepPtr> steps = trace->snapshot();
    const qint64 count = m_doc->traceStepCount();
    if (qint64(steps.size()) > count) steps.resize(size_t(count));
    if (steps.empty()) return;
    AttentionSelection a;
    a.loop = 1;
    a.layer = m_layer;
    a.head = m_head;
    AttentionSelection b = a;
    b.loop = m_loopB;
    b.stream = m_streamB;
    const int64_t heads = m_heads;
    const std::shared_ptr<const HeadStreams> xa = exactFor(1), xb = exactFor(m_loopB);
    m_queue->submit([this, steps = std::move(steps), a, b, heads, xa, xb](const RenderQueue::Stale& stale) {
        auto ma = std::make_shared<AttentionMatrix>(buildAttentionMatrix(steps, heads, a, xa.get(), stale));
        auto mb = std::make_shared<AttentionMatrix>(buildAttentionMatrix(steps, heads, b, xb.get(), stale));
        if (stale()) return std::function<void()>();
        auto md = std::make_shared<AttentionMatrix>(sage::differenceMatrix(*mb, *ma));
        // One scale for both maps so that equal colours mean equal weights.
        HeatmapColors::Scale s;
        s.high = std::max({ma->maxValue, mb->maxValue, 1e-6f});
        QImage ia = HeatmapColors::colorize(ma->values.data(), ma->rows, ma->cols, s);
        QImage ib = HeatmapColors::colorize(mb->values.data(), mb->rows, mb->cols, s);
        HeatmapColors::Scale d;
        d.diverging = true;
        d.high = std::max(md->maxValue, 1e-6f);
        QImage id = HeatmapColors::colorize(md->values.data(), md->rows, md->cols, d);
        return std::function<void()>([this, ma, mb, md, ia, ib, id] {
            m_a = ma;
            m_b = mb;
            m_diff = md;
            m_canvas[0]->setImage(ia);
            m_canvas[1]->setImage(ib);
            m_canvas[2]->setImage(id);
            const bool partial = ma->isPartial() || mb->isPartial();
            m_status->setText(
                tr("Layer %1 · %2 · shared scale 0 – %3 · difference ±%4%5")
                    .arg(m_layer)
                    .arg(m_head < 0 ? tr("head mean") : tr("head %1").arg(m_head))
                    .arg(double(std::max(ma->maxValue, mb->maxValue)), 0, 'g', 3)
                    .arg(double(md->maxValue), 0, 'g', 3)
                    .arg(partial ? tr(" · PARTIAL: the capture kept only the top-k keys of some rows (grey: not "
                                      "captured); the Attention view recomputes exact maps")
                         : ma->exactRows > 0 || mb->exactRows > 0 ? tr(" · exact (recomputed)")
                                                                  : QString()));
            m_status->setStyleSheet(partial ? QStringLiteral("color: #b26a00; font-weight: bold;") : QString());
            updateHighlight();
            emit rendered();
            maybeFetchExact();
        });
    });
}

void LoopComparisonView::updateHighlight()
{
    const int pos = m_stepSelection ? m_stepSelection->position() : -1;
    for (HeatmapCanvas* c : m_canvas) c->setHighlightRow(m_a && pos >= 0 ? pos - m_a->rowOrigin : -1);
}

bool LoopComparisonView::isBusy() const
{
    return m_queue->isBusy() || !m_tickets.empty();
}

QString LoopComparisonView::statusText() const
{
    return m_status->text();
}

QString LoopComparisonView::tokenText(int position) const
{
    if (!m_doc || position < 0) return {};
    if (position < m_doc->promptLength()) return m_doc->promptToken(position).text;
    const int s = position - m_doc->promptLength();
    return s < m_doc->stepCount() ? m_doc->step(s).text : QString();
}

QString LoopComparisonView::describe(int panel, int row, int col) const
{
    const AttentionMatrix* m = panel == 0 ? m_a.get() : panel == 1 ? m_b.get() : m_diff.get();
    if (!m || row >= m->rows || col >= m->cols) return {};
    const float v = m->at(row, col);
    const int q = m->rowOrigin + row;
    return tr("query %1 “%2” → key %3 “%4”: %5")
        .arg(q)
        .arg(tokenText(q).toHtmlEscaped())
        .arg(col)
        .arg(tokenText(col).toHtmlEscaped())
        .arg(std::isnan(v) ? tr("not captured") : QString::number(double(v), 'f', 4));
}

} // namespace sage
