#pragma once

#include <cstdint>
#include <string>

namespace sage
{

class Tokenizer;

// Turns generated ids into text as they arrive. Each push returns the text that became final with
// that id, so that the concatenation of everything push() and flush() returned equals
// tokenizer.decode(all ids pushed, skipSpecial). Bytes of a UTF-8 character split over byte-fallback
// tokens are held back until the character is complete (or proven invalid, then U+FFFD per byte as in
// decode); the leading-space rule of decode applies to the first text token of the stream.
//
// It keeps decode's state instead of re-decoding the whole sequence at each step, so a push costs
// O(1) however long the generation; Tokenizer::decode runs on this same state machine, which is what
// makes the two agree.
//
// The tokenizer must outlive the decoder. Not thread-safe; one decoder per stream.
class StreamDecoder
{
public:
    explicit StreamDecoder(const Tokenizer& tokenizer, bool skipSpecial = false);

    std::string push(int32_t id);
    // Emits bytes still held back (an incomplete character at the end becomes U+FFFD per byte).
    // Call once when the stream ends; pushing afterwards starts a new run of bytes.
    std::string flush();
    // Forgets everything: the next push is the start of a text again.
    void reset();

private:
    void drainBytes(std::string& out, bool final);

    const Tokenizer& m_tokenizer;
    bool m_skipSpecial = false;
    std::string m_pendingBytes; // [0, 3] bytes of a character whose end has not arrived yet
    bool m_bosWs = true;        // sentencepiece's is_bos_ws: the next "▁" may be the dummy prefix
    bool m_bosWsSeen = false;   // the previous text token was the dummy prefix
    bool m_started = false;     // some text (not a control token) has been output
};

} // namespace sage
