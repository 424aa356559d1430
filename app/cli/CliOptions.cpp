#include "CliOptions.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace sage::cli {

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s)
{
    return std::find(v.begin(), v.end(), s) != v.end();
}

} // namespace

CliOptions::CliOptions(const std::vector<std::string>& args, const std::vector<std::string>& valued,
                       const std::vector<std::string>& flags, const std::vector<std::string>& repeatable)
{
    for (size_t i = 0; i < args.size(); ++i) {
        std::string a = args[i];
        if (a.rfind("--", 0) != 0) throw UsageError{"unexpected argument '" + a + "'; options start with --"};
        std::string name = a.substr(2), val;
        bool hasInline = false;
        if (auto eq = name.find('='); eq != std::string::npos) {
            val = name.substr(eq + 1);
            name = name.substr(0, eq);
            hasInline = true;
        }
        const bool isValued = contains(valued, name) || contains(repeatable, name);
        if (!isValued && !contains(flags, name)) throw UsageError{"unknown option --" + name};
        if (isValued && !hasInline) {
            if (i + 1 >= args.size()) throw UsageError{"option --" + name + " needs a value"};
            val = args[++i];
        }
        if (!isValued && hasInline) throw UsageError{"option --" + name + " takes no value"};
        if (m_values.count(name) && !contains(repeatable, name))
            throw UsageError{"option --" + name + " is given more than once"};
        m_values[name].push_back(val);
    }
}

bool CliOptions::has(const std::string& name) const
{
    return m_values.count(name) > 0;
}

std::optional<std::string> CliOptions::value(const std::string& name) const
{
    auto it = m_values.find(name);
    if (it == m_values.end()) return std::nullopt;
    return it->second.front();
}

std::vector<std::string> CliOptions::values(const std::string& name) const
{
    auto it = m_values.find(name);
    return it == m_values.end() ? std::vector<std::string>{} : it->second;
}

std::string CliOptions::string(const std::string& name, const std::string& def) const
{
    return value(name).value_or(def);
}

long long CliOptions::integer(const std::string& name, long long def, long long min, long long max) const
{
    auto v = value(name);
    if (!v) return def;
    long long x = 0;
    auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc() || ptr != v->data() + v->size())
        throw UsageError{"option --" + name + " needs an integer, got '" + *v + "'"};
    if (x < min || x > max)
        throw UsageError{"option --" + name + " must be between " + std::to_string(min) + " and " +
                         std::to_string(max) + ", got " + *v};
    return x;
}

double CliOptions::number(const std::string& name, double def, double min, double max) const
{
    auto v = value(name);
    if (!v) return def;
    char* end = nullptr;
    const double x = std::strtod(v->c_str(), &end);
    if (v->empty() || end != v->c_str() + v->size() || !std::isfinite(x))
        throw UsageError{"option --" + name + " needs a number, got '" + *v + "'"};
    if (x < min || x > max)
        throw UsageError{"option --" + name + " must be between " + std::to_string(min) + " and " +
                         std::to_string(max) + ", got " + *v};
    return x;
}

std::vector<int> parseIdList(const std::string& text, const std::string& option)
{
    std::vector<int> ids;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        if (comma == std::string::npos) comma = text.size();
        std::string item = text.substr(pos, comma - pos);
        while (!item.empty() && item.front() == ' ') item.erase(item.begin());
        while (!item.empty() && item.back() == ' ') item.pop_back();
        int x = 0;
        auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), x);
        if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || x < 0)
            throw UsageError{"option --" + option + " needs comma-separated non-negative token ids, got '" + item +
                             "'"};
        ids.push_back(x);
        pos = comma + 1;
    }
    return ids;
}

} // namespace sage::cli
