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
        if (total + n > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("model too large for one heap buffer (" + (total + n) + " floats)");
        View v = new View(name, (int) total, shape.clone());
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

    /** Total number of floats. */
    public int size() {
        return (int) total;
    }
}
