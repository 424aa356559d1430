#pragma once

#include "engine/ir/IrReport.h"

#include <optional>
#include <string>

namespace sage {

struct SessionMeta;

// IR results in session files (.sagetrace): the report's JSON form under the key "ir" of the metadata's
// `extensions` object (docs/session-format.md). Reading it back gives a report equal to the one stored.
class IrSessionStore
{
public:
    static void store(SessionMeta& meta, const IrReport& report);
    // nullopt when the session holds no IR results; SageError naming `source` when they are malformed.
    static std::optional<IrReport> load(const SessionMeta& meta, const std::string& source);
};

} // namespace sage
