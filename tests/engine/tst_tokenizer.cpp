// Tokenizer, TokenizerConfig and StreamDecoder against the small SentencePiece model in
// tests/data/tokenizer (built by tools/make_test_tokenizer.py, which also wrote the golden ids with
// Python sentencepiece).

#include "engine/core/SageError.h"
#include "engine/tokenizer/StreamDecoder.h"
#include "engine/tokenizer/Tokenizer.h"

#include <QFile>
#include <QStringDecoder>
#include <QTemporaryDir>
#include <QTest>

#include <nlohmann/json.hpp>

#include <fstream>
#include <random>
#include <sstream>

using namespace sage;
namespace fs = std::filesystem;

namespace
{

const fs::path kDataDir = fs::path(SAGE_TEST_DATA_DIR) / "tokenizer";

nlohmann::json readJson(const fs::path& file)
{
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return nlohmann::json::parse(text.str());
}

std::vector<int32_t> idsOf(const nlohmann::json& array)
{
    return array.get<std::vector<int32_t>>();
}

QByteArray show(const std::vector<int32_t>& ids)
{
    QByteArray out = "[";
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + QByteArray::number(ids[i]);
    return out + "]";
}

bool isValidUtf8(const std::string& text)
{
    QStringDecoder decoder(QStringDecoder::Utf8);
    const QString decoded = decoder.decode(QByteArrayView(text.data(), qsizetype(text.size())));
    return !decoder.hasError() && decoded.toUtf8() == QByteArray(text.data(), qsizetype(text.size()));
}

void writeFile(const fs::path& file, const std::string& bytes)
{
    std::ofstream out(file, std::ios::binary);
    out << bytes;
}

// A model folder with the test tokenizer.model and the given extra files.
fs::path makeModelDir(const QTemporaryDir& dir, const std::vector<std::pair<std::string, std::string>>& files)
{
    const fs::path root = dir.path().toStdString();
    fs::copy_file(kDataDir / "tokenizer.model", root / "tokenizer.model",
                  fs::copy_options::overwrite_existing);
    for (const auto& [name, text] : files) writeFile(root / name, text);
    return root;
}

std::string loadError(const fs::path& dir)
{
    try {
        Tokenizer::load(dir);
    } catch (const SageError& e) {
        return e.what();
    }
    return "(no error)";
}

} // namespace

class TestTokenizer : public QObject
{
    Q_OBJECT

private slots:
    void initTestCase();
    void goldenEncode_data();
    void goldenEncode();
    void goldenDecode_data();
    void goldenDecode();
    void decodeCases();
    void specialsAreSingleIds();
    void configValues();
    void bosAndEosFollowConfig();
    void legacyAndPrefixSpace();
    void specialTokensMapAndAddedTokensJson();
    void streamMatchesDecode();
    void streamHoldsBackSplitCharacters();
    void pieceText();
    void missingModelGivesNull();
    void corruptModelNamesFile();
    void malformedConfigNamesFileAndField_data();
    void malformedConfigNamesFileAndField();

private:
    std::unique_ptr<Tokenizer> m_tok;
    nlohmann::json m_golden;
    nlohmann::json m_goldenDecode;
};

void TestTokenizer::initTestCase()
{
    m_tok = Tokenizer::load(kDataDir);
    QVERIFY(m_tok);
    m_golden = readJson(kDataDir / "golden.json");
    m_goldenDecode = readJson(kDataDir / "golden_decode.json");
    QVERIFY(m_golden.size() >= 10);
    QVERIFY(m_goldenDecode.size() >= 10);
}

void TestTokenizer::goldenEncode_data()
{
    QTest::addColumn<int>("index");
    for (size_t i = 0; i < m_golden.size(); ++i)
        QTest::addRow(
            "%s",
            QByteArray::fromStdString(m_golden[i]["text"].get<std::string>()).toPercentEncoding().constData())
            << int(i);
}

void TestTokenizer::goldenEncode()
{
    QFETCH(int, index);
    const auto& entry = m_golden[index];
    const std::string text = entry["text"];
    const std::vector<int32_t> expected = idsOf(entry["ids"]);

    const std::vector<int32_t> ids = m_tok->encode(text);
    QVERIFY2(ids == expected, show(ids) + " != golden " + show(expected));
    // add_bos_token is true in the test config; encodePlain controls BOS explicitly.
    QCOMPARE(m_tok->encodePlain(text, true), expected);
    QCOMPARE(m_tok->encodePlain(text, false), std::vector<int32_t>(expected.begin() + 1, expected.end()));
}

void TestTokenizer::goldenDecode_data()
{
    goldenEncode_data();
}

void TestTokenizer::goldenDecode()
{
    QFETCH(int, index);
    const auto& entry = m_golden[index];
    const std::string text = entry["text"];
    const std::vector<int32_t> ids = idsOf(entry["ids"]);

    QCOMPARE(m_tok->decode(ids), entry["decoded"].get<std::string>());
    QCOMPARE(m_tok->decode(ids), "<s>" + text);
    // Round trip without the BOS the config adds.
    QCOMPARE(m_tok->decode(m_tok->encodePlain(text, false)), text);
    // skipSpecial drops the BOS, so texts without specials come back unchanged.
    const bool hasSpecials =
        std::any_of(ids.begin() + 1, ids.end(), [&](int32_t id) { return m_tok->isSpecial(id); });
    if (!hasSpecials) QCOMPARE(m_tok->decode(ids, true), text);
}

void TestTokenizer::decodeCases()
{
    for (const auto& entry : m_goldenDecode) {
        const std::vector<int32_t> ids = idsOf(entry["ids"]);
        QVERIFY2(m_tok->decode(ids) == entry["decoded"].get<std::string>(),
                 show(ids) + " -> \"" + QByteArray::fromStdString(m_tok->decode(ids)) + "\"");
    }
    // Ids the vocabulary does not have decode to nothing and leave the rest intact.
    const std::vector<int32_t> withJunk = {*m_tok->pieceToId("\xE2\x96\x81the"), 9999, -1};
    QCOMPARE(m_tok->decode(withJunk), std::string("the"));
}

void TestTokenizer::specialsAreSingleIds()
{
    const std::pair<const char*, int32_t> specials[] = {{"<unk>", 0},      {"<s>", 1},
                                                        {"</s>", 2},       {"<|im_start|>", 3},
                                                        {"<|im_end|>", 4}, {"<|endoftext|>", 500}};
    for (const auto& [content, id] : specials) {
        QCOMPARE(m_tok->encodePlain(content, false), std::vector<int32_t>{id});
        QCOMPARE(m_tok->decode(std::vector<int32_t>{id}), std::string(content));
        QCOMPARE(m_tok->decode(std::vector<int32_t>{id}, true), std::string());
        QVERIFY(m_tok->isSpecial(id));
        QCOMPARE(m_tok->pieceToId(content), std::optional<int32_t>(id));
    }
    QCOMPARE(m_tok->pieceKind(1), Tokenizer::PieceKind::Control);
    QCOMPARE(m_tok->pieceKind(0), Tokenizer::PieceKind::Unknown);
    QCOMPARE(m_tok->pieceKind(3), Tokenizer::PieceKind::UserDefined);
    QCOMPARE(m_tok->pieceKind(500), Tokenizer::PieceKind::Added);
    QCOMPARE(m_tok->pieceKind(501), Tokenizer::PieceKind::Invalid);

    const int32_t the = *m_tok->pieceToId("\xE2\x96\x81the");
    QCOMPARE(m_tok->pieceKind(the), Tokenizer::PieceKind::Normal);
    QVERIFY(!m_tok->isSpecial(the));
    QVERIFY(!m_tok->isSpecial(-1));
    QVERIFY(!m_tok->isSpecial(501));
    QCOMPARE(m_tok->pieceToId("no such piece"), std::nullopt);

    // Longest match wins; a special right after text and adjacent specials split cleanly.
    std::vector<int32_t> expected = m_tok->encodePlain("a", false);
    expected.insert(expected.end(), {4, 3});
    QCOMPARE(m_tok->encodePlain("a<|im_end|><|im_start|>", false), expected);
    // Text after a special carries no dummy prefix, so "the" does not become the piece "▁the".
    const std::vector<int32_t> afterSpecial = m_tok->encodePlain("<|im_start|>the", false);
    QCOMPARE(afterSpecial.front(), 3);
    QVERIFY(std::find(afterSpecial.begin(), afterSpecial.end(), the) == afterSpecial.end());
    QCOMPARE(m_tok->decode(afterSpecial), std::string("<|im_start|>the"));
}

void TestTokenizer::configValues()
{
    const TokenizerConfig& c = m_tok->config();
    QVERIFY(c.hasConfigFile);
    QVERIFY(c.addBosToken);
    QVERIFY(!c.addEosToken);
    QCOMPARE(c.bosToken, std::optional<std::string>("<s>"));
    QCOMPARE(c.eosToken, std::optional<std::string>("</s>")); // given as an AddedToken object
    QCOMPARE(c.unkToken, std::optional<std::string>("<unk>"));
    QCOMPARE(c.padToken, std::nullopt); // null in the file
    QCOMPARE(c.modelMaxLength, std::optional<int64_t>(4096));
    QCOMPARE(c.legacy, std::optional<bool>(false));
    QVERIFY(c.chatTemplate && c.chatTemplate->find("<|im_start|>") != std::string::npos);
    QCOMPARE(c.addedTokens.size(), size_t(6));
    QCOMPARE(c.addedTokens.back().id, 500);
    QCOMPARE(c.addedTokens.back().content, std::string("<|endoftext|>"));
    QVERIFY(c.addedTokens.back().special);

    QCOMPARE(m_tok->vocabSize(), 501);
    QCOMPARE(m_tok->bosId(), std::optional<int32_t>(1));
    QCOMPARE(m_tok->eosIds(), std::vector<int32_t>{2});
    QCOMPARE(m_tok->modelFile(), kDataDir / "tokenizer.model");
}

void TestTokenizer::bosAndEosFollowConfig()
{
    const std::string text = "the loop";
    const std::vector<int32_t> body = m_tok->encodePlain(text, false);

    QTemporaryDir noConfig;
    const auto plain = Tokenizer::load(makeModelDir(noConfig, {}));
    QVERIFY(plain);
    QVERIFY(!plain->config().hasConfigFile);
    QCOMPARE(plain->encode(text), body);                 // no automatic BOS without a config
    QCOMPARE(plain->bosId(), std::optional<int32_t>(1)); // still known from tokenizer.model
    QCOMPARE(plain->eosIds(), std::vector<int32_t>{2});
    QCOMPARE(plain->vocabSize(), 500);
    QVERIFY(plain->isSpecial(3)); // user-defined symbols are special without any config

    QTemporaryDir bosOff;
    const auto off =
        Tokenizer::load(makeModelDir(bosOff, {{"tokenizer_config.json", R"({"add_bos_token": false})"}}));
    QCOMPARE(off->encode(text), body);

    QTemporaryDir both;
    const auto on = Tokenizer::load(
        makeModelDir(both, {{"tokenizer_config.json", R"({"add_bos_token": true, "add_eos_token": true})"}}));
    std::vector<int32_t> expected = {1};
    expected.insert(expected.end(), body.begin(), body.end());
    expected.push_back(2);
    QCOMPARE(on->encode(text), expected);
}

void TestTokenizer::legacyAndPrefixSpace()
{
    const int32_t the = *m_tok->pieceToId("\xE2\x96\x81the");
    QTemporaryDir legacyDir;
    const auto legacy =
        Tokenizer::load(makeModelDir(legacyDir, {{"tokenizer_config.json", R"({"legacy": true})"}}));
    // legacy=true: the segment after a special gets the dummy prefix, exactly like a text of its own.
    std::vector<int32_t> expected = {3};
    const auto alone = legacy->encodePlain("the", false);
    QCOMPARE(alone, std::vector<int32_t>{the});
    expected.insert(expected.end(), alone.begin(), alone.end());
    QCOMPARE(legacy->encode("<|im_start|>the"), expected);
    QVERIFY(m_tok->encodePlain("<|im_start|>the", false) != expected);

    QTemporaryDir noPrefixDir;
    const auto noPrefix = Tokenizer::load(
        makeModelDir(noPrefixDir, {{"tokenizer_config.json", R"({"add_prefix_space": false})"}}));
    // Without the prefix the first segment encodes like a continuation.
    const auto continued = m_tok->encodePlain("<|im_start|>the", false);
    QCOMPARE(noPrefix->encode("the"), std::vector<int32_t>(continued.begin() + 1, continued.end()));
    QCOMPARE(noPrefix->decode(noPrefix->encode(" the")), std::string(" the"));
}

void TestTokenizer::specialTokensMapAndAddedTokensJson()
{
    QTemporaryDir dir;
    const auto tok = Tokenizer::load(makeModelDir(
        dir, {{"tokenizer_config.json", R"({"eos_token": "</s>", "added_tokens_decoder": {}})"},
              {"special_tokens_map.json",
               R"({"eos_token": {"content": "<|im_end|>"}, "additional_special_tokens": ["<|fim|>"]})"},
              {"added_tokens.json", R"({"<|fim|>": 501, "<|note|>": 502})"}}));
    QCOMPARE(tok->config().eosToken, std::optional<std::string>("<|im_end|>")); // the map wins
    QCOMPARE(tok->eosIds(), (std::vector<int32_t>{4, 2}));
    QCOMPARE(tok->vocabSize(), 503);
    std::vector<int32_t> expected = tok->encodePlain("x", false);
    expected.push_back(501);
    const auto y = tok->encodePlain("<|note|>y", false); // "y" after a special, without the dummy prefix
    expected.insert(expected.end(), y.begin() + 1, y.end());
    expected.push_back(502);
    QCOMPARE(tok->encodePlain("x<|fim|>y<|note|>", false), expected);
    QVERIFY(tok->isSpecial(501));  // named in additional_special_tokens
    QVERIFY(!tok->isSpecial(502)); // an added, non-special token: kept by skipSpecial
    QCOMPARE(tok->decode(tok->encodePlain("x<|fim|>y<|note|>", false), true), std::string("xy<|note|>"));
    QCOMPARE(tok->pieceKind(502), Tokenizer::PieceKind::Added);
}

void TestTokenizer::streamMatchesDecode()
{
    std::vector<std::vector<int32_t>> sequences;
    for (const auto& entry : m_golden) sequences.push_back(idsOf(entry["ids"]));
    for (const auto& entry : m_goldenDecode) sequences.push_back(idsOf(entry["ids"]));
    for (const auto& ids : sequences) {
        for (bool skip : {false, true}) {
            StreamDecoder stream(*m_tok, skip);
            std::string joined;
            for (int32_t id : ids) {
                const std::string chunk = stream.push(id);
                // Every chunk is whole characters (the golden data's invalid bytes decode to U+FFFD).
                QVERIFY2(isValidUtf8(chunk), show(ids));
                joined += chunk;
            }
            joined += stream.flush();
            QVERIFY2(joined == m_tok->decode(ids, skip), show(ids) + (skip ? " skipSpecial" : ""));
        }
    }
}

void TestTokenizer::streamHoldsBackSplitCharacters()
{
    // "😀" is not in the test vocabulary: four byte-fallback pieces.
    const std::vector<int32_t> ids = m_tok->encodePlain("a 😀!", false);
    StreamDecoder stream(*m_tok);
    std::vector<std::string> chunks;
    for (int32_t id : ids) chunks.push_back(stream.push(id));
    chunks.push_back(stream.flush());

    // The fourth byte completes the character; "!" (byte 0x21) is a whole character of its own.
    int firstByte = -1;
    for (size_t i = 0; i < ids.size(); ++i)
        if (m_tok->pieceKind(ids[i]) == Tokenizer::PieceKind::Byte) {
            firstByte = int(i);
            break;
        }
    QVERIFY(firstByte > 0);
    QCOMPARE(chunks[firstByte], std::string());
    QCOMPARE(chunks[firstByte + 1], std::string());
    QCOMPARE(chunks[firstByte + 2], std::string());
    QCOMPARE(chunks[firstByte + 3], std::string("😀"));

    // An incomplete character at the end becomes U+FFFD per byte at flush, as decode does.
    StreamDecoder cut(*m_tok);
    QCOMPARE(cut.push(*m_tok->pieceToId("<0xF0>")), std::string());
    QCOMPARE(cut.push(*m_tok->pieceToId("<0x9F>")), std::string());
    QCOMPARE(cut.flush(), std::string("\xEF\xBF\xBD\xEF\xBF\xBD"));
    // A byte that cannot continue is replaced at once.
    QCOMPARE(cut.push(*m_tok->pieceToId("<0xE0>")), std::string());
    QCOMPARE(cut.push(*m_tok->pieceToId("<0x80>")), std::string("\xEF\xBF\xBD\xEF\xBF\xBD"));

    // reset() starts a new text: the dummy prefix is dropped again.
    const int32_t the = *m_tok->pieceToId("\xE2\x96\x81the");
    StreamDecoder again(*m_tok);
    QCOMPARE(again.push(the), std::string("the"));
    QCOMPARE(again.push(the), std::string(" the"));
    again.reset();
    QCOMPARE(again.push(the), std::string("the"));
}

void TestTokenizer::pieceText()
{
    QCOMPARE(m_tok->pieceText(*m_tok->pieceToId("\xE2\x96\x81the")), std::string(" the"));
    QCOMPARE(m_tok->pieceText(*m_tok->pieceToId("<0x0A>")), std::string("\\n"));
    QCOMPARE(m_tok->pieceText(*m_tok->pieceToId("<0x09>")), std::string("\\t"));
    QCOMPARE(m_tok->pieceText(*m_tok->pieceToId("<0x41>")), std::string("A"));
    QCOMPARE(m_tok->pieceText(*m_tok->pieceToId("<0xE6>")), std::string("<0xE6>"));
    QCOMPARE(m_tok->pieceText(3), std::string("<|im_start|>"));
    QCOMPARE(m_tok->pieceText(1), std::string("<s>"));
    QCOMPARE(m_tok->pieceText(500), std::string("<|endoftext|>"));
    QCOMPARE(m_tok->pieceText(9999), std::string("<id 9999>"));
}

void TestTokenizer::missingModelGivesNull()
{
    QTemporaryDir empty;
    QVERIFY(Tokenizer::load(empty.path().toStdString()) == nullptr);
    // A config without a model is still "no tokenizer", not an error.
    writeFile(fs::path(empty.path().toStdString()) / "tokenizer_config.json", "{ not json");
    QVERIFY(Tokenizer::load(empty.path().toStdString()) == nullptr);
}

void TestTokenizer::corruptModelNamesFile()
{
    QTemporaryDir dir;
    const fs::path root = dir.path().toStdString();
    std::mt19937 rng(1234);
    std::string bytes(4096, '\0');
    for (char& b : bytes) b = static_cast<char>(rng() & 0xFF);
    writeFile(root / "tokenizer.model", bytes);
    const std::string error = loadError(root);
    QVERIFY2(error.find((root / "tokenizer.model").string()) != std::string::npos, error.c_str());
    QVERIFY2(error.find("not a valid SentencePiece model") != std::string::npos, error.c_str());

    writeFile(root / "tokenizer.model", "");
    const std::string emptyError = loadError(root);
    QVERIFY2(emptyError.find((root / "tokenizer.model").string()) != std::string::npos, emptyError.c_str());
}

void TestTokenizer::malformedConfigNamesFileAndField_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("content");
    QTest::addColumn<QString>("expected");
    QTest::newRow("invalid json") << "tokenizer_config.json"
                                  << R"({"add_bos_token": true,)"
                                  << "invalid JSON";
    QTest::newRow("not an object") << "tokenizer_config.json"
                                   << "[1, 2]"
                                   << "must be a JSON object";
    QTest::newRow("bos flag type") << "tokenizer_config.json"
                                   << R"({"add_bos_token": "yes"})"
                                   << "field 'add_bos_token' must be true or false, found \"yes\" (string)";
    QTest::newRow("token type") << "tokenizer_config.json"
                                << R"({"bos_token": 1})"
                                << "field 'bos_token'";
    QTest::newRow("token content") << "tokenizer_config.json"
                                   << R"({"eos_token": {"content": 2}})"
                                   << "field 'eos_token.content' must be a string";
    QTest::newRow("decoder key") << "tokenizer_config.json"
                                 << R"({"added_tokens_decoder": {"x": {"content": "a"}}})"
                                 << "field 'added_tokens_decoder' has the key \"x\"";
    QTest::newRow("decoder entry") << "tokenizer_config.json"
                                   << R"({"added_tokens_decoder": {"7": "a"}})"
                                   << "field 'added_tokens_decoder.7'";
    QTest::newRow("unknown bos") << "tokenizer_config.json"
                                 << R"({"bos_token": "<|begin|>"})"
                                 << "field 'bos_token' is \"<|begin|>\", which is neither";
    QTest::newRow("max length") << "tokenizer_config.json"
                                << R"({"model_max_length": "big"})"
                                << "field 'model_max_length'";
    QTest::newRow("map json") << "special_tokens_map.json"
                              << "{"
                              << "invalid JSON";
    QTest::newRow("added ids") << "added_tokens.json"
                               << R"({"<|x|>": "7"})"
                               << "field '<|x|>' must be a token id";
}

void TestTokenizer::malformedConfigNamesFileAndField()
{
    QFETCH(QString, file);
    QFETCH(QString, content);
    QFETCH(QString, expected);
    QTemporaryDir dir;
    const fs::path root = makeModelDir(dir, {{file.toStdString(), content.toStdString()}});
    const std::string error = loadError(root);
    QVERIFY2(error.find((root / file.toStdString()).string()) != std::string::npos, error.c_str());
    QVERIFY2(error.find(expected.toStdString()) != std::string::npos, error.c_str());
}

QTEST_APPLESS_MAIN(TestTokenizer)
#include "tst_tokenizer.moc"
