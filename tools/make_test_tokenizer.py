#!/usr/bin/python3
"""Builds the small SentencePiece tokenizer used by the engine tests, and its golden expectations.

Run from anywhere (uses the Debian python3-sentencepiece package, no network):

    /usr/bin/python3 tools/make_test_tokenizer.py

Reads  tests/data/tokenizer/corpus.txt
Writes tests/data/tokenizer/tokenizer.model         (BPE, 500 pieces, byte fallback, Llama-style normaliser)
       tests/data/tokenizer/tokenizer_config.json   (add_bos_token, specials, one added token beyond the vocab)
       tests/data/tokenizer/golden.json             ([{text, ids, pieces, decoded}] for Tokenizer::encode/decode)
       tests/data/tokenizer/golden_decode.json      ([{ids, decoded}] decode-only cases: broken UTF-8, controls)

The output is deterministic (one training thread, fixed seed, sentences fed from memory so no path is
recorded in the model). The golden ids come from Python sentencepiece applied to the plain segments of each
text, with the segmentation rule the engine documents (engine/tokenizer/Tokenizer.h):
  * the text is split on special strings first (leftmost, then longest match); each special is one id;
  * only a plain segment that starts the text gets SentencePiece's dummy "▁" prefix (Hugging Face
    LlamaTokenizer legacy=false, tokenizers Metaspace prepend_scheme="first");
  * add_bos_token/add_eos_token from tokenizer_config.json wrap the result.
The script checks that this rule agrees with sentencepiece's own encoding of the whole text wherever
sentencepiece can see the specials itself (user-defined symbols not at the very start).
"""

import json
import os
import sys

import sentencepiece as spm

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
DATA = os.path.join(ROOT, "tests", "data", "tokenizer")

SPACE = "\u2581"
# Appended after the SentencePiece vocabulary the way Hugging Face stores extra tokens: only in
# tokenizer_config.json, with an id the .model file does not know.
EXTRA_TOKEN = "<|endoftext|>"

# SentencePiece piece types (sentencepiece_model.proto).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


# ---- minimal protobuf wire-format helpers (python3-protobuf is not a dependency) ----
def read_varint(buf, pos):
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def write_varint(value):
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def fields(buf):
    """Yields (field number, wire type, raw bytes of the whole field, payload) for one message."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
            payload = value
        elif wire == 1:
            payload = buf[pos:pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            payload = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            payload = buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield number, wire, buf[start:pos], payload


def piece_types(serialized):
    types = []
    for number, wire, _, payload in fields(serialized):
        if number == 1 and wire == 2:
            kind = NORMAL
            for n, w, _, v in fields(payload):
                if n == 3 and w == 0:
                    kind = v
            types.append(kind)
    return types


def without_dummy_prefix(serialized):
    """The same model with normalizer_spec.add_dummy_prefix = false and no self-test samples."""
    out = bytearray()
    seen = False
    for number, wire, raw, payload in fields(serialized):
        if number == 4:  # self_test_data would no longer match
            continue
        if number == 3 and wire == 2:
            seen = True
            spec = bytes(payload) + b"\x18\x00"  # field 3 (add_dummy_prefix) = false; the last value wins
            out += b"\x1a" + write_varint(len(spec)) + spec
        else:
            out += raw
    if not seen:
        out += b"\x1a\x02\x18\x00"
    return bytes(out)


# ---- training ----
def train():
    with open(os.path.join(DATA, "corpus.txt"), encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip()]

    class Writer:
        data = b""

        def write(self, blob):
            Writer.data = blob

    # BPE training samples nothing, but pin the generator anyway so a future option cannot add noise.
    spm.set_random_generator_seed(20240607)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=Writer(),
        model_type="bpe",
        vocab_size=500,
        byte_fallback=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        user_defined_symbols=["<|im_start|>", "<|im_end|>"],
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        character_coverage=1.0,
        num_threads=1,
        max_sentence_length=100000,
        minloglevel=2,
    )
    return Writer.data


# ---- the engine's rule, in Python ----
class Reference:
    def __init__(self, model, added):
        self.sp = spm.SentencePieceProcessor()
        self.sp.load_from_serialized_proto(model)
        self.sp_plain = spm.SentencePieceProcessor()
        self.sp_plain.load_from_serialized_proto(without_dummy_prefix(model))
        self.types = piece_types(model)
        self.specials = dict(added)  # content -> id
        for i, kind in enumerate(self.types):
            if kind in (UNKNOWN, CONTROL, USER_DEFINED):
                self.specials.setdefault(self.sp.id_to_piece(i), i)
        self.content = {v: k for k, v in self.specials.items()}

    def split(self, text):
        out, plain, i = [], "", 0
        while i < len(text):
            match = max((s for s in self.specials if text.startswith(s, i)), key=len, default=None)
            if match is None:
                plain += text[i]
                i += 1
                continue
            if plain:
                out.append((plain, None, i - len(plain)))
                plain = ""
            out.append((match, self.specials[match], i))
            i += len(match)
        if plain:
            out.append((plain, None, len(text) - len(plain)))
        return out

    def encode(self, text, add_bos):
        ids = [self.sp.bos_id()] if add_bos else []
        for segment, special, offset in self.split(text):
            if special is not None:
                ids.append(special)
            else:
                ids += (self.sp if offset == 0 else self.sp_plain).encode(segment)
        return ids

    def decode(self, ids, sentencepiece_compatible=False):
        """Mirrors SentencePieceProcessor::Decode, except that specials show their content.

        With sentencepiece_compatible the output must equal sentencepiece's own decode (controls invisible,
        <unk> as " \u2047 "); the script asserts that, which pins the mirror to the library.
        """
        text, pending = "", b""
        bos_ws, bos_ws_seen, started = True, False, False

        def flush_bytes():
            nonlocal text, pending, started
            pos = 0
            while pos < len(pending):
                lead = pending[pos]
                size = 1 if lead < 0x80 else 2 if lead & 0xE0 == 0xC0 else 3 if lead & 0xF0 == 0xE0 else \
                    4 if lead & 0xF8 == 0xF0 else 0
                chunk = pending[pos:pos + size] if size and pos + size <= len(pending) else None
                try:
                    text += chunk.decode("utf-8") if chunk is not None else "\ufffd"
                    pos += size if chunk is not None else 1
                except UnicodeDecodeError:
                    text += "\ufffd"
                    pos += 1
                started = True
            pending = b""

        for i in ids:
            kind = self.types[i] if i < len(self.types) else None
            if kind == BYTE:
                pending += bytes([int(self.sp.id_to_piece(i)[3:5], 16)])
                continue
            flush_bytes()
            if bos_ws_seen or started:
                bos_ws = False
            bos_ws_seen = False
            if kind == CONTROL:
                # Invisible to sentencepiece, so it never ends the leading-space state.
                text += "" if sentencepiece_compatible else self.content[i]
            elif kind == UNKNOWN:
                text += " \u2047 " if sentencepiece_compatible else self.content[i]
                started = True
            elif i in self.content:
                text += self.content[i]
                started = True
            elif kind is None:
                raise ValueError("id %d is outside the vocabulary" % i)
            else:
                piece = self.sp.id_to_piece(i)
                if bos_ws and piece.startswith(SPACE):
                    piece = piece[1:]
                    bos_ws_seen = True
                text += piece.replace(SPACE, " ")
                started = started or bool(piece)
        flush_bytes()
        return text


GOLDEN_TEXTS = [
    "Hello world",
    "def softmax(values):\n    largest = max(values)\n    return [v - largest for v in values]\n",
    "naïve café — 日本",
    "tabs\tand\nnewlines\r\n  two spaces",
    "emoji 😀 and 🧪!",
    "2048 + 4096 = 6144",
    " leading space",
    "trailing space ",
    "",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "say <|im_start|>user\nhi<|im_end|> now",
    "<|im_start|><|im_end|>",
    "<|im_star partial",
    "x<|im_start|>",
    "<s>literal bos</s> and <|endoftext|> then text",
]


def main():
    model = train()
    added = {EXTRA_TOKEN: None}
    ref_sp = spm.SentencePieceProcessor()
    ref_sp.load_from_serialized_proto(model)
    size = ref_sp.get_piece_size()
    added[EXTRA_TOKEN] = size
    ref = Reference(model, added)
    sp = ref.sp
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id()) == (0, 1, 2)
    assert sp.piece_to_id("<|im_start|>") == 3 and sp.piece_to_id("<|im_end|>") == 4

    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": {},
        "bos_token": "<s>",
        "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                         "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                         "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
        "clean_up_tokenization_spaces": False,
        "eos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False},
        "legacy": False,
        "model_max_length": 4096,
        "pad_token": None,
        "sp_model_kwargs": {},
        "tokenizer_class": "LlamaTokenizer",
        "unk_token": "<unk>",
    }
    for content, token_id in sorted(ref.specials.items(), key=lambda kv: kv[1]):
        config["added_tokens_decoder"][str(token_id)] = {
            "content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}

    space_id = sp.piece_to_id(SPACE)
    golden = []
    for text in GOLDEN_TEXTS:
        plain = ref.encode(text, add_bos=False)
        ids = ref.encode(text, add_bos=True)
        segments = ref.split(text)
        only_user_defined = all(s[1] < size and ref.types[s[1]] == USER_DEFINED for s in segments
                                if s[1] is not None)
        if only_user_defined and text:
            native = sp.encode(text)
            if segments[0][1] is None:
                # sentencepiece sees the user-defined symbols itself and agrees with the segment rule.
                assert native == plain, (text, native, plain)
            else:
                # Text that opens with a special: sentencepiece adds a lone dummy "▁"; the engine does not.
                assert native == [space_id] + plain, (text, native, plain)
        assert ref.decode(plain) == text, (text, ref.decode(plain))
        assert ref.decode(ids) == "<s>" + text
        if all(i < size for i in ids):
            assert ref.decode(ids, sentencepiece_compatible=True) == sp.decode(ids), text
        golden.append({
            "text": text,
            "ids": ids,
            "pieces": [ref.content.get(i) or sp.id_to_piece(i) for i in ids],
            "decoded": ref.decode(ids),
        })

    byte = lambda b: sp.piece_to_id("<0x%02X>" % b)
    word = sp.piece_to_id(SPACE + "the")
    assert ref.types[word] == NORMAL
    decode_cases = [
        [],
        [space_id, word],
        [1, word, 2],
        [2, word, 2, word],
        [3, word, 4],
        [0, word],
        [byte(0xE6), byte(0x97), byte(0x41)],
        [byte(0x80), word],
        [byte(0xF0), byte(0x9F), byte(0x98), word],
        [byte(0xC0), byte(0x80)],
        [byte(0xED), byte(0xA0), byte(0x80)],
        [byte(0xF4), byte(0x90), byte(0x80), byte(0x80)],
        [byte(0xEF), byte(0xBF), byte(0xBD)],
        [word, byte(0xE6), byte(0x97), byte(0xA5), byte(0xE6), byte(0x9C), byte(0xAC), space_id],
        [1, byte(0x0A), word],
        [1, 1, word],
        [size, word],
    ]
    golden_decode = []
    for ids in decode_cases:
        if all(i < size for i in ids):
            assert ref.decode(ids, sentencepiece_compatible=True) == sp.decode(ids), ids
        golden_decode.append({"ids": ids, "decoded": ref.decode(ids)})

    with open(os.path.join(DATA, "tokenizer.model"), "wb") as handle:
        handle.write(model)
    for name, value in (("tokenizer_config.json", config), ("golden.json", golden),
                        ("golden_decode.json", golden_decode)):
        with open(os.path.join(DATA, name), "w", encoding="utf-8") as handle:
            json.dump(value, handle, ensure_ascii=False, indent=1)
            handle.write("\n")
    print("wrote %s (%d bytes, %d pieces + %s)" % (os.path.join(DATA, "tokenizer.model"), len(model), size,
                                                    EXTRA_TOKEN))


if __name__ == "__main__":
    sys.exit(main())
