package dev.cpt4j.tokenizer;

import dev.cpt4j.tensor.Parallel;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * cpt4j encode throughput on the parity corpus, 1 thread and all cores; every timed pass starts with an empty BPE
 * word cache. HF tokenizers is measured on the same text by tools/bench_hf_tokenizers.py (DJL's JNI wrapper is not
 * used for timing: its per-call overhead exceeds the Rust encode itself). Not a test. Run:
 * {@code java --add-modules jdk.incubator.vector -cp <test classpath> dev.cpt4j.tokenizer.TokenizerBench [seconds-per-case]}
 */
public final class TokenizerBench {
    interface Encoder { long run(List<String> lines); }

    static double mbPerSec(Encoder e, List<String> lines, long bytes, double seconds) {
        e.run(lines);                                   // warm-up
        long t0 = System.nanoTime();
        int reps = 0;
        long sink = 0;
        while (System.nanoTime() - t0 < seconds * 1e9 || reps < 1) {
            sink += e.run(lines);
            reps++;
        }
        double s = (System.nanoTime() - t0) / 1e9;
        if (sink == 42) System.out.print("");
        return bytes * (double) reps / s / 1e6;
    }

    public static void main(String[] args) throws Exception {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 3;
        List<String> lines = TestAssets.corpus(0);
        long bytes = 0;
        for (String l : lines) bytes += l.getBytes(StandardCharsets.UTF_8).length;
        Path tmp = Files.createTempDirectory("bench");
        Path[] files = {TestAssets.bgeTokenizerJson(tmp), TestAssets.npmFile("qwen3", "tokenizer.json"), TestAssets.npmFile("llama2", "tokenizer.json")};
        String[] names = {"bert-base-chinese WordPiece", "Qwen3 byte-level BPE", "LLaMA-2 BPE byte fallback"};
        int cores = Runtime.getRuntime().availableProcessors();
        System.out.printf("corpus: %d lines, %.2f MB UTF-8; %d cores; %.1f s per case%n", lines.size(), bytes / 1e6, cores, seconds);
        System.out.printf("%-28s %12s %12s%n", "tokenizer (MB/s)", "cpt4j 1T", "cpt4j " + cores + "T");
        try (Parallel par = Parallel.allCores()) {
            for (int k = 0; k < files.length; k++) {
                HfTokenizer h = (HfTokenizer) Tokenizer.load(files[k]);
                Encoder ours1 = ls -> {
                    h.clearCache();   // every pass starts cold: no line-level cache hits from the previous pass
                    long n = 0;
                    for (String l : ls) n += h.encode(l, true).length;
                    return n;
                };
                Encoder oursN = ls -> {
                    h.clearCache();
                    long[] n = new long[1];
                    par.forRange(ls.size(), (a, b) -> {
                        long c = 0;
                        for (int i = a; i < b; i++) c += h.encode(ls.get(i), true).length;
                        synchronized (n) { n[0] += c; }
                    });
                    return n[0];
                };
                System.out.printf("%-28s %12.2f %12.2f%n", names[k], mbPerSec(ours1, lines, bytes, seconds), mbPerSec(oursN, lines, bytes, seconds));
            }
        }
    }
}
