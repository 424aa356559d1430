#include "engine/io/StrictJson.h"

#include "engine/core/SageError.h"

#include <set>
#include <vector>

namespace sage
{

nlohmann::json parseStrictJson(std::string_view text, const std::string& file, const std::string& what,
                               const std::string& fix, int maxDepth)
{
    using json = nlohmann::json;
    // One key set per open object, innermost last.
    std::vector<std::set<std::string>> openObjects;
    auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
        switch (event) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start:
            if (depth >= maxDepth)
                throw SageError(file + ": " + what + " nests JSON values deeper than " +
                                std::to_string(maxDepth) + " levels, which no valid " + what + " does; " +
                                fix);
            if (event == json::parse_event_t::object_start) openObjects.emplace_back();
            break;
        case json::parse_event_t::object_end:
            if (!openObjects.empty()) openObjects.pop_back();
            break;
        case json::parse_event_t::key:
            if (!openObjects.empty() && !openObjects.back().insert(parsed.get<std::string>()).second) {
                const std::string key = parsed.get<std::string>();
                throw SageError(file + ": " + what + " contains the key \"" + key +
                                "\" twice in the same object; " + fix);
            }
            break;
        default:
            break;
        }
        return true;
    };
    // nlohmann stops at a NUL byte as if the input ended there, so "{}\0anything" would pass; JSON has no
    // place for NUL outside strings (where it must be escaped), so any NUL byte is an error.
    if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
        throw SageError(file + ": " + what + " is not valid JSON (a NUL byte at byte " + std::to_string(nul) +
                        " of the " + what + "); " + fix);
    try {
        return json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
    } catch (const json::exception& e) {
        // Drop nlohmann's "[json.exception.parse_error.101] " prefix; keep the position and the reason.
        std::string reason = e.what();
        if (const size_t cut = reason.find("] ");
            reason.rfind("[json.exception", 0) == 0 && cut != std::string::npos)
            reason = reason.substr(cut + 2);
        throw SageError(file + ": " + what + " is not valid JSON (" + reason + "); " + fix);
    }
}

std::string describeJson(const nlohmann::json& value)
{
    std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    const char* type = value.type_name();
    if (value.is_number_float()) type = "non-integer number";
    return std::string(type) + " " + text;
}

std::optional<uint64_t> jsonToUnsigned(const nlohmann::json& value)
{
    if (value.is_number_unsigned()) return value.get<uint64_t>();
    if (value.is_number_integer() && value.get<int64_t>() >= 0) return uint64_t(value.get<int64_t>());
    return std::nullopt;
}

} // namespace sage
