/**
 * Corpus → training blocks. {@link dev.cpt4j.data.Prepare} reads corpus files ({@link dev.cpt4j.data.CorpusSource}),
 * tokenizes them on worker threads, concatenates the ids, cuts {@code block_size} blocks, holds out a seeded
 * validation sample and writes a memory-mapped {@link dev.cpt4j.data.TokenStore}; {@link dev.cpt4j.data.BatchCursor}
 * serves shuffled, resumable batches from it. Depends on {@code tokenizer} (the {@code Tokenizer} interface) only.
 */
package dev.cpt4j.data;
