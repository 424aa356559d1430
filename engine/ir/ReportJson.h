#pragma once

#include "engine/ir/IrReport.h"

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace sage {

// The versioned JSON form of an IrReport (schema: docs/ir-report-schema.md). write() then read() gives back an
// equal report (floats are written as the shortest text that reads back to the same value). The reader
// validates everything and throws SageError naming the source, the JSON path, the expected and the found
// value; it never crashes on bad input.
class ReportJson
{
public:
    static constexpr const char* kFormat = "sage-ir-report";

    static nlohmann::json toJson(const IrReport& report);
    static std::string write(const IrReport& report, int indent = 1);
    static void save(const IrReport& report, const std::filesystem::path& path);

    static IrReport fromJson(const nlohmann::json& json, const std::string& source);
    static IrReport read(const std::string& text, const std::string& source);
    static IrReport load(const std::filesystem::path& path);
};

} // namespace sage
