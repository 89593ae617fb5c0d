package dev.cpt4j.io;

import java.nio.file.Path;
import java.util.List;

/**
 * A set of named tensors stored in one or more checkpoint files (a safetensors file, a sharded safetensors
 * checkpoint, a {@code torch.save} zip), read on demand into {@code float[]} buffers.
 */
public interface TensorSource extends AutoCloseable {
    /** The file the user named (a single file, or the shard index); used in messages. */
    Path path();

    /** Tensor names in file order. */
    List<String> names();

    /** The tensor's dtype and shape, or null when there is no tensor of that name. */
    TensorInfo info(String name);

    /** The file that holds {@code name} (a shard of a sharded checkpoint; otherwise {@link #path()}). */
    default Path fileOf(String name) {
        return path();
    }

    /**
     * Reads tensor {@code name} converted to float into {@code dst[dstOff ..)}, in row-major order. Fails with a
     * {@link dev.cpt4j.UserError} naming the file when the tensor is missing, not floating-point, or does not fit.
     */
    void readFloats(String name, float[] dst, int dstOff);

    /** Reads tensor {@code name} into a new array. */
    default float[] readFloats(String name) {
        TensorInfo t = info(name);
        if (t == null) throw new dev.cpt4j.UserError(path() + ": no tensor named '" + name + "'");
        long n = t.numel();
        if (n > Integer.MAX_VALUE - 16)
            throw new dev.cpt4j.UserError(fileOf(name) + ": tensor '" + name + "' has " + n + " elements, too many for one array");
        float[] out = new float[(int) n];
        readFloats(name, out, 0);
        return out;
    }

    /**
     * Reads tensor {@code name} as bfloat16 bits into {@code dst[dstOff ..)}: copied as stored when the file holds
     * bf16, else converted to float and rounded to nearest-even. For a frozen base kept in bf16 without an fp32
     * copy of the whole tensor (a file format that stores bf16 overrides this to copy directly).
     */
    default void readBf16(String name, short[] dst, int dstOff) {
        float[] f = readFloats(name);
        for (int i = 0; i < f.length; i++) dst[dstOff + i] = DType.floatToBf16(f[i]);
    }

    @Override
    void close();
}
