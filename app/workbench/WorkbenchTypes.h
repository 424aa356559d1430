#pragma once

#include "engine/capture/CapturePolicy.h"

#include <QList>
#include <QMetaType>
#include <QString>

#include <cstdint>

namespace sage {

// What the model summary panel shows; computed on the worker thread from the loaded Model.
struct ModelSummary {
    QString folder;
    QString architecture;
    QString modelType;
    QString dtype; // stored dtype of most weight bytes
    qint64 parameters = 0;
    quint64 weightBytes = 0; // memory-mapped weights
    int layers = 0;
    int hiddenSize = 0;
    int heads = 0;
    int kvHeads = 0;
    int headDim = 0;
    int vocabSize = 0;
    int loops = 1;
    int loopWindow = 0;
    int experts = 0; // 0 = dense feed-forward
    int expertsPerToken = 0;
    int mchHeads = 0;
    qint64 maxContext = 0;
    double kvBytesPerToken = 0; // CPU KV cache of loop 1, all layers
    double loopRingBytes = 0;   // loop >= 2 window rings, all layers
    bool hasTokenizer = false;
    QString cpuIsa;
    int threads = 0;
};

// The sampling controls of the window; mirrors sage::SamplingParams plus the request's limits.
struct GenerationSettings {
    int maxTokens = 64;
    double temperature = 0.0; // 0 = greedy
    int topK = 0;
    double topP = 1.0;
    double minP = 0.0;
    double repetitionPenalty = 1.0;
    quint64 seed = 0;
    int maxLoops = 0; // 0 = all loops
};

// One Generate press: either prompt text (needs a tokenizer) or token ids.
struct GenerationJob {
    bool useTokenIds = false;
    QString promptText;
    QList<int> promptIds;
    GenerationSettings settings;
    // Capture policy of the run's trace: "off", "summary", "standard" or "full" (CapturePolicy presets), narrowed
    // by the selection (checked against the model when the run starts).
    QString capturePolicy = QStringLiteral("off");
    CaptureSelection captureSelection;
    // Where a captured run is autosaved while it runs (a session file; empty: not autosaved).
    QString autosavePath;
};

// The Inverse Reasoning settings of an Explain run (mirrors the main fields of sage::IrConfig; docs/ir.md).
struct ExplainSettings {
    double entropyThreshold = 1.0;
    double marginThreshold = 0.2;
    int maxDecisionPoints = 8;
    int branchesPerPoint = 2;
    int branchLength = 12;
    bool faithfulness = true;
};

// The end of one generation, as the status bar reports it.
struct GenerationStats {
    QString stopReason; // sage::stopReasonName
    QString text;       // generated text (empty without a tokenizer)
    int steps = 0;
    int promptTokens = 0;
    double prefillSeconds = 0;
    double decodeSeconds = 0;

    double prefillTokensPerSecond() const { return prefillSeconds > 0 ? promptTokens / prefillSeconds : 0.0; }
    double decodeTokensPerSecond() const { return decodeSeconds > 0 && steps > 1 ? (steps - 1) / decodeSeconds : 0.0; }
};

} // namespace sage

Q_DECLARE_METATYPE(sage::ModelSummary)
Q_DECLARE_METATYPE(sage::GenerationSettings)
Q_DECLARE_METATYPE(sage::GenerationJob)
Q_DECLARE_METATYPE(sage::GenerationStats)
Q_DECLARE_METATYPE(sage::ExplainSettings)
