#pragma once

#include "viz/AttentionMatrix.h"

#include <QImage>
#include <QPointer>
#include <QWidget>

#include <list>
#include <memory>
#include <vector>

class QComboBox;
class QKeyEvent;
class QLabel;
class QProgressBar;
class QSpinBox;
class QToolButton;

namespace sage {

class ExactAttentionSource;
class HeatmapCanvas;
class RenderQueue;
class RunDocument;
class StepSelection;
struct HeadStreams;

// The attention heatmap of one (loop, layer, head or head mean, stream) of the run's trace: rows are query
// positions, columns key positions. Images are built off the GUI thread (RenderQueue) and cached; while a run
// streams in, the map grows with the trace. When the capture kept only the top-k entries of a row the view
// shows what was kept and says the map is partial; the exact map is recomputed on demand through the
// ExactAttentionSource (button or E), and automatically for short finished sequences. Clicking a row selects
// that position (StepSelection); the selected position's row is outlined.
class AttentionHeatmapView : public QWidget
{
    Q_OBJECT

public:
    enum class ScaleMode { Unit = 0, Max = 1, Sqrt = 2 }; // 0..1, 0..max of the map, sqrt(p) over 0..1
    // Partial maps of sequences up to this length are made exact automatically once the run has finished.
    static constexpr int kAutoExactTokens = 512;

    explicit AttentionHeatmapView(QWidget* parent = nullptr);
    ~AttentionHeatmapView() override;

    void setDocument(RunDocument* document);
    void setSelection(StepSelection* selection);
    void setExactSource(ExactAttentionSource* source);

    AttentionSelection attentionSelection() const { return m_sel; }
    void setAttentionSelection(const AttentionSelection& sel);
    void setScaleMode(ScaleMode mode);
    ScaleMode scaleMode() const { return m_scaleMode; }

    HeatmapCanvas* canvas() const { return m_canvas; }
    // The map on screen (null before the first image).
    const AttentionMatrix* matrix() const { return m_matrix.get(); }
    bool isShowingPartial() const { return m_matrix && m_matrix->isPartial(); }
    bool isShowingExact() const { return m_matrix && m_matrix->exactRows > 0; }
    // True while an image is being built or an exact map is being computed.
    bool isBusy() const;
    QString statusText() const;
    // What hovering cell (row, col) of the current map shows: query token, key token and value.
    QString cellDescription(int row, int col) const;
    static QString keyHelp();

public slots:
    void fetchExact();
    void cancelExact();
    void nextLayer(int delta = 1);
    void nextHead(int delta = 1);
    void nextLoop(int delta = 1);

signals:
    void attentionSelectionChanged(const sage::AttentionSelection& sel);
    // A new image is on screen.
    void rendered();
    // No image build and no exact fetch is pending.
    void idle();

protected:
    void keyPressEvent(QKeyEvent* event) override;
    void showEvent(QShowEvent* event) override;

private:
    struct CacheEntry {
        AttentionSelection sel;
        ScaleMode scale;
        qint64 steps;
        const HeadStreams* exact;
        std::shared_ptr<const AttentionMatrix> matrix;
        QImage image;
    };

    void onTraceChanged();
    void onTraceAppended();
    void syncControls();
    void readControls();
    void scheduleRender();
    void display(std::shared_ptr<const AttentionMatrix> matrix, const QImage& image);
    void updateStatus();
    void updateHighlight();
    void maybeAutoFetch();
    std::shared_ptr<const HeadStreams> exactFor(const AttentionSelection& sel) const;
    QString tokenText(int position) const;
    void onExactFinished(quint64 ticket, std::shared_ptr<const HeadStreams> result);
    void onExactFailed(quint64 ticket, const QString& message);
    void onExactProgress(quint64 ticket, int percent);
    void checkIdle();

    QPointer<RunDocument> m_doc;
    QPointer<StepSelection> m_stepSelection;
    QPointer<ExactAttentionSource> m_exactSource;
    RenderQueue* m_queue = nullptr;
    AttentionSelection m_sel;
    ScaleMode m_scaleMode = ScaleMode::Sqrt;
    int64_t m_heads = 0, m_layers = 0, m_loops = 0;
    bool m_syncing = false;
    // A map asked for while the view was hidden (another tab in front): built when it is shown, so that a
    // hidden view builds no images and fetches no exact maps while tokens stream in.
    bool m_renderDeferred = false;

    std::shared_ptr<const AttentionMatrix> m_matrix;
    std::list<CacheEntry> m_cache; // most recent first
    std::vector<std::shared_ptr<const HeadStreams>> m_exact;
    quint64 m_exactTicket = 0;
    AttentionSelection m_exactFor;
    QString m_exactError;
    std::vector<std::pair<AttentionSelection, qint64>> m_autoTried; // (selection, tokens) already auto-fetched

    QComboBox* m_loopBox = nullptr;
    QSpinBox* m_layerBox = nullptr;
    QComboBox* m_headBox = nullptr;
    QComboBox* m_streamBox = nullptr;
    QComboBox* m_scaleBox = nullptr;
    QToolButton* m_exactButton = nullptr;
    QToolButton* m_cancelButton = nullptr;
    QProgressBar* m_progress = nullptr;
    QLabel* m_status = nullptr;
    QLabel* m_legend = nullptr;
    HeatmapCanvas* m_canvas = nullptr;
};

} // namespace sage

Q_DECLARE_METATYPE(sage::AttentionSelection)
