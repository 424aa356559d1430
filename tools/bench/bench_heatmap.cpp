// sage-bench-heatmap: the workbench's drawing costs. Run with QT_QPA_PLATFORM=offscreen.
//   A. Recolour a 4096 x 4096 attention map into an image (one pixel per cell, the heatmap colour map) and draw
//      it fitted into a 1200 x 1000 heatmap canvas; peer: QImage::fill of a 4096 x 4096 RGB32 image, measured in
//      the same run. Median of --reps.
//   B. GUI-thread stall while generating: the main window generates --tokens tokens with capture on the bundled
//      model (or --model DIR) with the Attention dock visible; a QTimer on the GUI thread fires every 5 ms and the
//      largest lateness (time between ticks minus 5 ms) is reported, with the 99th percentile.
// Usage: sage-bench-heatmap [--size N] [--reps N] [--threads N] [--tokens N] [--policy standard] [--model DIR]
//                           [--skip-draw] [--skip-stall]
#include "app/workbench/MainWindow.h"
#include "app/workbench/SamplingPanel.h"
#include "app/workbench/WorkbenchSettings.h"
#include "viz/AttentionHeatmapView.h"
#include "viz/HeatmapCanvas.h"
#include "viz/HeatmapColors.h"
#include "viz/RunDocument.h"

#include <QApplication>
#include <QElapsedTimer>
#include <QPainter>
#include <QSpinBox>
#include <QTemporaryDir>
#include <QTimer>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

using namespace sage;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d)
{
    return std::chrono::duration<double, std::milli>(d).count();
}

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0.0 : v[v.size() / 2];
}

void benchDraw(int n, int reps, int threads)
{
    // values [n, n]: causal rows of a random attention map (row i spreads over keys 0..i).
    std::vector<float> values(size_t(n) * size_t(n), 0.0f);
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (int i = 0; i < n; ++i) {
        float* row = values.data() + size_t(i) * size_t(n);
        float sum = 0;
        for (int j = 0; j <= i; ++j) sum += row[j] = u(rng) * u(rng) * u(rng);
        for (int j = 0; j <= i; ++j) row[j] /= sum;
    }
    HeatmapCanvas canvas;
    canvas.resize(1200, 1000);
    QImage target(canvas.size(), QImage::Format_RGB32);
    HeatmapColors::Scale scale;
    scale.gamma = 0.5f; // the view's default (sqrt p) takes the table path with the gamma lookup

    // Cold: a new image per map (allocation and first-touch page faults included), as a map of a new size.
    // Warm: the image buffer is reused, as when a map is recoloured (scale change) or redrawn at the same size.
    std::vector<double> coldFill, coldColor, fill, color1, colorN, draw;
    QImage plain(n, n, QImage::Format_RGB32), img, imgN;
    HeatmapColors::colorizeInto(values.data(), n, n, scale, img, 1);
    HeatmapColors::colorizeInto(values.data(), n, n, scale, imgN, threads);
    for (int r = 0; r < reps; ++r) {
        auto c0 = Clock::now();
        QImage freshFill(n, n, QImage::Format_RGB32);
        freshFill.fill(QColor(68, 1, 84));
        auto c1 = Clock::now();
        QImage freshColor = HeatmapColors::colorize(values.data(), n, n, scale, threads);
        auto c2 = Clock::now();
        coldFill.push_back(ms(c1 - c0));
        coldColor.push_back(ms(c2 - c1));

        auto t0 = Clock::now();
        plain.fill(QColor(68, 1, 84 + r % 2));
        auto t1 = Clock::now();
        HeatmapColors::colorizeInto(values.data(), n, n, scale, img, 1);
        auto t2 = Clock::now();
        HeatmapColors::colorizeInto(values.data(), n, n, scale, imgN, threads);
        auto t3 = Clock::now();
        canvas.setImage(imgN);
        canvas.render(&target);
        auto t4 = Clock::now();
        canvas.setImage({}); // drop the canvas' reference so the next recolour reuses imgN's buffer
        fill.push_back(ms(t1 - t0));
        color1.push_back(ms(t2 - t1));
        colorN.push_back(ms(t3 - t2));
        draw.push_back(ms(t4 - t3));
        if (freshColor.pixel(0, 0) != imgN.pixel(0, 0) || freshFill.isNull()) std::printf("mismatch\n");
    }
    const double f = median(fill), c1 = median(color1), cn = median(colorN), d = median(draw);
    const double cf = median(coldFill), cc = median(coldColor);
    std::printf("A. %d x %d map, median of %d\n", n, n, reps);
    std::printf("   QImage fill (peer)                    %8.2f ms\n", f);
    std::printf("   recolour, 1 thread                    %8.2f ms   %.2fx the fill\n", c1, c1 / f);
    std::printf("   recolour, %d threads                   %8.2f ms   %.2fx the fill\n", threads, cn, cn / f);
    std::printf("   draw fitted into 1200 x 1000          %8.2f ms\n", d);
    std::printf("   recolour (%d threads) + draw           %8.2f ms   %.2fx the fill   goal <= 16 ms\n", threads,
                cn + d, (cn + d) / f);
    std::printf("   recolour (1 thread) + draw            %8.2f ms   %.2fx the fill\n", c1 + d, (c1 + d) / f);
    std::printf("   cold: new image + fill (peer)         %8.2f ms\n", cf);
    std::printf("   cold: new image + recolour (%d thr.)   %8.2f ms   %.2fx the cold fill\n", threads, cc, cc / cf);
}

int benchStall(const QString& model, int tokens, const QString& policy)
{
    QTemporaryDir tmp;
    WorkbenchSettings settings(tmp.filePath("bench.ini"));
    settings.setReopenLastModel(false);
    settings.setCapturePolicy(policy);
    MainWindow w(&settings);
    w.setPersistState(false);
    w.show();
    w.openModel(model.isEmpty() ? MainWindow::bundledModelFolder() : model);
    QElapsedTimer wait;
    wait.start();
    while (w.state() != MainWindow::State::Ready && wait.elapsed() < 60000) QApplication::processEvents();
    if (w.state() != MainWindow::State::Ready) {
        std::fprintf(stderr, "sage-bench-heatmap: the model did not load: %s\n", qPrintable(w.lastError()));
        return 1;
    }
    w.showView("heatmap");
    w.setPromptText("def fibonacci(n):\n    ");
    w.samplingPanel()->maxTokensBox()->setValue(tokens);

    constexpr int kTickMs = 5;
    std::vector<double> lateness;
    QElapsedTimer since;
    QTimer probe;
    probe.setTimerType(Qt::PreciseTimer);
    probe.setInterval(kTickMs);
    QObject::connect(&probe, &QTimer::timeout, [&] {
        if (since.isValid()) lateness.push_back(std::max(0.0, since.nsecsElapsed() / 1e6 - kTickMs));
        since.restart();
    });
    bool finished = false;
    QObject::connect(&w, &MainWindow::generationFinished, [&] { finished = true; });
    QObject::connect(&w, &MainWindow::generationFailed, [&](const QString& m) {
        std::fprintf(stderr, "sage-bench-heatmap: generation failed: %s\n", qPrintable(m));
        finished = true;
    });
    const auto t0 = Clock::now();
    probe.start();
    w.startGeneration();
    while (!finished) QApplication::processEvents(QEventLoop::WaitForMoreEvents);
    const auto t1 = Clock::now();
    // Keep probing while the views finish their images and any exact map.
    while (w.isViewBusy("heatmap")) QApplication::processEvents(QEventLoop::WaitForMoreEvents, 50);
    probe.stop();
    const auto t2 = Clock::now();
    std::vector<double> sorted = lateness;
    std::sort(sorted.begin(), sorted.end());
    const double worst = sorted.empty() ? 0 : sorted.back();
    const double p99 = sorted.empty() ? 0 : sorted[std::min(sorted.size() - 1, size_t(double(sorted.size()) * 0.99))];
    std::printf("B. GUI stall while generating %d tokens (capture %s, Attention dock visible)\n",
                w.document()->stepCount(), qPrintable(policy));
    std::printf("   generation %.0f ms (%.1f tok/s), views settled %.0f ms later; %zu probe ticks of %d ms\n",
                ms(t1 - t0), w.tokensPerSecond(), ms(t2 - t1), lateness.size(), kTickMs);
    std::printf("   max lateness %.2f ms, p99 %.2f ms   goal: never > 50 ms\n", worst, p99);
    std::printf("   %s\n", qPrintable(w.traceStatusText()));
    return 0;
}

} // namespace

int main(int argc, char** argv)
{
    QApplication app(argc, argv);
    int size = 4096, reps = 7, tokens = 256;
    int threads = int(std::max(1u, std::thread::hardware_concurrency()));
    QString model, policy = QStringLiteral("standard");
    bool draw = true, stall = true;
    const QStringList args = QApplication::arguments();
    for (int i = 1; i < args.size(); ++i) {
        const QString& a = args[i];
        auto next = [&] { return i + 1 < args.size() ? args[++i] : QString(); };
        if (a == "--size")
            size = next().toInt();
        else if (a == "--reps")
            reps = next().toInt();
        else if (a == "--threads")
            threads = next().toInt();
        else if (a == "--tokens")
            tokens = next().toInt();
        else if (a == "--model")
            model = next();
        else if (a == "--policy")
            policy = next();
        else if (a == "--skip-draw")
            draw = false;
        else if (a == "--skip-stall")
            stall = false;
        else {
            std::fprintf(stderr, "sage-bench-heatmap: unknown argument '%s'\n", qPrintable(a));
            return 2;
        }
    }
    if (size <= 0 || reps <= 0 || threads <= 0 || tokens <= 0) {
        std::fprintf(stderr, "sage-bench-heatmap: --size, --reps, --threads and --tokens must be positive\n");
        return 2;
    }
    if (draw) benchDraw(size, reps, threads);
    if (stall) return benchStall(model, tokens, policy);
    return 0;
}
