package dev.cpt4j.tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Named views into one flat float buffer: every parameter tensor of a model (and, with the same layout, its
 * gradients and AdamW moments) lives at a fixed offset of one allocation (llm.c's malloc_and_point_parameters).
 */
public final class ParamLayout {
    /** One tensor of the layout: row-major {@code shape} starting at {@code offset} of the flat buffer. */
    public record View(String name, int offset, int[] shape) {
        public int size() {
            int n = 1;
            for (int d : shape) n *= d;
            return n;
        }

        public String shapeString() {
            return java.util.Arrays.toString(shape);
        }
    }

    private final Map<String, View> views = new LinkedHashMap<>();
    private long total;

    /** Appends a tensor; returns its view. Names must be unique. */
    public View add(String name, int... shape) {
        if (views.containsKey(name)) throw new IllegalArgumentException("duplicate parameter " + name);
        long n = 1;
        for (int d : shape) {
            if (d <= 0) throw new IllegalArgumentException("parameter " + name + " has a non-positive dimension");
            n *= d;
        }
        // past one heap array's reach the view has no offset (−1): such a layout names and shapes tensors stored
        // one by one (WeightStore), and size() refuses a flat buffer
        View v = new View(name, total + n > MAX_FLAT ? -1 : (int) total, shape.clone());
        views.put(name, v);
        total += n;
        return v;
    }

    public View get(String name) {
        View v = views.get(name);
        if (v == null) throw new IllegalArgumentException("no parameter named " + name);
        return v;
    }

    public boolean has(String name) {
        return views.containsKey(name);
    }

    public List<View> views() {
        return Collections.unmodifiableList(new ArrayList<>(views.values()));
    }

    /** Most floats one flat buffer (a Java array) holds. */
    public static final long MAX_FLAT = Integer.MAX_VALUE - 16;

    /** Total number of floats, which one flat buffer must hold; a larger model is a {@link dev.cpt4j.UserError}. */
    public int size() {
        if (total > MAX_FLAT)
            throw new dev.cpt4j.UserError(String.format(java.util.Locale.ROOT, "the model has %,d parameters, more than "
                    + "one fp32 buffer holds (%,d); this command needs it in one buffer — `cpt4j bench load` shows the "
                    + "per-tensor (bf16) inference path that has no such limit", total, MAX_FLAT));
        return (int) total;
    }

    /** Total number of floats, without the one-buffer limit. */
    public long totalSize() {
        return total;
    }
}
