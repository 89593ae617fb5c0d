package dev.cpt4j.tensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Model weights stored tensor by tensor, each in its own array, fp32 or bf16 (the upper 16 bits of an fp32, as
 * {@code torch.bfloat16}): what inference needs when a model is too large for one flat buffer (more than 2³¹
 * floats) or is kept in bf16. A flat {@link ParamLayout} buffer can be viewed as a store without copying
 * ({@link #of(ParamLayout, float[])}): then every tensor is an offset into the one array.
 */
public final class WeightStore {
    /** One tensor: its values at {@code offset} of {@code f32} (or, when that is null, of {@code bf16}). */
    public record Tensor(String name, int[] shape, float[] f32, short[] bf16, int offset) {
        public long size() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }

        public boolean isBf16() {
            return f32 == null;
        }
    }

    private final Map<String, Tensor> tensors = new LinkedHashMap<>();

    /** The views of {@code layout} over {@code params}, without a copy. */
    public static WeightStore of(ParamLayout layout, float[] params) {
        WeightStore s = new WeightStore();
        for (ParamLayout.View v : layout.views()) s.put(new Tensor(v.name(), v.shape(), params, null, v.offset()));
        return s;
    }

    public void put(Tensor t) {
        tensors.put(t.name(), t);
    }

    /** The tensor called {@code name}, or null. */
    public Tensor get(String name) {
        return tensors.get(name);
    }

    public boolean has(String name) {
        return tensors.containsKey(name);
    }

    public List<Tensor> tensors() {
        return List.copyOf(tensors.values());
    }

    /** Elements over all tensors (may exceed 2³¹). */
    public long parameterCount() {
        long n = 0;
        for (Tensor t : tensors.values()) n += t.size();
        return n;
    }

    /** Bytes the arrays hold (4 per fp32 element, 2 per bf16). */
    public long bytes() {
        long n = 0;
        for (Tensor t : tensors.values()) n += t.size() * (t.isBf16() ? 2 : 4);
        return n;
    }
}
