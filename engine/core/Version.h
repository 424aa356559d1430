#pragma once

namespace sage {

// The engine version recorded in reports and printed by the CLI.
const char* engineVersion();

} // namespace sage
