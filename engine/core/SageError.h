#pragma once

#include <stdexcept>
#include <string>

namespace sage {

// Every error that reaches a user boundary (CLI, workbench) is a SageError whose message names the file,
// the field and, where possible, the fix. Callers catch it and show what() as-is.
class SageError : public std::runtime_error
{
public:
    explicit SageError(const std::string& message) : std::runtime_error(message) {}
};

// Raised when a long-running operation observes its cancellation flag.
class CancelledError : public SageError
{
public:
    CancelledError() : SageError("cancelled") {}
};

} // namespace sage
