#include "engine/ir/IrSessionStore.h"

#include "engine/capture/SessionFile.h"
#include "engine/core/SageError.h"
#include "engine/ir/ReportJson.h"

namespace sage {

void IrSessionStore::store(SessionMeta& meta, const IrReport& report)
{
    nlohmann::json ext = nlohmann::json::parse(meta.extensionsJson.empty() ? "{}" : meta.extensionsJson);
    if (!ext.is_object()) ext = nlohmann::json::object();
    ext["ir"] = ReportJson::toJson(report);
    meta.extensionsJson = ext.dump();
}

std::optional<IrReport> IrSessionStore::load(const SessionMeta& meta, const std::string& source)
{
    nlohmann::json ext;
    try {
        ext = nlohmann::json::parse(meta.extensionsJson.empty() ? "{}" : meta.extensionsJson);
    } catch (const nlohmann::json::exception& e) {
        throw SageError(source + ": extensions: not valid JSON (" + e.what() + ")");
    }
    if (!ext.is_object() || !ext.contains("ir")) return std::nullopt;
    return ReportJson::fromJson(ext["ir"], source + ": extensions.ir");
}

} // namespace sage
