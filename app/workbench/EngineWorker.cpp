#include "app/workbench/EngineWorker.h"

#include "engine/capture/Autosaver.h"
#include "engine/capture/CaptureGeneration.h"
#include "engine/capture/CapturePolicy.h"
#include "engine/capture/ModelIdentity.h"
#include "engine/capture/SessionFile.h"
#include "engine/capture/Trace.h"
#include "engine/capture/TraceRecorder.h"
#include "engine/core/SageError.h"
#include "engine/cpu/Kernels.h"
#include "engine/cpu/ThreadPool.h"
#include "engine/ir/InverseReasoning.h"
#include "engine/ir/IrSessionStore.h"
#include "engine/model/MemoryCheck.h"
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
    qRegisterMetaType<std::shared_ptr<const sage::IrReport>>();
    qRegisterMetaType<sage::ExplainSettings>();
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

void EngineWorker::beginJob(quint64 job)
{
    // A cancel for this job may have arrived while it waited in the queue (requestCancel stores
    // m_cancelUpTo before m_cancel, so this read cannot miss it).
    m_cancel.store(false);
    if (m_cancelUpTo.load() >= job) m_cancel.store(true);
}

void EngineWorker::generate(quint64 job, const GenerationJob& request)
{
    beginJob(job);

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
        std::string capturePolicyName = request.capturePolicy.toStdString();
        std::unique_ptr<Autosaver> autosaver;
        if (request.capturePolicy != QLatin1String("off") && !request.capturePolicy.isEmpty()) {
            CapturePolicy policy = CapturePolicy::fromName(request.capturePolicy.toStdString(), config);
            try {
                applySelection(policy, request.captureSelection, config);
            } catch (const SageError& e) {
                throw SageError(std::string("capture selection (Preferences > Capture): ") + e.what());
            }
            // As sage-cli capture: the trace must fit into the memory left after the weights, checked before the
            // run rather than found out in the middle of it.
            if (const auto left = memoryLeftAfter(m_model->weightBytes())) policy.setMemoryBudget(left->bytes);
            policy.checkBudget(config, int64_t(req.prompt.size()) + req.maxNewTokens + 1);
            capturePolicyName = policy.name();
            trace = std::make_shared<Trace>();
            recorder = std::make_unique<TraceRecorder>(*m_model, std::move(policy), *trace, m_pool.get());
            emit traceStarted(job, trace);
            if (!request.autosavePath.isEmpty()) {
                // Saved through the atomic path while the run grows, and once more when it ends, so a crash
                // (of the workbench or the machine) loses at most Autosaver's default steps or seconds.
                SessionMeta meta =
                    runMeta(req.prompt, request.useTokenIds ? std::string() : request.promptText.toStdString(),
                            req.sampling, req.maxNewTokens, capturePolicyName);
                autosaver = std::make_unique<Autosaver>(toPath(request.autosavePath), std::move(meta), *trace);
            }
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
        if (autosaver) {
            autosaver->flush(); // the whole run
            if (!autosaver->lastError().empty())
                emit sessionWarning(job, tr("The run could not be autosaved (%1); save it with File > Save Session.")
                                             .arg(QString::fromStdString(autosaver->lastError())));
            autosaver.reset();
        }

        m_last = LastRun{};
        m_last.valid = true;
        m_last.prompt = req.prompt;
        m_last.promptText = request.useTokenIds ? std::string() : request.promptText.toStdString();
        m_last.sampling = req.sampling;
        m_last.maxNewTokens = req.maxNewTokens;
        m_last.steps = result.steps;
        m_last.stopReason = stopReasonName(result.reason);
        m_last.policy = capturePolicyName;
        m_last.trace = trace;

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

void EngineWorker::explain(quint64 job, const ExplainSettings& settings)
{
    beginJob(job);
    try {
        if (!m_model) throw SageError("no model is loaded; open a model folder first (File > Open Model)");
        if (!m_last.valid || m_last.steps.empty())
            throw SageError("nothing to explain: generate at least one token first (Ctrl+Return), then Explain");
        ensurePool();
        IrRequest request;
        request.prompt = m_last.prompt;
        request.promptText = m_last.promptText;
        request.maxNewTokens = int64_t(m_last.steps.size());
        request.sampling = m_last.sampling;
        IrConfig config;
        config.entropyThreshold = settings.entropyThreshold;
        config.marginThreshold = settings.marginThreshold;
        config.maxDecisionPoints = settings.maxDecisionPoints;
        config.branchesPerPoint = settings.branchesPerPoint;
        config.branchLength = settings.branchLength;
        config.faithfulness = settings.faithfulness;
        QElapsedTimer sincePost;
        sincePost.start();
        std::string lastStage;
        const IrProgress progress = [&](const std::string& stage, double fraction) {
            if (stage == lastStage && sincePost.elapsed() < kBatchIntervalMs && fraction < 1.0) return;
            lastStage = stage;
            sincePost.restart();
            emit explainProgress(job, QString::fromStdString(stage), fraction);
        };
        auto report = std::make_shared<IrReport>(analyseGeneration(*m_model, *m_pool, request, m_last.steps,
                                                                   m_last.stopReason, config, progress, &m_cancel));
        emit explainFinished(job, std::move(report));
    } catch (const CancelledError&) {
        emit explainFailed(job, tr("Explain cancelled"));
    } catch (const std::bad_alloc&) {
        emit explainFailed(job, tr("out of memory during the IR sweep; explain a shorter run (fewer tokens)"));
    } catch (const std::exception& e) {
        emit explainFailed(job, QString::fromStdString(e.what()));
    }
}

SessionMeta EngineWorker::runMeta(const std::vector<int32_t>& prompt, const std::string& promptText,
                                  const SamplingParams& sampling, int64_t maxNewTokens, const std::string& policy) const
{
    SessionMeta meta;
    meta.model = ModelIdentity::of(*m_model);
    meta.modelFolder = m_model->folder().string();
    meta.prompt = prompt;
    meta.promptText = promptText;
    meta.sampling = sampling;
    meta.maxNewTokens = maxNewTokens;
    meta.policy = policy;
    return meta;
}

void EngineWorker::saveSession(quint64 job, const QString& path, std::shared_ptr<const IrReport> report)
{
    try {
        if (!m_model) throw SageError("no model is loaded; open a model folder first (File > Open Model)");
        if (!m_last.valid || !m_last.trace)
            throw SageError("the last run has no trace to save: set Preferences > Capture to summary, standard or "
                            "full and generate again");
        SessionMeta meta =
            runMeta(m_last.prompt, m_last.promptText, m_last.sampling, m_last.maxNewTokens, m_last.policy);
        if (report) IrSessionStore::store(meta, *report);
        SessionFile::save(toPath(path), meta, *m_last.trace);
        emit sessionSaved(job, path);
    } catch (const std::exception& e) {
        emit sessionFailed(job, QString::fromStdString(e.what()));
    }
}

void EngineWorker::openSession(quint64 job, const QString& path)
{
    beginJob(job);
    try {
        if (!m_model) throw SageError("no model is loaded; open the session's model first (File > Open Model)");
        auto trace = std::make_shared<Trace>();
        const SessionMeta meta = SessionFile::open(toPath(path), *trace);
        const std::string source = toPath(path).string();
        std::optional<IrReport> ir = IrSessionStore::load(meta, source);
        const ModelConfig& config = m_model->config();
        const ModelIdentity loaded = ModelIdentity::of(*m_model);
        const bool sameModel = loaded.configHash == meta.model.configHash && loaded.weightHash == meta.model.weightHash;
        // Token texts come from the loaded model's tokenizer: only meaningful when it is the session's model.
        const Tokenizer* tokenizer = sameModel ? m_model->tokenizer() : nullptr;
        if (trace->info().vocabSize != 0 && trace->info().vocabSize != config.vocabSize)
            throw SageError(source + ": the session was captured with a vocabulary of " +
                            std::to_string(trace->info().vocabSize) + " tokens, the loaded model has " +
                            std::to_string(config.vocabSize) + "; open the session's model (" + meta.modelFolder +
                            ") first");
        if (!sameModel)
            emit sessionWarning(job, tr("%1 was captured with another model (%2); token texts are shown as ids. "
                                        "Open that model and the session again for texts and Explain.")
                                         .arg(path, QString::fromStdString(meta.modelFolder)));

        // The run: the prompt from the metadata, the generated steps from the trace's sampled steps.
        std::vector<TokenChoice> steps;
        for (const auto& step : trace->snapshot())
            if (step->generated) steps.push_back(step->choice);
        QList<PromptToken> prompt;
        for (int32_t id : meta.prompt) prompt.append(PromptToken{id, tokenText(tokenizer, id)});
        emit generationStarted(job, prompt, int(config.vocabSize));
        emit traceStarted(job, trace);
        QList<GeneratedStep> records;
        for (const TokenChoice& c : steps) records.append(toRecord(c, tokenizer));
        if (!records.isEmpty()) emit stepsAppended(job, 0, records);

        m_last = LastRun{};
        m_last.valid = sameModel;
        m_last.prompt = meta.prompt;
        m_last.promptText = meta.promptText;
        m_last.sampling = meta.sampling;
        m_last.maxNewTokens = meta.maxNewTokens;
        m_last.steps = steps;
        m_last.stopReason = ir ? ir->run.stopReason : "session";
        m_last.policy = meta.policy;
        m_last.trace = trace;

        GenerationStats stats;
        stats.stopReason = QStringLiteral("session");
        std::string text;
        if (tokenizer) {
            std::vector<int32_t> ids;
            for (const TokenChoice& c : steps) ids.push_back(c.token);
            text = tokenizer->decode(ids);
        }
        stats.text = QString::fromStdString(text);
        stats.steps = int(steps.size());
        stats.promptTokens = int(meta.prompt.size());
        emit generationFinished(job, stats);
        if (ir) emit irLoaded(job, std::make_shared<const IrReport>(std::move(*ir)));
    } catch (const std::exception& e) {
        emit sessionFailed(job, QString::fromStdString(e.what()));
    }
}

} // namespace sage
