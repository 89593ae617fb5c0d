package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --data_cache_dir} without {@code --dataset_dir} refuses a token cache prepared with another tokenizer
 * (here: the same 48 tokens in another order — same vocabulary size, other ids), and with the corpus given rebuilds it.
 */
class DataCacheTokenizerTest {
    @Test
    void aCacheOfAnotherTokenizerIsRefusedOrRebuilt(@TempDir Path tmp) throws IOException {
        Path modelA = TrainEndToEndTest.tinyModel(tmp.resolve("a"), 48);
        Path modelB = TrainEndToEndTest.tinyModel(tmp.resolve("b"), 48);
        List<String> vocab = new ArrayList<>(Files.readAllLines(modelB.resolve("vocab.txt"), StandardCharsets.UTF_8));
        Collections.reverse(vocab.subList(7, vocab.size()));          // same tokens, other ids
        Files.write(modelB.resolve("vocab.txt"), vocab, StandardCharsets.UTF_8);
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data")), cache = tmp.resolve("cache");

        TrainEndToEndTest.Run prep = TrainEndToEndTest.run("prepare", "--tokenizer", modelA.toString(), "--dataset_dir",
                data.toString(), "--block_size", "16", "--output", cache.toString(), "--validation_split_percentage", "0.05",
                "--no-progress");
        assertThat(prep.code()).as(prep.err()).isZero();

        List<String> args = oneStep(TrainEndToEndTest.seedArgs(modelB, data, cache, tmp.resolve("out")));
        int i = args.indexOf("--dataset_dir");
        args.subList(i, i + 2).clear();
        TrainEndToEndTest.Run refused = TrainEndToEndTest.run(args.toArray(String[]::new));
        assertThat(refused.code()).as(refused.err()).isEqualTo(2);
        String line = refused.err().lines().filter(l -> l.contains("another tokenizer")).findFirst().orElse(refused.err());
        assertThat(line).contains("--data_cache_dir " + cache).contains("tokenizer fingerprint").contains("--dataset_dir");
        assertThat(refused.err()).doesNotContain("Exception").doesNotContain("\tat ");
        assertThat(tmp.resolve("out").resolve("adapter_model.safetensors")).doesNotExist();

        TrainEndToEndTest.Run rebuilt = TrainEndToEndTest.run(oneStep(TrainEndToEndTest.seedArgs(modelB, data, cache,
                tmp.resolve("out2"))).toArray(String[]::new));
        assertThat(rebuilt.code()).as(rebuilt.err()).isZero();
        assertThat(rebuilt.err()).contains("rebuilding " + cache).contains("tokenizer changed");
    }

    private static List<String> oneStep(String[] seedArgs) {
        List<String> args = new ArrayList<>(List.of(seedArgs));
        args.set(args.indexOf("--max_steps") + 1, "1");
        return args;
    }
}
