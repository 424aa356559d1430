#include "engine/cpu/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h> // _mm_pause is SSE2, part of the x86-64 baseline
#endif

namespace sage::cpu {

namespace {

// True while this thread runs a chunk of some parallelFor: a parallelFor issued from there runs serially,
// which keeps nested kernels correct and deadlock-free (the workers are all busy with the outer call).
thread_local bool t_insideParallelFor = false;

// How a thread waits for the next job or for the workers to finish: a busy poll, a few yields, then a
// sleep on a condition variable. A decode step issues hundreds of parallelFor calls back to back separated
// by short serial work; polling lets workers pick up the next call without a futex round trip (~5-20 us
// each way), and an idle pool still goes to sleep after kSpinMicros. When the pool has more threads than
// the machine has cores, the thread being waited for may be runnable but not running, so polling would only
// keep it off the core: such pools poll only briefly (like libgomp's throttled spin).
constexpr int64_t kSpinMicros = 50;
constexpr int64_t kOversubscribedSpinMicros = 2;
constexpr int kYields = 2;

inline void cpuRelax()
{
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#else
    std::this_thread::yield();
#endif
}

// Polls `done` as described above for about `spinMicros`; false when the caller should go to sleep.
template <typename Done> bool pollUntil(const Done& done, int64_t spinMicros)
{
    using Clock = std::chrono::steady_clock;
    const Clock::time_point deadline = Clock::now() + std::chrono::microseconds(spinMicros);
    for (;;) {
        for (int i = 0; i < 16; ++i) { // reading the clock costs ~30 ns, a pause ~10-40 ns
            if (done()) return true;
            cpuRelax();
        }
        if (Clock::now() >= deadline) break;
    }
    for (int i = 0; i < kYields; ++i) {
        std::this_thread::yield();
        if (done()) return true;
    }
    return false;
}

// Chunk c of `chunks` over [0, n) in units of `grain`: units are spread evenly, so chunk sizes differ by
// at most one grain and every chunk but the last is a multiple of grain.
inline void chunkRange(int64_t n, int64_t grain, int64_t chunks, int64_t c, int64_t& begin, int64_t& end)
{
    const int64_t units = (n + grain - 1) / grain;
    const int64_t u0 = units * c / chunks;
    const int64_t u1 = units * (c + 1) / chunks;
    begin = std::min(n, u0 * grain);
    end = std::min(n, u1 * grain);
}

} // namespace

struct ThreadPool::Impl {
    int threads = 1;
    int64_t spinMicros = kSpinMicros;
    std::vector<std::thread> workers; // threads - 1 workers; worker i runs chunk i + 1

    // The job of the current generation. Written by the caller before it bumps `generation` (release) and
    // read by workers after they observe the new generation (acquire).
    const std::function<void(int64_t, int64_t)>* fn = nullptr;
    int64_t n = 0;
    int64_t grain = 1;
    int64_t chunks = 0;

    std::atomic<uint64_t> generation{0};
    // Workers that have not finished the current generation. Every worker acknowledges every generation,
    // even one with no chunk for it, so no worker can still be reading the job fields when the next call
    // overwrites them.
    std::atomic<int> pending{0};
    std::atomic<int> sleepingWorkers{0};
    std::atomic<bool> callerSleeping{false};
    bool stop = false; // guarded by mutex

    std::mutex mutex; // guards the sleep/wake hand-over and `stop`
    std::condition_variable wakeWorkers;
    std::condition_variable wakeCaller;

    std::mutex errorMutex;
    std::exception_ptr error; // the first exception thrown by a chunk of the current call

    // Serialises parallelFor calls that arrive from different threads (the pool runs one job at a time).
    std::mutex callMutex;

    void runChunk(int64_t c)
    {
        int64_t begin, end;
        chunkRange(n, grain, chunks, c, begin, end);
        if (begin >= end) return;
        try {
            (*fn)(begin, end);
        } catch (...) {
            std::lock_guard<std::mutex> lock(errorMutex);
            if (!error) error = std::current_exception();
        }
    }

    void workerLoop(int index)
    {
        t_insideParallelFor = true;
        uint64_t seen = 0;
        for (;;) {
            uint64_t g = seen;
            const bool woken = pollUntil(
                [&] {
                    g = generation.load(std::memory_order_acquire);
                    return g != seen;
                },
                spinMicros);
            if (!woken) {
                std::unique_lock<std::mutex> lock(mutex);
                // seq_cst pairs with the caller's generation store / sleepingWorkers load: either the caller
                // sees this sleeper and notifies under the mutex, or this load sees the new generation.
                sleepingWorkers.fetch_add(1);
                wakeWorkers.wait(lock, [&] { return stop || generation.load() != seen; });
                sleepingWorkers.fetch_sub(1);
                if (stop) return;
                g = generation.load(std::memory_order_acquire);
            }
            seen = g;
            if (index < chunks) runChunk(index);
            if (pending.fetch_sub(1) == 1 && callerSleeping.load()) {
                std::lock_guard<std::mutex> lock(mutex);
                wakeCaller.notify_one();
            }
        }
    }
};

ThreadPool::ThreadPool(int threads) : m_impl(std::make_unique<Impl>())
{
    if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
    m_impl->threads = threads;
    const unsigned cores = std::thread::hardware_concurrency();
    if (cores > 0 && unsigned(threads) > cores) m_impl->spinMicros = kOversubscribedSpinMicros;
    m_impl->workers.reserve(size_t(threads - 1));
    for (int i = 1; i < threads; ++i) m_impl->workers.emplace_back([this, i] { m_impl->workerLoop(i); });
}

ThreadPool::~ThreadPool()
{
    {
        std::lock_guard<std::mutex> lock(m_impl->mutex);
        m_impl->stop = true;
    }
    m_impl->wakeWorkers.notify_all();
    for (std::thread& t : m_impl->workers) t.join();
}

int ThreadPool::threadCount() const
{
    return m_impl->threads;
}

void ThreadPool::parallelFor(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    const int64_t units = (n + grain - 1) / grain;
    const int64_t chunks = std::min<int64_t>(m_impl->threads, units);
    if (chunks <= 1 || t_insideParallelFor) {
        fn(0, n);
        return;
    }

    Impl& d = *m_impl;
    std::lock_guard<std::mutex> callLock(d.callMutex);
    d.fn = &fn;
    d.n = n;
    d.grain = grain;
    d.chunks = chunks;
    d.error = nullptr;
    d.pending.store(d.threads - 1, std::memory_order_relaxed);
    d.generation.fetch_add(1); // seq_cst: publishes the job (see workerLoop)
    if (d.sleepingWorkers.load() > 0) {
        {
            std::lock_guard<std::mutex> lock(d.mutex);
        }
        d.wakeWorkers.notify_all();
    }

    // The caller takes chunk 0, then waits for the workers' chunks.
    t_insideParallelFor = true;
    d.runChunk(0);
    t_insideParallelFor = false;

    if (!pollUntil([&] { return d.pending.load(std::memory_order_acquire) == 0; }, d.spinMicros)) {
        std::unique_lock<std::mutex> lock(d.mutex);
        d.callerSleeping.store(true);
        d.wakeCaller.wait(lock, [&] { return d.pending.load() == 0; });
        d.callerSleeping.store(false);
    }

    if (d.error) {
        std::exception_ptr error = d.error;
        d.error = nullptr;
        std::rethrow_exception(error);
    }
}

} // namespace sage::cpu
