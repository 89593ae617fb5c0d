package dev.cpt4j.serve;

import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.io.DType;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** Test adapters: a golden adapter with its embedding copies cut back to the base's vocabulary (no resize). */
final class Adapters {
    private Adapters() {}

    /** {@code a} with every 2-D saved tensor of more than {@code V} rows and width {@code C} cut to V rows. */
    static PeftAdapters.Adapter withVocab(PeftAdapters.Adapter a, int V, int C) {
        Map<String, PeftAdapters.Tensor> out = new LinkedHashMap<>();
        for (var e : a.tensors().entrySet()) {
            int[] s = e.getValue().shape();
            boolean embeddingCopy = !e.getKey().contains("lora_") && s.length == 2 && s[0] > V && s[1] == C;
            out.put(e.getKey(), embeddingCopy
                    ? new PeftAdapters.Tensor(new int[] {V, C}, Arrays.copyOf(e.getValue().data(), V * C)) : e.getValue());
        }
        return new PeftAdapters.Adapter(a.config(), out);
    }

    /** Writes {@link #withVocab} of the adapter in {@code src} to {@code dst}. */
    static Path writeWithVocab(Path src, Path dst, int V, int C) {
        PeftAdapters.Adapter a = withVocab(PeftAdapters.read(src), V, C);
        PeftAdapters.write(dst, a.config(), a.tensors(), DType.F32);
        return dst;
    }
}
