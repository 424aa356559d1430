// Fuzzes the IR report JSON reader (ReportJson::read): a report or a SageError, never a crash; a report that
// reads must write and read back equal.
#include "FuzzSupport.h"

#include "engine/core/SageError.h"
#include "engine/ir/ReportJson.h"

#include <cstdlib>

using namespace sage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const IrReport report = ReportJson::read(text, "fuzz.json");
        const IrReport again = ReportJson::read(ReportJson::write(report), "fuzz-rewritten.json");
        if (!(again == report)) std::abort(); // the writer and reader disagree: a finding
        fuzz::consume(report.decisionPoints.size() + report.tokens.size());
    } catch (const SageError&) {
    }
    return 0;
}
