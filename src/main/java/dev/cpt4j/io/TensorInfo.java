package dev.cpt4j.io;

import java.util.Arrays;

/** Name, element type and row-major shape of one tensor in a checkpoint file. */
public record TensorInfo(String name, DType dtype, long[] shape) {
    public TensorInfo {
        shape = shape.clone();
    }

    /** Number of elements (1 for a scalar). */
    public long numel() {
        long n = 1;
        for (long d : shape) n = Math.multiplyExact(n, d);
        return n;
    }

    /** True when the shape equals {@code other} dimension by dimension. */
    public boolean shapeEquals(int[] other) {
        if (other.length != shape.length) return false;
        for (int i = 0; i < shape.length; i++) if (shape[i] != other[i]) return false;
        return true;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && t.name.equals(name) && t.dtype == dtype && Arrays.equals(t.shape, shape);
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtype + shapeString();
    }
}
