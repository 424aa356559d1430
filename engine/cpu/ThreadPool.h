#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace sage::cpu {

// A fixed pool of worker threads for data-parallel kernels. The calling thread takes part in every
// parallelFor, so a pool of N threads starts N-1 workers. A parallelFor issued from inside a running
// parallelFor (nested) runs serially on the calling thread.
class ThreadPool
{
public:
    // threads <= 0 means std::thread::hardware_concurrency().
    explicit ThreadPool(int threads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int threadCount() const;

    // Splits [0, n) into at most threadCount() contiguous chunks whose sizes are multiples of grain
    // (except the last) and calls fn(begin, end) for each; returns when all chunks are done.
    // An exception thrown by fn is rethrown on the calling thread after all chunks finish.
    void parallelFor(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn, int64_t grain = 1);

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

} // namespace sage::cpu
