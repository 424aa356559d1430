#pragma once

#include "viz/AttentionMatrix.h"
#include "viz/LoopLensModel.h"

#include <QPointer>
#include <QWidget>

#include <memory>
#include <tuple>
#include <vector>

class QComboBox;
class QKeyEvent;
class QLabel;
class QSpinBox;
class QTableView;

namespace sage {

class ExactAttentionSource;
class GateStatsModel;
struct HeadStreams;
class HeatmapCanvas;
class RenderQueue;
class RunDocument;
class StepSelection;

// Loop 1 and a later loop side by side for the same layer and head (or head mean), with their difference
// (later - loop 1) in a diverging colour map; both maps share one colour scale so they compare directly.
// Below: the loop lens table (prediction after every loop, flips highlighted) and the per-layer gate
// statistics (mean / min / max gate per head). Images are built off the GUI thread.
class LoopComparisonView : public QWidget
{
    Q_OBJECT

public:
    explicit LoopComparisonView(QWidget* parent = nullptr);
    ~LoopComparisonView() override;

    void setDocument(RunDocument* document);
    void setSelection(StepSelection* selection);
    void setTokenText(LoopLensModel::TokenText text);
    // Partial maps of finished runs up to AttentionHeatmapView::kAutoExactTokens positions are made exact
    // through `source` (both loops).
    void setExactSource(ExactAttentionSource* source);

    int layer() const { return m_layer; }
    int head() const { return m_head; } // -1: head mean
    int laterLoop() const { return m_loopB; }
    AttentionSelection::Stream laterStream() const { return m_streamB; }
    void setLayerHead(int layer, int head);
    void setLaterLoop(int loop, AttentionSelection::Stream stream);

    HeatmapCanvas* firstCanvas() const { return m_canvas[0]; }
    HeatmapCanvas* laterCanvas() const { return m_canvas[1]; }
    HeatmapCanvas* differenceCanvas() const { return m_canvas[2]; }
    const AttentionMatrix* firstMatrix() const { return m_a.get(); }
    const AttentionMatrix* laterMatrix() const { return m_b.get(); }
    const AttentionMatrix* differenceMatrix() const { return m_diff.get(); }
    LoopLensModel* lensModel() const { return m_lens; }
    GateStatsModel* gateModel() const { return m_gates; }
    QTableView* lensTable() const { return m_lensTable; }
    QTableView* gateTable() const { return m_gateTable; }
    bool isBusy() const;
    QString statusText() const;

signals:
    void rendered();
    void idle();

protected:
    void keyPressEvent(QKeyEvent* event) override;
    void showEvent(QShowEvent* event) override;

private:
    void onTraceChanged();
    void syncControls();
    void readControls();
    void scheduleRender();
    void updateHighlight();
    QString describe(int panel, int row, int col) const;
    QString tokenText(int position) const;
    std::shared_ptr<const HeadStreams> exactFor(int loop) const;
    void maybeFetchExact();
    void onExactFinished(quint64 ticket, std::shared_ptr<const HeadStreams> result);
    void onExactFailed(quint64 ticket, const QString& message);

    QPointer<RunDocument> m_doc;
    QPointer<StepSelection> m_stepSelection;
    RenderQueue* m_queue = nullptr;
    QPointer<ExactAttentionSource> m_exactSource;
    std::vector<std::shared_ptr<const HeadStreams>> m_exact;
    std::vector<quint64> m_tickets;                         // exact requests in flight
    std::vector<std::tuple<int, int, int, qint64>> m_tried; // (layer, head, later loop, positions) requested
    LoopLensModel* m_lens = nullptr;
    GateStatsModel* m_gates = nullptr;
    int m_layer = 0, m_head = 0, m_loopB = 2;
    AttentionSelection::Stream m_streamB = AttentionSelection::Stream::Mixed;
    int64_t m_layers = 0, m_heads = 0, m_loops = 0;
    bool m_syncing = false;
    // A render asked for while the view was hidden (another tab in front): done when it is shown, so that a
    // hidden view builds no images and starts no exact recomputation while tokens stream in.
    bool m_renderDeferred = false;
    std::shared_ptr<const AttentionMatrix> m_a, m_b, m_diff;

    QSpinBox* m_layerBox = nullptr;
    QComboBox* m_headBox = nullptr;
    QComboBox* m_loopBox = nullptr;
    QComboBox* m_streamBox = nullptr;
    QLabel* m_status = nullptr;
    QLabel* m_titles[3] = {};
    HeatmapCanvas* m_canvas[3] = {};
    QTableView* m_lensTable = nullptr;
    QTableView* m_gateTable = nullptr;
};

} // namespace sage
