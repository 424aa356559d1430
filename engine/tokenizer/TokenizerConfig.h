#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace sage
{

// The tokenizer settings of a Hugging Face model folder, merged from (all optional):
//   tokenizer_config.json   add_bos_token, add_eos_token, bos/eos/unk/pad_token, additional_special_tokens,
//                           added_tokens_decoder, chat_template, model_max_length, legacy, add_prefix_space
//   special_tokens_map.json bos/eos/unk/pad_token, additional_special_tokens (its values win, as in
//                           transformers' from_pretrained)
//   added_tokens.json       {content: id}, for ids added_tokens_decoder does not list
// Token names may be a string or an AddedToken object {"content": ...}; null means "not set".
// Unknown keys are ignored. A value of the wrong type throws SageError naming the file and the key.
class TokenizerConfig
{
public:
    struct AddedToken {
        int32_t id = 0;
        std::string content;
        bool special = false; // skipped by decode(..., skipSpecial = true)
    };

    // Absent files leave the defaults below; the defaults give no automatic BOS or EOS, as in
    // IQuest's published configuration (transformers' LlamaTokenizer would default add_bos_token to
    // true, but that model family does not want it: set the key explicitly when a model does).
    static TokenizerConfig load(const std::filesystem::path& modelDir);

    bool hasConfigFile = false; // tokenizer_config.json was present
    bool addBosToken = false;
    bool addEosToken = false;
    std::optional<std::string> bosToken;
    std::optional<std::string> eosToken;
    std::optional<std::string> unkToken;
    std::optional<std::string> padToken;
    std::vector<std::string> additionalSpecialTokens;
    std::vector<AddedToken> addedTokens;     // ascending id, ids unique
    std::optional<std::string> chatTemplate; // kept for display; the engine does not render templates
    // Absent when not given or when it is transformers' "no limit" placeholder (int(1e30)).
    std::optional<int64_t> modelMaxLength;
    // transformers' LlamaTokenizer switches: legacy = true puts SentencePiece's "▁" dummy prefix on every
    // text segment after a special token; add_prefix_space = false drops it from the first segment too.
    std::optional<bool> legacy;
    std::optional<bool> addPrefixSpace;
};

} // namespace sage
