package dev.cpt4j.data;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The blocks of one split ({@code train.bin} or {@code validation.bin}), memory-mapped: block {@code i} is tokens
 * {@code [i*T, (i+1)*T)}, little-endian u16 or u32. Reads are thread-safe.
 */
public final class TokenBlocks {
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment tokens; // (N, T) in dtype
    private final TokenDtype dtype;
    private final int blockSize;
    private final long blockCount;
    private final MemorySegment docStarts; // (N, ⌈T/8⌉) bitmaps, or null when the store has none

    TokenBlocks(MemorySegment tokens, TokenDtype dtype, int blockSize) {
        this(tokens, dtype, blockSize, null);
    }

    TokenBlocks(MemorySegment tokens, TokenDtype dtype, int blockSize, MemorySegment docStarts) {
        this.tokens = tokens;
        this.dtype = dtype;
        this.blockSize = blockSize;
        this.blockCount = tokens.byteSize() / ((long) blockSize * dtype.bytes());
        this.docStarts = docStarts;
    }

    /** Whether {@link #readDocStarts} is available (the store recorded document boundaries). */
    public boolean hasDocStarts() {
        return docStarts != null;
    }

    /**
     * Writes into {@code dst[off, off+T)}, for each token of block {@code i}, the index in the block where its document
     * begins (0 for the tokens of a document that began in an earlier block): the layout neat packing feeds the model.
     */
    public void readDocStarts(long i, int[] dst, int off) {
        if (docStarts == null) throw new IllegalStateException("this token store records no document boundaries");
        if (i < 0 || i >= blockCount) throw new IndexOutOfBoundsException("block " + i + " of " + blockCount);
        long base = i * Manifest.docBytes(blockSize);
        int start = 0;
        for (int t = 0; t < blockSize; t++) {
            if ((docStarts.get(ValueLayout.JAVA_BYTE, base + (t >>> 3)) >>> (t & 7) & 1) != 0) start = t;
            dst[off + t] = start;
        }
    }

    public long blockCount() {
        return blockCount;
    }

    /** Tokens per block (T). */
    public int blockSize() {
        return blockSize;
    }

    /** The first {@code n} blocks (all of them when {@code n} is not below {@link #blockCount()}), sharing the mapping. */
    public TokenBlocks first(long n) {
        if (n < 0) throw new IllegalArgumentException("n = " + n);
        if (n >= blockCount) return this;
        return new TokenBlocks(tokens.asSlice(0, n * blockSize * dtype.bytes()), dtype, blockSize);
    }

    /** Copies block {@code i} (T ids) into {@code dst[off, off+T)}. */
    public void readBlock(long i, int[] dst, int off) {
        if (i < 0 || i >= blockCount) throw new IndexOutOfBoundsException("block " + i + " of " + blockCount);
        long base = i * blockSize * dtype.bytes();
        if (dtype == TokenDtype.U16) {
            for (int t = 0; t < blockSize; t++) dst[off + t] = tokens.get(U16, base + 2L * t) & 0xFFFF;
        } else {
            for (int t = 0; t < blockSize; t++) dst[off + t] = tokens.get(U32, base + 4L * t);
        }
    }

    /** Block {@code i} as a new array. */
    public int[] readBlock(long i) {
        int[] out = new int[blockSize];
        readBlock(i, out, 0);
        return out;
    }
}
