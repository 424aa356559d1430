#include "app/workbench/EngineWorker.h"

#include "engine/capture/CaptureGeneration.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/Trace.h"
#include "engine/capture/TraceRecorder.h"
#include "engine/core/SageError.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/model/Model.h"
#include "engine/runtime/Generator.h"
#include "engine/runtime/InferenceSession.h"
#include "engine/tokenizer/Tokenizer.h"

#include <QElapsedTimer>
#include <QFile>

#include <filesystem>
#include <new>

namespace sage {

namespace {

QString tokenText(const Tokenizer* tokenizer, int32_t id)
{
    // Without a tokenizer the id is all there is to show.
    return tokenizer ? QString::fromStdString(tokenizer->pieceText(id)) : QString::number(id);
}

GeneratedStep toRecord(const TokenChoice& c, const Tokenizer* tokenizer)
{
    GeneratedStep r;
    r.token = c.token;
    r.text = tokenText(tokenizer, c.token);
    r.probability = c.probability;
    r.entropy = c.entropy;
    r.margin = c.margin;
    r.alternatives.reserve(qsizetype(c.alternatives.size()));
    for (const auto& [id, p] : c.alternatives) r.alternatives.append(TokenAlternative{id, p, tokenText(tokenizer, id)});
    return r;
}

std::filesystem::path toPath(const QString& folder)
{
    return std::filesystem::path(QFile::encodeName(folder).toStdString());
}

} // namespace

EngineWorker::EngineWorker(QObject* parent) : QObject(parent)
{
    qRegisterMetaType<sage::ModelSummary>();
    qRegisterMetaType<sage::GenerationJob>();
    qRegisterMetaType<sage::GenerationStats>();
    qRegisterMetaType<sage::PromptToken>();
    qRegisterMetaType<sage::GeneratedStep>();
    qRegisterMetaType<QList<sage::PromptToken>>();
    qRegisterMetaType<QList<sage::GeneratedStep>>();
    qRegisterMetaType<std::shared_ptr<const sage::Trace>>();
}

EngineWorker::~EngineWorker() = default;

void EngineWorker::requestCancel(quint64 job)
{
    // Order matters: a job that starts between these two stores still sees m_cancelUpTo (see generate()).
    quint64 prev = m_cancelUpTo.load();
    while (prev < job && !m_cancelUpTo.compare_exchange_weak(prev, job)) {
    }
    m_cancel.store(true);
}

std::shared_ptr<const Model> EngineWorker::sharedModel() const
{
    std::lock_guard lock(m_modelMutex);
    return m_model;
}

void EngineWorker::setThreads(int threads)
{
    if (threads == m_threads && m_pool) return;
    m_threads = threads;
    m_pool.reset();
}

void EngineWorker::ensurePool()
{
    if (!m_pool) m_pool = std::make_unique<cpu::ThreadPool>(m_threads);
}

void EngineWorker::unloadModel()
{
    std::lock_guard lock(m_modelMutex);
    m_model.reset();
}

ModelSummary EngineWorker::summarize(const Model& model) const
{
    const ModelConfig& c = model.config();
    ModelSummary s;
    s.folder = QFile::decodeName(model.folder().string().c_str());
    s.architecture = QString::fromStdString(c.architectureName());
    s.modelType = QString::fromStdString(c.modelType);
    s.dtype = QString::fromStdString(model.weightDtypeSummary());
    s.parameters = c.parameterCount();
    s.weightBytes = model.weightBytes();
    s.layers = int(c.numHiddenLayers);
    s.hiddenSize = int(c.hiddenSize);
    s.heads = int(c.numAttentionHeads);
    s.kvHeads = int(c.numKeyValueHeads);
    s.headDim = int(c.headDim);
    s.vocabSize = int(c.vocabSize);
    s.loops = int(c.loopNum);
    s.loopWindow = int(c.loopWindowSize);
    s.experts = int(c.numExperts);
    s.expertsPerToken = int(c.numExpertsPerTok);
    s.mchHeads = int(c.mchHeads.size());
    s.maxContext = c.maxPositionEmbeddings;
    // Same accounting as `sage-cli info`: f32 caches on the CPU backend.
    s.kvBytesPerToken = double(c.numHiddenLayers) * 2 * double(c.numKeyValueHeads) * double(c.headDim) * sizeof(float);
    s.loopRingBytes = double(c.loopNum - 1) * double(c.numHiddenLayers) * 2 * double(c.loopWindowSize) *
                      double(c.numKeyValueHeads) * double(c.headDim) * sizeof(float);
    s.hasTokenizer = model.tokenizer() != nullptr;
    s.cpuIsa = QString::fromLatin1(cpu::isaName(cpu::activeIsa()));
    s.threads = m_pool ? m_pool->threadCount() : 0;
    return s;
}

void EngineWorker::loadModel(quint64 job, const QString& folder, int threads)
{
    try {
        emit loadProgress(job, 5, tr("Reading %1").arg(folder));
        std::unique_ptr<Model> model = Model::load(toPath(folder));
        emit loadProgress(job, 85,
                          tr("Starting %1 CPU threads").arg(threads > 0 ? QString::number(threads) : tr("all")));
        setThreads(threads);
        ensurePool();
        {
            std::lock_guard lock(m_modelMutex);
            m_model = std::move(model);
        }
        emit loadProgress(job, 100, tr("Ready"));
        emit modelLoaded(job, summarize(*m_model));
    } catch (const std::bad_alloc&) {
        emit loadFailed(job, folder, tr("%1: out of memory while loading; use a smaller model").arg(folder));
    } catch (const std::exception& e) {
        emit loadFailed(job, folder, QString::fromStdString(e.what()));
    }
}

void EngineWorker::generate(quint64 job, const GenerationJob& request)
{
    // A cancel for this job may have arrived while it waited in the queue (requestCancel stores
    // m_cancelUpTo before m_cancel, so this read cannot miss it).
    m_cancel.store(false);
    if (m_cancelUpTo.load() >= job) m_cancel.store(true);

    try {
        if (!m_model) throw SageError("no model is loaded; open a model folder first (File > Open Model)");
        const Tokenizer* tokenizer = m_model->tokenizer();
        const ModelConfig& config = m_model->config();

        GenerationRequest req;
        if (request.useTokenIds) {
            for (int id : request.promptIds) {
                if (id < 0 || id >= config.vocabSize)
                    throw SageError("prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                                    std::to_string(config.vocabSize) + "); use ids below vocab_size");
                req.prompt.push_back(int32_t(id));
            }
        } else {
            if (!tokenizer)
                throw SageError(m_model->folder().string() +
                                ": has no tokenizer.model, so a text prompt cannot be encoded; enter token ids");
            req.prompt = tokenizer->encode(request.promptText.toStdString());
        }
        if (req.prompt.empty()) throw SageError("the prompt is empty; give a prompt text or token ids");

        const GenerationSettings& s = request.settings;
        req.maxNewTokens = s.maxTokens;
        req.sampling.temperature = s.temperature;
        req.sampling.topK = s.topK;
        req.sampling.topP = s.topP;
        req.sampling.minP = s.minP;
        req.sampling.repetitionPenalty = s.repetitionPenalty;
        req.sampling.seed = s.seed;
        req.eosTokenIds = m_model->eosTokenIds();

        QList<PromptToken> prompt;
        prompt.reserve(qsizetype(req.prompt.size()));
        for (int32_t id : req.prompt) prompt.append(PromptToken{id, tokenText(tokenizer, id)});
        emit generationStarted(job, prompt, int(config.vocabSize));

        ensurePool();
        SessionOptions options;
        options.maxLoops = std::clamp<int64_t>(s.maxLoops, 0, config.loopNum);
        InferenceSession session(*m_model, *m_pool, options);

        // Capture: the trace is handed to the GUI before the first forward call; its listeners (on this thread)
        // only post notifications, so capture never waits for the GUI.
        std::shared_ptr<Trace> trace;
        std::unique_ptr<TraceRecorder> recorder;
        if (request.capturePolicy != QLatin1String("off") && !request.capturePolicy.isEmpty()) {
            CapturePolicy policy = CapturePolicy::fromName(request.capturePolicy.toStdString(), config);
            trace = std::make_shared<Trace>();
            recorder = std::make_unique<TraceRecorder>(*m_model, std::move(policy), *trace);
            emit traceStarted(job, trace);
        }

        QList<GeneratedStep> pending;
        int posted = 0;   // steps already sent
        int recorded = 0; // steps recorded (posted + pending)
        QElapsedTimer sinceFlush;
        sinceFlush.start();
        auto flush = [&] {
            if (pending.isEmpty()) return;
            emit stepsAppended(job, posted, pending);
            posted += int(pending.size());
            pending.clear();
            sinceFlush.restart();
        };
        const StepCallback onStep = [&](int64_t step, const TokenChoice& choice, const std::string&) {
            if (step < recorded) return; // the final call repeats the last step to pass held-back text
            pending.append(toRecord(choice, tokenizer));
            ++recorded;
            if (sinceFlush.elapsed() >= kBatchIntervalMs) flush();
        };
        const GenerationResult result = recorder
                                            ? captureGenerate(session, tokenizer, req, *recorder, onStep, &m_cancel)
                                            : sage::generate(session, tokenizer, req, onStep, &m_cancel);
        flush();

        GenerationStats stats;
        stats.stopReason = QString::fromLatin1(stopReasonName(result.reason));
        stats.text = QString::fromStdString(result.text);
        stats.steps = int(result.steps.size());
        stats.promptTokens = int(result.promptTokens);
        stats.prefillSeconds = result.prefillSeconds;
        stats.decodeSeconds = result.decodeSeconds;
        emit generationFinished(job, stats);
    } catch (const std::bad_alloc&) {
        emit generationFailed(job,
                              tr("out of memory during generation; lower the maximum tokens or use a smaller model"));
    } catch (const std::exception& e) {
        emit generationFailed(job, QString::fromStdString(e.what()));
    }
}

} // namespace sage
