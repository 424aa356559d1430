#include "engine/tokenizer/TokenizerConfig.h"

#include "engine/core/SageError.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace sage {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string describe(const json& value)
{
    std::string text = value.dump();
    if (text.size() > 60) text = text.substr(0, 57) + "...";
    return text + " (" + value.type_name() + ")";
}

[[noreturn]] void wrongType(const fs::path& file, const std::string& key, const std::string& expected,
                            const json& found)
{
    throw SageError(file.string() + ": field '" + key + "' must be " + expected + ", found " + describe(found) +
                    ". Fix the value or remove the key to use the default.");
}

// Returns nullopt when the file does not exist.
std::optional<json> readJson(const fs::path& file)
{
    std::error_code ec;
    if (!fs::exists(file, ec)) return std::nullopt;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw SageError(file.string() + ": cannot be opened for reading. Check the file's permissions.");
    std::ostringstream text;
    text << in.rdbuf();
    json doc;
    // Real files nest at most 4 levels (added_tokens_decoder); a bound keeps the messages below, which print
    // values recursively, from exhausting the stack on a hostile file.
    constexpr int kMaxDepth = 32;
    const auto limitDepth = [&](int depth, json::parse_event_t event, json&) {
        if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
            depth >= kMaxDepth)
            throw SageError(file.string() + ": invalid JSON (values nested deeper than " + std::to_string(kMaxDepth) +
                            " levels). Repair the file or delete it to use the defaults.");
        return true;
    };
    try {
        doc = json::parse(text.str(), limitDepth);
    } catch (const json::exception& e) {
        // parse_error, but also out_of_range for a number beyond double ("1e400").
        throw SageError(file.string() + ": invalid JSON (" + e.what() +
                        "). Repair the file or delete it to use the defaults.");
    }
    if (!doc.is_object())
        throw SageError(file.string() + ": the top level must be a JSON object, found " + describe(doc) +
                        ". Repair the file or delete it to use the defaults.");
    return doc;
}

std::optional<bool> optionalBool(const json& doc, const std::string& key, const fs::path& file)
{
    const auto it = doc.find(key);
    if (it == doc.end() || it->is_null()) return std::nullopt;
    if (!it->is_boolean()) wrongType(file, key, "true or false", *it);
    return it->get<bool>();
}

// A token name is a string or an AddedToken object {"content": "...", ...}.
std::optional<std::string> tokenContent(const json& value, const std::string& key, const fs::path& file)
{
    if (value.is_null()) return std::nullopt;
    if (value.is_string()) return value.get<std::string>();
    if (value.is_object()) {
        const auto content = value.find("content");
        if (content != value.end() && content->is_string()) return content->get<std::string>();
        wrongType(file, key + ".content", "a string", content == value.end() ? json() : *content);
    }
    wrongType(file, key, "a string or an object with a \"content\" string", value);
}

void readTokenNames(const json& doc, const fs::path& file, TokenizerConfig& config)
{
    const std::pair<const char*, std::optional<std::string>*> names[] = {
        {"bos_token", &config.bosToken},
        {"eos_token", &config.eosToken},
        {"unk_token", &config.unkToken},
        {"pad_token", &config.padToken},
    };
    for (const auto& [key, target] : names) {
        const auto it = doc.find(key);
        if (it != doc.end()) *target = tokenContent(*it, key, file);
    }
    const auto extra = doc.find("additional_special_tokens");
    if (extra != doc.end() && !extra->is_null()) {
        if (!extra->is_array())
            wrongType(file, "additional_special_tokens", "a list of strings or {\"content\": ...} objects", *extra);
        for (size_t i = 0; i < extra->size(); ++i) {
            const std::string key = "additional_special_tokens[" + std::to_string(i) + "]";
            const auto content = tokenContent((*extra)[i], key, file);
            if (!content) wrongType(file, key, "a string or an object with a \"content\" string", (*extra)[i]);
            if (std::find(config.additionalSpecialTokens.begin(), config.additionalSpecialTokens.end(), *content) ==
                config.additionalSpecialTokens.end())
                config.additionalSpecialTokens.push_back(*content);
        }
    }
}

int32_t parseTokenId(const std::string& text, const std::string& key, const fs::path& file)
{
    const bool digits = !text.empty() && text.size() <= 10 &&
                        std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    const long long value = digits ? std::stoll(text) : -1;
    if (!digits || value > std::numeric_limits<int32_t>::max())
        throw SageError(file.string() + ": field '" + key + "' has the key \"" + text +
                        "\", expected a token id (a non-negative integer below 2^31). Fix the key.");
    return static_cast<int32_t>(value);
}

void readAddedTokensDecoder(const json& doc, const fs::path& file, std::map<int32_t, TokenizerConfig::AddedToken>& out)
{
    const auto decoder = doc.find("added_tokens_decoder");
    if (decoder == doc.end() || decoder->is_null()) return;
    if (!decoder->is_object())
        wrongType(file, "added_tokens_decoder", "an object mapping token ids to {\"content\": ...}", *decoder);
    for (const auto& [key, entry] : decoder->items()) {
        const std::string field = "added_tokens_decoder." + key;
        const int32_t id = parseTokenId(key, "added_tokens_decoder", file);
        if (!entry.is_object()) wrongType(file, field, "an object with a \"content\" string", entry);
        const auto content = entry.find("content");
        if (content == entry.end() || !content->is_string())
            wrongType(file, field + ".content", "a string", content == entry.end() ? json() : *content);
        TokenizerConfig::AddedToken token{id, content->get<std::string>(), false};
        if (const auto special = optionalBool(entry, "special", file)) token.special = *special;
        out[id] = std::move(token);
    }
}

void readChatTemplate(const json& doc, const fs::path& file, TokenizerConfig& config)
{
    const auto it = doc.find("chat_template");
    if (it == doc.end() || it->is_null()) return;
    if (it->is_string()) {
        config.chatTemplate = it->get<std::string>();
        return;
    }
    // transformers also stores named templates: [{"name": "default", "template": "..."}, ...].
    if (it->is_array()) {
        for (const auto& entry : *it) {
            if (!entry.is_object() || !entry.contains("template") || !entry["template"].is_string())
                wrongType(file, "chat_template", "a string or a list of {\"name\", \"template\"} objects", *it);
            const bool isDefault = entry.contains("name") && entry["name"] == "default";
            if (!config.chatTemplate || isDefault) config.chatTemplate = entry["template"].get<std::string>();
            if (isDefault) break;
        }
        return;
    }
    wrongType(file, "chat_template", "a string or a list of {\"name\", \"template\"} objects", *it);
}

void readModelMaxLength(const json& doc, const fs::path& file, TokenizerConfig& config)
{
    const auto it = doc.find("model_max_length");
    if (it == doc.end() || it->is_null()) return;
    if (!it->is_number()) wrongType(file, "model_max_length", "a positive number", *it);
    const double value = it->get<double>();
    if (!(value > 0)) wrongType(file, "model_max_length", "a positive number", *it);
    // transformers writes int(1e30) when a model sets no limit.
    if (value >= 1e18) return;
    config.modelMaxLength = static_cast<int64_t>(value);
}

} // namespace

TokenizerConfig TokenizerConfig::load(const std::filesystem::path& modelDir)
{
    TokenizerConfig config;
    std::map<int32_t, AddedToken> added; // id -> token

    const fs::path configFile = modelDir / "tokenizer_config.json";
    if (const auto doc = readJson(configFile)) {
        config.hasConfigFile = true;
        if (const auto v = optionalBool(*doc, "add_bos_token", configFile)) config.addBosToken = *v;
        if (const auto v = optionalBool(*doc, "add_eos_token", configFile)) config.addEosToken = *v;
        config.legacy = optionalBool(*doc, "legacy", configFile);
        config.addPrefixSpace = optionalBool(*doc, "add_prefix_space", configFile);
        readTokenNames(*doc, configFile, config);
        readAddedTokensDecoder(*doc, configFile, added);
        readChatTemplate(*doc, configFile, config);
        readModelMaxLength(*doc, configFile, config);
    }

    const fs::path mapFile = modelDir / "special_tokens_map.json";
    if (const auto doc = readJson(mapFile)) readTokenNames(*doc, mapFile, config);

    const fs::path addedFile = modelDir / "added_tokens.json";
    if (const auto doc = readJson(addedFile)) {
        std::vector<std::string> named = config.additionalSpecialTokens;
        for (const auto* name : {&config.bosToken, &config.eosToken, &config.unkToken, &config.padToken})
            if (*name) named.push_back(**name);
        for (const auto& [content, id] : doc->items()) {
            if (!id.is_number_integer() || id.get<int64_t>() < 0 ||
                id.get<int64_t>() > std::numeric_limits<int32_t>::max())
                wrongType(addedFile, content, "a token id (a non-negative integer below 2^31)", id);
            const auto tokenId = static_cast<int32_t>(id.get<int64_t>());
            // added_tokens_decoder is the newer, richer record; it wins where both list an id.
            if (added.count(tokenId)) continue;
            const bool special = std::find(named.begin(), named.end(), content) != named.end();
            added[tokenId] = AddedToken{tokenId, content, special};
        }
    }

    for (auto& [id, token] : added) config.addedTokens.push_back(std::move(token));
    return config;
}

} // namespace sage
