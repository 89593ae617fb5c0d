/**
 * Tokenizers that give the same ids as Hugging Face: WordPiece (BERT, bert-base-chinese, Wenzhong), byte-level BPE
 * (GPT-2, Qwen), BPE with byte fallback and metaspace (LLaMA/Mistral), SentencePiece BPE {@code tokenizer.model};
 * vocabulary extension and training.
 *
 * <p>Entry points: {@link dev.cpt4j.tokenizer.Tokenizer#load(java.nio.file.Path)} (a directory or a file),
 * {@link dev.cpt4j.tokenizer.LineEncoder} (files → JSON id lines), {@link dev.cpt4j.tokenizer.VocabExtender}
 * ({@code extend}, {@code train}).
 *
 * <p>What is loaded from what:
 * <ul>
 * <li>{@code tokenizer.json} (preferred when present): the tokenizers library's pipeline — added tokens (matched
 *     leftmost-longest before normalization, or after it for {@code normalized: true}; {@code lstrip}, {@code rstrip},
 *     {@code single_word} as in tokenizers; ids of added tokens missing from the model vocabulary are assigned the
 *     way tokenizers assigns them on load), normalizers (BertNormalizer, NFC/NFD/NFKC/NFKD, Lowercase, StripAccents,
 *     Strip, Prepend, Replace, Sequence), pre-tokenizers (BertPreTokenizer, ByteLevel, Metaspace, Split, Whitespace,
 *     WhitespaceSplit, Punctuation, Digits, Sequence), models (WordPiece, BPE incl. byte fallback, fuse_unk,
 *     ignore_merges, subword prefix/suffix), post-processors (TemplateProcessing, BertProcessing, RobertaProcessing,
 *     ByteLevel, Sequence) and decoders (WordPiece, ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip,
 *     BPEDecoder, Sequence). Anything else is a one-line {@link dev.cpt4j.UserError} naming the field. The file's
 *     {@code truncation} and {@code padding} are ignored on purpose: cpt4j encodes whole lines, and data
 *     preparation packs them into blocks.</li>
 * <li>{@code vocab.txt}: transformers' BertTokenizer — BertNormalizer(clean_text, tokenize_chinese_chars,
 *     strip_accents, {@code do_lower_case}, default true), BertPreTokenizer, WordPiece (max 100 chars per word),
 *     post-processor {@code cls_token $A sep_token} ([CLS] … [SEP]). Added tokens come from tokenizer_config.json's
 *     {@code added_tokens_decoder}, {@code added_tokens.json} and the named special tokens (unk/sep/pad/cls/mask/
 *     bos/eos/additional); special ones are matched as written, others after normalization (transformers'
 *     {@code normalized = not special}). If tokenizer_config.json sets {@code add_bos_token}/{@code add_eos_token},
 *     the template becomes bos … eos instead. The seed's Wenzhong lines ({@code 21134 … 21133}) are wrapped by its
 *     training script, not by BertTokenizer: encode without special tokens and add those ids explicitly.</li>
 * <li>{@code vocab.json} + {@code merges.txt} (or OpenAI's {@code encoder.json} + {@code vocab.bpe}): GPT2Tokenizer —
 *     byte-level pre-tokenizer with the GPT-2 regex, no prefix space, no special tokens added by encode,
 *     {@code <|endoftext|>} a special added token.</li>
 * <li>{@code tokenizer.model}: SentencePiece BPE (protobuf read by hand) as sentencepiece encodes: ▁ for spaces and a
 *     dummy prefix, byte fallback, merges ranked by the merged piece's score, user-defined pieces matched whole,
 *     &lt;s&gt; first. Control pieces written in the text (&lt;s&gt;, &lt;/s&gt;) are matched as special tokens, as
 *     transformers does (sentencepiece alone would spell them out). Unigram models and precompiled normalization
 *     rules are refused with a hint to use tokenizer.json. {@code SentencePieceWriter} appends
 *     pieces to a base model's bytes ({@code tokenizer extend} on a LLaMA base writes both files).</li>
 * </ul>
 *
 * <p>Decoding is for people: special tokens are skipped (so no [PAD] or end-of-text runs), {@code ##} pieces and
 * byte-level/byte-fallback pieces are joined, and the WordPiece decoder writes no space next to a CJK character or
 * CJK punctuation/full-width form (HF writes "我 爱 你"), while Latin words keep their spaces; the English clean-up
 * of transformers ({@code " ."→"."}, {@code " n't"}, …) is applied to the joined text.
 *
 * <p>Character classes follow the tokenizers library exactly, including where its Unicode tables are older than the
 * JDK's (see {@code Unicode}); the test-scope {@code UnicodeSweep} checks every code point against HF.
 */
package dev.cpt4j.tokenizer;
