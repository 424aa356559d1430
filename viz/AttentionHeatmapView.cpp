#include "viz/AttentionHeatmapView.h"

#include "engine/capture/StreamRecompute.h"
#include "viz/ExactAttentionSource.h"
#include "viz/HeatmapCanvas.h"
#include "viz/HeatmapColors.h"
#include "viz/RenderQueue.h"
#include "viz/RunDocument.h"
#include "viz/StepSelection.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QPainter>
#include <QProgressBar>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace sage {

namespace {

constexpr size_t kCacheEntries = 12;

HeatmapColors::Scale scaleFor(AttentionHeatmapView::ScaleMode mode, float maxValue)
{
    HeatmapColors::Scale s;
    if (mode == AttentionHeatmapView::ScaleMode::Max) s.high = std::max(maxValue, 1e-6f);
    if (mode == AttentionHeatmapView::ScaleMode::Sqrt) s.gamma = 0.5f;
    return s;
}

QPixmap legendPixmap(const QString& low, const QString& high, const QFont& font, const QColor& text)
{
    const QFontMetrics fm(font);
    const int bar = 80, h = fm.height();
    const int lw = fm.horizontalAdvance(low), hw = fm.horizontalAdvance(high);
    QPixmap pm(lw + bar + hw + 8, h);
    pm.fill(Qt::transparent);
    QPainter p(&pm);
    p.setFont(font);
    p.setPen(text);
    p.drawText(QRect(0, 0, lw, h), Qt::AlignVCenter, low);
    for (int x = 0; x < bar; ++x) {
        p.setPen(QColor::fromRgb(HeatmapColors::sequentialColor(double(x) / (bar - 1))));
        p.drawLine(lw + 4 + x, 2, lw + 4 + x, h - 3);
    }
    p.setPen(text);
    p.drawText(QRect(lw + bar + 8, 0, hw, h), Qt::AlignVCenter, high);
    return pm;
}

QString streamName(AttentionSelection::Stream s)
{
    switch (s) {
    case AttentionSelection::Stream::Global: return QObject::tr("global");
    case AttentionSelection::Stream::Local: return QObject::tr("local");
    case AttentionSelection::Stream::Mixed: return QObject::tr("mixed");
    }
    return {};
}

} // namespace

AttentionHeatmapView::AttentionHeatmapView(QWidget* parent) : QWidget(parent)
{
    qRegisterMetaType<std::shared_ptr<const sage::HeadStreams>>();
    m_queue = new RenderQueue(this);
    connect(m_queue, &RenderQueue::idle, this, &AttentionHeatmapView::checkIdle);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->setSpacing(4);
    auto* bar = new QHBoxLayout;
    bar->setSpacing(6);
    layout->addLayout(bar);

    m_loopBox = new QComboBox(this);
    m_loopBox->setObjectName("heatLoop");
    m_loopBox->setToolTip(tr("Loop (O cycles)"));
    bar->addWidget(m_loopBox);
    bar->addWidget(new QLabel(tr("Layer"), this));
    m_layerBox = new QSpinBox(this);
    m_layerBox->setObjectName("heatLayer");
    m_layerBox->setToolTip(tr("Layer ([ and ] step)"));
    bar->addWidget(m_layerBox);
    bar->addWidget(new QLabel(tr("Head"), this));
    m_headBox = new QComboBox(this);
    m_headBox->setObjectName("heatHead");
    m_headBox->setToolTip(tr("Head or the mean over heads (, and . step, M toggles the mean)"));
    bar->addWidget(m_headBox);
    m_streamBox = new QComboBox(this);
    m_streamBox->setObjectName("heatStream");
    m_streamBox->addItem(tr("Global stream"), int(AttentionSelection::Stream::Global));
    m_streamBox->addItem(tr("Local stream"), int(AttentionSelection::Stream::Local));
    m_streamBox->addItem(tr("Mixed (g·global + (1−g)·local)"), int(AttentionSelection::Stream::Mixed));
    m_streamBox->setToolTip(tr("Context stream of loops ≥ 2 (G, L, X); loop 1 has only the causal stream"));
    bar->addWidget(m_streamBox);
    m_scaleBox = new QComboBox(this);
    m_scaleBox->setObjectName("heatScale");
    m_scaleBox->addItem(tr("0 – 1"), int(ScaleMode::Unit));
    m_scaleBox->addItem(tr("0 – max"), int(ScaleMode::Max));
    m_scaleBox->addItem(tr("√p"), int(ScaleMode::Sqrt));
    m_scaleBox->setCurrentIndex(int(m_scaleMode));
    m_scaleBox->setToolTip(tr("Colour scale"));
    bar->addWidget(m_scaleBox);

    auto tool = [this, bar](const QString& text, const QString& tip) {
        auto* b = new QToolButton(this);
        b->setText(text);
        b->setToolTip(tip);
        b->setAutoRaise(true);
        bar->addWidget(b);
        return b;
    };
    QToolButton* zoomIn = tool(QStringLiteral("+"), tr("Zoom in (+, wheel)"));
    QToolButton* zoomOut = tool(QStringLiteral("−"), tr("Zoom out (−, wheel)"));
    QToolButton* fitButton = tool(tr("Fit"), tr("Fit the map to the view (F)"));
    m_exactButton = tool(tr("Exact map"), tr("Recompute the exact attention of this layer and head with a "
                                             "teacher-forced pass (E)"));
    m_exactButton->setObjectName("heatExact");
    m_progress = new QProgressBar(this);
    m_progress->setRange(0, 100);
    m_progress->setMaximumWidth(90);
    m_progress->hide();
    bar->addWidget(m_progress);
    m_cancelButton = tool(tr("Cancel"), tr("Cancel the exact map computation"));
    m_cancelButton->hide();
    bar->addStretch(1);
    m_legend = new QLabel(this);
    bar->addWidget(m_legend);
    QToolButton* help = tool(QStringLiteral("?"), keyHelp());
    help->setObjectName("heatHelp");

    m_status = new QLabel(this);
    m_status->setObjectName("heatStatus");
    m_status->setWordWrap(true);
    m_status->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
    layout->addWidget(m_status);

    m_canvas = new HeatmapCanvas(this);
    m_canvas->setObjectName("heatCanvas");
    m_canvas->setToolTipProvider([this](int r, int c) { return cellDescription(r, c); });
    m_canvas->setWhatsThis(keyHelp());
    layout->addWidget(m_canvas, 1);
    setFocusProxy(m_canvas);

    connect(zoomIn, &QToolButton::clicked, m_canvas, [this] { m_canvas->zoomBy(1.25); });
    connect(zoomOut, &QToolButton::clicked, m_canvas, [this] { m_canvas->zoomBy(0.8); });
    connect(fitButton, &QToolButton::clicked, m_canvas, &HeatmapCanvas::fit);
    connect(m_exactButton, &QToolButton::clicked, this, &AttentionHeatmapView::fetchExact);
    connect(m_cancelButton, &QToolButton::clicked, this, &AttentionHeatmapView::cancelExact);
    connect(m_canvas, &HeatmapCanvas::cellClicked, this, [this](int row, int) {
        if (m_stepSelection && m_matrix) m_stepSelection->setPosition(m_matrix->rowOrigin + row);
    });
    auto changed = [this] {
        if (!m_syncing) readControls();
    };
    connect(m_loopBox, &QComboBox::currentIndexChanged, this, changed);
    connect(m_layerBox, &QSpinBox::valueChanged, this, changed);
    connect(m_headBox, &QComboBox::currentIndexChanged, this, changed);
    connect(m_streamBox, &QComboBox::currentIndexChanged, this, changed);
    connect(m_scaleBox, &QComboBox::currentIndexChanged, this,
            [this](int i) { setScaleMode(ScaleMode(m_scaleBox->itemData(i).toInt())); });

    syncControls();
    updateStatus();
}

AttentionHeatmapView::~AttentionHeatmapView()
{
    if (m_exactSource && m_exactTicket) m_exactSource->cancel(m_exactTicket);
}

QString AttentionHeatmapView::keyHelp()
{
    return tr("<b>Attention heatmap keys</b><br/>"
              "[ / ] or Page Up / Page Down: previous / next layer<br/>"
              ", / . : previous / next head (through the head mean)<br/>"
              "M: head mean on / off<br/>"
              "O: next loop<br/>"
              "G / L / X: global / local / mixed stream (loops ≥ 2)<br/>"
              "+ / − or the wheel: zoom; F or 0: fit; arrows or drag: pan<br/>"
              "E: recompute the exact map<br/>"
              "Click a row: select that position; hover: query, key and value");
}

void AttentionHeatmapView::setDocument(RunDocument* document)
{
    if (m_doc) disconnect(m_doc, nullptr, this, nullptr);
    m_doc = document;
    if (m_doc) {
        connect(m_doc, &RunDocument::traceChanged, this, &AttentionHeatmapView::onTraceChanged);
        connect(m_doc, &RunDocument::traceAppended, this, &AttentionHeatmapView::onTraceAppended);
        connect(m_doc, &RunDocument::runFinished, this, &AttentionHeatmapView::maybeAutoFetch);
        connect(m_doc, &RunDocument::cleared, this, &AttentionHeatmapView::onTraceChanged);
    }
    onTraceChanged();
}

void AttentionHeatmapView::setSelection(StepSelection* selection)
{
    if (m_stepSelection) disconnect(m_stepSelection, nullptr, this, nullptr);
    m_stepSelection = selection;
    if (m_stepSelection)
        connect(m_stepSelection, &StepSelection::positionChanged, this, &AttentionHeatmapView::updateHighlight);
    updateHighlight();
}

void AttentionHeatmapView::setExactSource(ExactAttentionSource* source)
{
    if (m_exactSource) disconnect(m_exactSource, nullptr, this, nullptr);
    m_exactSource = source;
    if (m_exactSource) {
        connect(m_exactSource, &ExactAttentionSource::finished, this, &AttentionHeatmapView::onExactFinished);
        connect(m_exactSource, &ExactAttentionSource::failed, this, &AttentionHeatmapView::onExactFailed);
        connect(m_exactSource, &ExactAttentionSource::progress, this, &AttentionHeatmapView::onExactProgress);
    }
    updateStatus();
}

void AttentionHeatmapView::onTraceChanged()
{
    cancelExact();
    m_exact.clear();
    m_cache.clear();
    m_autoTried.clear();
    m_exactError.clear();
    m_matrix.reset();
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    if (trace) {
        const TraceInfo& info = trace->info();
        m_heads = info.heads;
        m_layers = info.layers;
        m_loops = std::max<int64_t>(info.loops, 1);
    } else {
        m_heads = m_layers = m_loops = 0;
    }
    // Keep the user's choice where the new model has it.
    m_sel.loop = std::clamp<int>(m_sel.loop, 1, int(std::max<int64_t>(m_loops, 1)));
    m_sel.layer = std::clamp<int>(m_sel.layer, 0, int(std::max<int64_t>(m_layers - 1, 0)));
    if (m_sel.head >= m_heads) m_sel.head = 0;
    syncControls();
    m_canvas->setImage({});
    scheduleRender();
}

void AttentionHeatmapView::onTraceAppended()
{
    scheduleRender();
}

void AttentionHeatmapView::syncControls()
{
    m_syncing = true;
    m_loopBox->clear();
    for (int64_t l = 1; l <= m_loops; ++l) m_loopBox->addItem(tr("Loop %1").arg(l), int(l));
    m_loopBox->setCurrentIndex(m_sel.loop - 1);
    m_layerBox->setRange(0, int(std::max<int64_t>(m_layers - 1, 0)));
    m_layerBox->setValue(m_sel.layer);
    m_headBox->clear();
    m_headBox->addItem(tr("mean"), -1);
    for (int64_t h = 0; h < m_heads; ++h) m_headBox->addItem(QString::number(h), int(h));
    m_headBox->setCurrentIndex(m_sel.head + 1);
    m_streamBox->setCurrentIndex(int(m_sel.stream));
    m_streamBox->setEnabled(m_sel.loop > 1);
    const bool any = m_heads > 0;
    for (QWidget* w :
         {static_cast<QWidget*>(m_loopBox), static_cast<QWidget*>(m_layerBox), static_cast<QWidget*>(m_headBox)})
        w->setEnabled(any);
    m_syncing = false;
}

void AttentionHeatmapView::readControls()
{
    AttentionSelection sel;
    sel.loop = std::max(1, m_loopBox->currentData().toInt());
    sel.layer = m_layerBox->value();
    sel.head = m_headBox->currentIndex() >= 0 ? m_headBox->currentData().toInt() : 0;
    sel.stream = AttentionSelection::Stream(m_streamBox->currentData().toInt());
    setAttentionSelection(sel);
}

void AttentionHeatmapView::setAttentionSelection(const AttentionSelection& requested)
{
    AttentionSelection sel = requested;
    sel.loop = std::clamp<int>(sel.loop, 1, int(std::max<int64_t>(m_loops, 1)));
    sel.layer = std::clamp<int>(sel.layer, 0, int(std::max<int64_t>(m_layers - 1, 0)));
    sel.head = std::clamp<int>(sel.head, -1, int(std::max<int64_t>(m_heads - 1, 0)));
    const bool same = sel == m_sel;
    m_sel = sel;
    syncControls();
    if (same) return;
    m_exactError.clear();
    scheduleRender();
    emit attentionSelectionChanged(m_sel);
}

void AttentionHeatmapView::setScaleMode(ScaleMode mode)
{
    if (mode == m_scaleMode) return;
    m_scaleMode = mode;
    m_syncing = true;
    m_scaleBox->setCurrentIndex(int(mode));
    m_syncing = false;
    scheduleRender();
}

void AttentionHeatmapView::nextLayer(int delta)
{
    if (m_layers <= 0) return;
    AttentionSelection s = m_sel;
    s.layer = int((s.layer + delta + m_layers) % m_layers);
    setAttentionSelection(s);
}

void AttentionHeatmapView::nextHead(int delta)
{
    if (m_heads <= 0) return;
    // Cycle mean, 0, 1, ..., H-1.
    AttentionSelection s = m_sel;
    const int n = int(m_heads) + 1;
    s.head = ((s.head + 1 + delta) % n + n) % n - 1;
    setAttentionSelection(s);
}

void AttentionHeatmapView::nextLoop(int delta)
{
    if (m_loops <= 0) return;
    AttentionSelection s = m_sel;
    s.loop = int(((s.loop - 1 + delta) % m_loops + m_loops) % m_loops) + 1;
    setAttentionSelection(s);
}

void AttentionHeatmapView::keyPressEvent(QKeyEvent* event)
{
    AttentionSelection s = m_sel;
    switch (event->key()) {
    case Qt::Key_BracketRight:
    case Qt::Key_PageDown: nextLayer(1); break;
    case Qt::Key_BracketLeft:
    case Qt::Key_PageUp: nextLayer(-1); break;
    case Qt::Key_Period: nextHead(1); break;
    case Qt::Key_Comma: nextHead(-1); break;
    case Qt::Key_O: nextLoop(1); break;
    case Qt::Key_M:
        s.head = s.head < 0 ? 0 : -1;
        setAttentionSelection(s);
        break;
    case Qt::Key_G:
        s.stream = AttentionSelection::Stream::Global;
        setAttentionSelection(s);
        break;
    case Qt::Key_L:
        s.stream = AttentionSelection::Stream::Local;
        setAttentionSelection(s);
        break;
    case Qt::Key_X:
        s.stream = AttentionSelection::Stream::Mixed;
        setAttentionSelection(s);
        break;
    case Qt::Key_E: fetchExact(); break;
    default: QWidget::keyPressEvent(event); return;
    }
    event->accept();
}

std::shared_ptr<const HeadStreams> AttentionHeatmapView::exactFor(const AttentionSelection& sel) const
{
    for (const auto& x : m_exact) {
        if (x->loop != sel.loop || x->layer != sel.layer) continue;
        if (sel.isMean() ? int64_t(x->heads.size()) == m_heads : x->headIndex(sel.head) >= 0) return x;
    }
    return nullptr;
}

void AttentionHeatmapView::showEvent(QShowEvent* event)
{
    QWidget::showEvent(event);
    if (m_renderDeferred) scheduleRender();
}

void AttentionHeatmapView::scheduleRender()
{
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    if (!trace) {
        m_queue->cancelAll();
        m_matrix.reset();
        m_canvas->setImage({});
        m_canvas->setPlaceholderText(tr("No trace for this run. Choose a capture policy other than “off” in "
                                        "Preferences and generate to see attention maps."));
        updateStatus();
        return;
    }
    // The steps announced so far: a consistent prefix that never changes.
    const qint64 count = m_doc->traceStepCount();
    std::vector<Trace::StepPtr> steps = trace->snapshot();
    if (qint64(steps.size()) > count) steps.resize(size_t(count));
    if (steps.empty()) {
        m_canvas->setPlaceholderText(tr("Waiting for the first captured positions…"));
        updateStatus();
        return;
    }
    if (!isVisible()) {
        m_queue->cancelAll();
        m_renderDeferred = true;
        return;
    }
    m_renderDeferred = false;
    const std::shared_ptr<const HeadStreams> exact = exactFor(m_sel);
    for (auto it = m_cache.begin(); it != m_cache.end(); ++it)
        if (it->sel == m_sel && it->scale == m_scaleMode && it->steps == count && it->exact == exact.get()) {
            m_cache.splice(m_cache.begin(), m_cache, it);
            m_queue->cancelAll();
            display(m_cache.front().matrix, m_cache.front().image);
            return;
        }
    const AttentionSelection sel = m_sel;
    const ScaleMode scale = m_scaleMode;
    const int64_t heads = trace->info().heads;
    m_queue->submit([this, steps = std::move(steps), exact, sel, scale, heads,
                     count](const RenderQueue::Stale& stale) -> std::function<void()> {
        auto matrix = std::make_shared<AttentionMatrix>(buildAttentionMatrix(steps, heads, sel, exact.get(), stale));
        if (stale()) return {};
        QImage image = HeatmapColors::colorize(matrix->values.data(), matrix->rows, matrix->cols,
                                               scaleFor(scale, matrix->maxValue));
        return [this, matrix, image, sel, scale, count, exact] {
            m_cache.push_front(CacheEntry{sel, scale, count, exact.get(), matrix, image});
            if (m_cache.size() > kCacheEntries) m_cache.pop_back();
            display(matrix, image);
        };
    });
    updateStatus();
}

void AttentionHeatmapView::display(std::shared_ptr<const AttentionMatrix> matrix, const QImage& image)
{
    m_matrix = std::move(matrix);
    m_canvas->setImage(image);
    const QString high =
        m_scaleMode == ScaleMode::Max && m_matrix ? QString::number(m_matrix->maxValue, 'g', 3) : QStringLiteral("1");
    m_legend->setPixmap(legendPixmap(QStringLiteral("0"), m_scaleMode == ScaleMode::Sqrt ? "1 (√)" : high, font(),
                                     palette().color(QPalette::WindowText)));
    updateHighlight();
    updateStatus();
    emit rendered();
    maybeAutoFetch();
}

void AttentionHeatmapView::updateHighlight()
{
    const int pos = m_stepSelection ? m_stepSelection->position() : -1;
    m_canvas->setHighlightRow(m_matrix && pos >= 0 ? pos - m_matrix->rowOrigin : -1);
}

QString AttentionHeatmapView::statusText() const
{
    return m_status->text();
}

void AttentionHeatmapView::updateStatus()
{
    QString head = m_sel.isMean() ? tr("head mean") : tr("head %1").arg(m_sel.head);
    QString text;
    QString style;
    if (!m_matrix) {
        text = m_queue->isBusy() ? tr("Building the map…") : QString();
    } else {
        text = tr("Loop %1 · layer %2 · %3 · %4 stream · %5 positions")
                   .arg(m_sel.loop)
                   .arg(m_sel.layer)
                   .arg(head)
                   .arg(streamName(m_sel.effectiveStream()))
                   .arg(m_matrix->rows);
        if (m_matrix->exactRows > 0 && !m_matrix->isPartial()) {
            text += tr(" · exact (recomputed)");
        } else if (m_matrix->isPartial()) {
            const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
            const int k = trace ? trace->info().attentionTopK : 0;
            if (m_matrix->partialRows > 0)
                text += tr(" · PARTIAL: only the top-%1 keys of %2 rows were kept").arg(k).arg(m_matrix->partialRows);
            if (m_matrix->missingRows > 0) text += tr(" · %1 rows not captured (grey)").arg(m_matrix->missingRows);
            text += tr(" · press Exact map (E) for the exact map");
            style = QStringLiteral("color: #b26a00; font-weight: bold;");
        } else {
            text += tr(" · full rows");
        }
    }
    if (!m_exactError.isEmpty()) {
        text += tr(" · exact map failed: %1").arg(m_exactError);
        style = QStringLiteral("color: #b3261e;");
    }
    m_status->setText(text);
    m_status->setStyleSheet(style);
    m_exactButton->setEnabled(m_exactSource && m_matrix && !m_exactTicket);
}

void AttentionHeatmapView::fetchExact()
{
    const std::shared_ptr<const Trace> trace = m_doc ? m_doc->trace() : nullptr;
    if (!m_exactSource || !trace || m_exactTicket) return;
    if (exactFor(m_sel) && m_doc->traceStepCount() <= exactFor(m_sel)->tokens) return;
    std::vector<int32_t> tokens = trace->tokens();
    if (qint64(tokens.size()) > m_doc->traceStepCount()) tokens.resize(size_t(m_doc->traceStepCount()));
    if (tokens.empty() || trace->origin() != 0) {
        m_exactError = tr("the trace does not start at position 0, so it cannot be replayed");
        updateStatus();
        return;
    }
    m_exactError.clear();
    std::vector<int32_t> heads;
    if (!m_sel.isMean()) heads.push_back(m_sel.head);
    m_exactFor = m_sel;
    m_exactTicket = m_exactSource->request(tokens, m_sel.loop, m_sel.layer, heads);
    if (!m_exactTicket) {
        m_exactError = tr("no model is loaded");
        updateStatus();
        return;
    }
    m_progress->setValue(0);
    m_progress->show();
    m_cancelButton->show();
    updateStatus();
}

void AttentionHeatmapView::cancelExact()
{
    if (!m_exactTicket) return;
    if (m_exactSource) m_exactSource->cancel(m_exactTicket);
    m_exactTicket = 0;
    m_progress->hide();
    m_cancelButton->hide();
    updateStatus();
    checkIdle();
}

void AttentionHeatmapView::onExactProgress(quint64 ticket, int percent)
{
    if (ticket == m_exactTicket) m_progress->setValue(percent);
}

void AttentionHeatmapView::onExactFinished(quint64 ticket, std::shared_ptr<const HeadStreams> result)
{
    if (ticket != m_exactTicket || !result) return;
    m_exactTicket = 0;
    m_progress->hide();
    m_cancelButton->hide();
    m_exact.insert(m_exact.begin(), std::move(result));
    if (m_exact.size() > 8) m_exact.pop_back();
    scheduleRender();
    checkIdle();
}

void AttentionHeatmapView::onExactFailed(quint64 ticket, const QString& message)
{
    if (ticket != m_exactTicket) return;
    m_exactTicket = 0;
    m_progress->hide();
    m_cancelButton->hide();
    if (message != QLatin1String("cancelled")) m_exactError = message;
    updateStatus();
    checkIdle();
}

void AttentionHeatmapView::maybeAutoFetch()
{
    if (!m_matrix || !m_matrix->isPartial() || m_exactTicket || !m_exactSource) return;
    if (!m_doc || m_doc->state() == RunDocument::State::Running) return; // the sequence still grows
    if (m_matrix->rows > kAutoExactTokens) return;
    const std::pair<AttentionSelection, qint64> key{m_sel, m_doc->traceStepCount()};
    if (std::find(m_autoTried.begin(), m_autoTried.end(), key) != m_autoTried.end()) return;
    m_autoTried.push_back(key);
    fetchExact();
}

bool AttentionHeatmapView::isBusy() const
{
    return m_queue->isBusy() || m_exactTicket != 0;
}

void AttentionHeatmapView::checkIdle()
{
    if (!isBusy()) emit idle();
}

QString AttentionHeatmapView::tokenText(int position) const
{
    if (!m_doc || position < 0) return {};
    if (position < m_doc->promptLength()) return m_doc->promptToken(position).text;
    const int s = position - m_doc->promptLength();
    if (s < m_doc->stepCount()) return m_doc->step(s).text;
    const std::shared_ptr<const Trace> trace = m_doc->trace();
    if (trace)
        if (const auto step = trace->step(position - trace->origin())) return QStringLiteral("#%1").arg(step->token);
    return {};
}

QString AttentionHeatmapView::cellDescription(int row, int col) const
{
    if (!m_matrix || row < 0 || col < 0 || row >= m_matrix->rows || col >= m_matrix->cols) return {};
    const int query = m_matrix->rowOrigin + row;
    const float v = m_matrix->at(row, col);
    const QString value = std::isnan(v) ? tr("not captured") : QString::number(double(v), 'f', 4);
    return tr("query %1 “%2” → key %3 “%4”: %5")
        .arg(query)
        .arg(tokenText(query).toHtmlEscaped())
        .arg(col)
        .arg(tokenText(col).toHtmlEscaped())
        .arg(value);
}

} // namespace sage
