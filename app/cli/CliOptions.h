#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sage::cli {

// "--name value" / "--name=value" / "--flag" options after a subcommand. Unknown or repeated options and
// malformed numbers are reported with the option's name (a UsageError), never ignored.
class CliOptions
{
public:
    // `valued`: options that take a value; `flags`: options that do not; `repeatable`: valued options that may repeat.
    CliOptions(const std::vector<std::string>& args, const std::vector<std::string>& valued,
               const std::vector<std::string>& flags, const std::vector<std::string>& repeatable = {});

    bool has(const std::string& name) const;
    std::optional<std::string> value(const std::string& name) const;
    std::vector<std::string> values(const std::string& name) const;
    std::string string(const std::string& name, const std::string& def) const;
    long long integer(const std::string& name, long long def, long long min, long long max) const;
    double number(const std::string& name, double def, double min, double max) const;

private:
    std::map<std::string, std::vector<std::string>> m_values;
};

struct UsageError {
    std::string message;
};

// "1,2,3" -> ids; throws UsageError naming the option on anything else.
std::vector<int> parseIdList(const std::string& text, const std::string& option);

} // namespace sage::cli
