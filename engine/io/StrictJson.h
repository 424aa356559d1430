#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sage
{

// JSON parsing for files whose content decides what memory the engine reads (safetensors headers, shard
// indexes): parse errors, repeated keys in one object (nlohmann would silently keep the last) and nesting
// deeper than maxDepth become SageErrors "<file>: <what>; <fix>" instead of nlohmann exceptions.
// `what` names the document ("header", "index") in messages.
nlohmann::json parseStrictJson(std::string_view text, const std::string& file, const std::string& what,
                               const std::string& fix, int maxDepth);

// "string \"abc\"", "number -3", "array [1,2]" (long values are cut), for "expected X, found Y" messages.
std::string describeJson(const nlohmann::json& value);

// The value as an unsigned integer, or nullopt for negative numbers, floats (even 2.0) and non-numbers.
std::optional<uint64_t> jsonToUnsigned(const nlohmann::json& value);

} // namespace sage
