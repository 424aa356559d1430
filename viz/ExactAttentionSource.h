#pragma once

#include "engine/capture/StreamRecompute.h"

#include <QMetaType>
#include <QObject>
#include <QString>

#include <memory>
#include <vector>

namespace sage {

// Where the attention views get exact maps the live capture did not keep: the application implements it with
// a teacher-forced pass on a worker (viz never runs the model). Requests and signals live on the GUI thread.
class ExactAttentionSource : public QObject
{
    Q_OBJECT

public:
    using QObject::QObject;

    // Starts recomputing both streams and the gate of `heads` (empty: all heads) at (loop, layer) over `tokens`.
    // Returns a ticket that the signals carry; 0 when nothing can be computed (no model).
    virtual quint64 request(const std::vector<int32_t>& tokens, int loop, int layer,
                            const std::vector<int32_t>& heads) = 0;
    virtual void cancel(quint64 ticket) = 0;

signals:
    void progress(quint64 ticket, int percent);
    void finished(quint64 ticket, std::shared_ptr<const sage::HeadStreams> result);
    void failed(quint64 ticket, const QString& message); // "cancelled" when cancelled
};

} // namespace sage

Q_DECLARE_METATYPE(std::shared_ptr<const sage::HeadStreams>)
