package dev.cpt4j.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The safetensors format (huggingface/safetensors): an 8-byte little-endian header length N, N bytes of JSON
 * {@code {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}} padded with
 * spaces, then the tensor bytes, little-endian, offsets relative to the end of the header.
 *
 * <p>Reading memory-maps the file in an explicit shared {@link Arena} (closed by {@link #close()}; {@link #readFloats}
 * maps each tensor on its own and unmaps it at once, so loading adds no file pages to the resident set) and validates
 * the header fully before anything is read: its length against the file size and {@link #MAX_HEADER_BYTES}, every
 * dtype, shape and offset range against the data size, and overlaps. F32, F16, BF16 and F64 convert to float;
 * integer and bool tensors are recognised and can be read raw. Writing produces what the Rust library writes:
 * tensors sorted by name, header padded with spaces to a multiple of 8, through a temporary file renamed into place.
 * Not supported: big-endian files (the format is little-endian by definition), F8 types.
 */
public final class Safetensors implements TensorSource {
    /** Largest header accepted (the Rust library also caps it at 100 MB), so a corrupt length cannot exhaust memory. */
    public static final long MAX_HEADER_BYTES = 100L * 1000 * 1000;

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64_LE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private record Entry(TensorInfo info, long begin, long end) {}

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;  // the bytes after the header
    private final long dataStart;      // their offset in the file
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;

    private Safetensors(Path path, Arena arena, MemorySegment data, long dataStart, Map<String, Entry> entries,
                        Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.dataStart = dataStart;
        this.entries = entries;
        this.metadata = metadata;
    }

    /** Opens and validates {@code file}; any problem is a one-line {@link UserError} naming the file. */
    public static Safetensors open(Path file) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8)
                throw new UserError(file + ": file has " + size + " bytes, too short to be safetensors (8-byte header length"
                        + " missing); the file is truncated or not safetensors — download or save it again");
            ByteBuffer lenBuf = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, lenBuf, 0);
            long n = lenBuf.getLong(0);
            // n is an unsigned u64: negative here means >= 2^63.
            if (n < 0 || n > size - 8)
                throw new UserError(file + ": safetensors header length " + Long.toUnsignedString(n) + " is beyond the end of"
                        + " the file (" + size + " bytes); the file is truncated or not safetensors — download or save it again");
            if (n > MAX_HEADER_BYTES)
                throw new UserError(file + ": safetensors header length " + n + " exceeds the " + MAX_HEADER_BYTES
                        + "-byte limit; the file is corrupt or not safetensors");
            if (n < 2)
                throw new UserError(file + ": safetensors header length " + n + " is too small for a JSON header; the file is corrupt");
            ByteBuffer hdr = ByteBuffer.allocate((int) n);
            readFully(ch, hdr, 8);
            byte[] hb = hdr.array();
            if (hb[0] != '{')
                throw new UserError(file + ": safetensors header does not start with '{'; the file is corrupt or not safetensors");
            ObjectNode json = Json.parseObject(hb, file + " (safetensors header)");
            long dataSize = size - 8 - n;
            Map<String, String> meta = new LinkedHashMap<>();
            List<Entry> list = new ArrayList<>();
            for (var it = json.properties().iterator(); it.hasNext(); ) {
                var e = it.next();
                String name = e.getKey();
                JsonNode v = e.getValue();
                if (name.equals("__metadata__")) {
                    if (!v.isObject()) throw bad(file, "__metadata__ must be an object of strings");
                    for (var m : v.properties()) {
                        if (!m.getValue().isTextual()) throw bad(file, "__metadata__ value '" + m.getKey() + "' must be a string");
                        meta.put(m.getKey(), m.getValue().asText());
                    }
                    continue;
                }
                list.add(parseEntry(file, name, v, dataSize));
            }
            // Offsets must not overlap (the Rust library additionally requires them contiguous; we only need them disjoint).
            List<Entry> sorted = new ArrayList<>(list);
            sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
            for (int i = 1; i < sorted.size(); i++) {
                Entry a = sorted.get(i - 1), b = sorted.get(i);
                if (b.begin < a.end && b.begin != b.end && a.begin != a.end)
                    throw bad(file, "tensors '" + a.info.name() + "' and '" + b.info.name() + "' overlap (data_offsets "
                            + a.begin + ".." + a.end + " and " + b.begin + ".." + b.end + ")");
            }
            Map<String, Entry> entries = new LinkedHashMap<>();
            for (Entry e : sorted) entries.put(e.info.name(), e);
            MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            MemorySegment data = all.asSlice(8 + n, dataSize);
            return new Safetensors(file, arena, data, 8 + n, entries, Collections.unmodifiableMap(meta));
        } catch (NoSuchFileException e) {
            arena.close();
            throw new UserError(file + ": file not found; check the path");
        } catch (IOException e) {
            arena.close();
            throw new UserError(file + ": cannot read (" + e.getMessage() + ")", e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static Entry parseEntry(Path file, String name, JsonNode v, long dataSize) {
        if (!v.isObject()) throw bad(file, "entry '" + name + "' must be an object with dtype, shape and data_offsets");
        JsonNode dt = v.get("dtype"), sh = v.get("shape"), off = v.get("data_offsets");
        if (dt == null || !dt.isTextual()) throw bad(file, "tensor '" + name + "' has no dtype string");
        DType dtype = DType.fromSafetensors(dt.asText());
        if (dtype == null)
            throw bad(file, "tensor '" + name + "' has dtype " + dt.asText() + ", which cpt4j does not read (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)");
        if (sh == null || !sh.isArray()) throw bad(file, "tensor '" + name + "' has no shape array");
        long[] shape = new long[sh.size()];
        long numel = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.canConvertToExactIntegral() || !d.canConvertToLong() || d.asLong() < 0)
                throw bad(file, "tensor '" + name + "' has an invalid shape " + sh);
            shape[i] = d.asLong();
            try {
                numel = Math.multiplyExact(numel, shape[i]);
            } catch (ArithmeticException ex) {
                throw bad(file, "tensor '" + name + "' shape " + sh + " overflows");
            }
        }
        if (off == null || !off.isArray() || off.size() != 2 || !off.get(0).canConvertToLong() || !off.get(1).canConvertToLong()
                || !off.get(0).isIntegralNumber() || !off.get(1).isIntegralNumber())
            throw bad(file, "tensor '" + name + "' has no data_offsets [begin, end]");
        long begin = off.get(0).asLong(), end = off.get(1).asLong();
        if (begin < 0 || end < begin) throw bad(file, "tensor '" + name + "' has invalid data_offsets " + off);
        long want;
        try {
            want = Math.multiplyExact(numel, dtype.bytes());
        } catch (ArithmeticException ex) {
            throw bad(file, "tensor '" + name + "' is too large");
        }
        if (end - begin != want)
            throw bad(file, "tensor '" + name + "' data_offsets " + off + " span " + (end - begin) + " bytes but dtype "
                    + dtype + " and shape " + sh + " need " + want);
        if (end > dataSize)
            throw new UserError(file + ": tensor '" + name + "' ends at data byte " + end + " but the file holds only "
                    + dataSize + " data bytes; the file is truncated (incomplete download or interrupted save) — download or save it again");
        return new Entry(new TensorInfo(name, dtype, shape), begin, end);
    }

    private static UserError bad(Path file, String what) {
        return new UserError(file + ": invalid safetensors header: " + what + "; the file is corrupt — download or save it again");
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        while (buf.hasRemaining()) {
            int r = ch.read(buf, pos);
            if (r < 0) throw new IOException("unexpected end of file");
            pos += r;
        }
    }

    @Override
    public Path path() {
        return path;
    }

    /** The {@code __metadata__} map (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    @Override
    public List<String> names() {
        return List.copyOf(entries.keySet());
    }

    @Override
    public TensorInfo info(String name) {
        Entry e = entries.get(name);
        return e == null ? null : e.info;
    }

    /** The tensor's raw little-endian bytes, a read-only view valid until {@link #close()}. */
    public MemorySegment raw(String name) {
        Entry e = entry(name);
        return data.asSlice(e.begin, e.end - e.begin).asReadOnly();
    }

    private Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new UserError(path + ": no tensor named '" + name + "' in this file");
        return e;
    }

    @Override
    public void readFloats(String name, float[] dst, int dstOff) {
        Entry e = entry(name);
        TensorInfo t = e.info;
        if (!t.dtype().isFloating())
            throw new UserError(path + ": tensor '" + name + "' has dtype " + t.dtype() + " but a floating-point tensor"
                    + " (F32, F16, BF16, F64) is expected here; the file does not hold what this model needs");
        long n = t.numel();
        if (dstOff < 0 || n > dst.length - (long) dstOff)
            throw new IllegalArgumentException(name + ": " + n + " elements do not fit at offset " + dstOff + " of " + dst.length);
        if (n == 0) return;
        // Through a mapping of this tensor alone, unmapped right after: pages of a mapped file count in the process's
        // resident memory while mapped, so reading a whole checkpoint through the file-wide mapping would add the
        // file's size to the peak RSS on top of the floats it fills (a 110M model: ~400 MB).
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ); Arena a = Arena.ofConfined()) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin, e.end - e.begin, a);
            convert(seg, 0, t.dtype(), dst, dstOff, (int) n);
        } catch (IOException ex) {
            throw new UserError(path + ": cannot read tensor '" + name + "' (" + ex.getMessage() + ")", ex);
        }
    }

    /** bf16 tensors are copied bit for bit; other floating-point dtypes are converted and rounded to nearest-even. */
    @Override
    public void readBf16(String name, short[] dst, int dstOff) {
        Entry e = entry(name);
        TensorInfo t = e.info;
        if (t.dtype() != DType.BF16) {
            TensorSource.super.readBf16(name, dst, dstOff);
            return;
        }
        long n = t.numel();
        if (dstOff < 0 || n > dst.length - (long) dstOff)
            throw new IllegalArgumentException(name + ": " + n + " elements do not fit at offset " + dstOff + " of " + dst.length);
        if (n == 0) return;
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ); Arena a = Arena.ofConfined()) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, dataStart + e.begin, e.end - e.begin, a);
            MemorySegment.copy(seg, I16_LE, 0, dst, dstOff, (int) n);
        } catch (IOException ex) {
            throw new UserError(path + ": cannot read tensor '" + name + "' (" + ex.getMessage() + ")", ex);
        }
    }

    /** Converts {@code n} little-endian elements of {@code type} at byte {@code off} of {@code src} to float. */
    static void convert(MemorySegment src, long off, DType type, float[] dst, int dstOff, int n) {
        switch (type) {
            case F32 -> MemorySegment.copy(src, F32_LE, off, dst, dstOff, n);
            case F16 -> {
                for (int i = 0; i < n; i++) dst[dstOff + i] = Float.float16ToFloat(src.get(I16_LE, off + 2L * i));
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) dst[dstOff + i] = DType.bf16ToFloat(src.get(I16_LE, off + 2L * i));
            }
            case F64 -> {
                for (int i = 0; i < n; i++) dst[dstOff + i] = (float) src.get(F64_LE, off + 8L * i);
            }
            default -> throw new IllegalArgumentException("not a floating-point dtype: " + type);
        }
    }

    /** Reads an I64 or I32 tensor as longs (e.g. position ids or token counts). */
    public long[] readLongs(String name) {
        Entry e = entry(name);
        TensorInfo t = e.info;
        long n = t.numel();
        long[] out = new long[Math.toIntExact(n)];
        switch (t.dtype()) {
            case I64 -> MemorySegment.copy(data, I64_LE, e.begin, out, 0, out.length);
            case I32 -> {
                for (int i = 0; i < out.length; i++)
                    out[i] = data.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), e.begin + 4L * i);
            }
            default -> throw new UserError(path + ": tensor '" + name + "' has dtype " + t.dtype() + ", expected an integer tensor (I64 or I32)");
        }
        return out;
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) arena.close();
    }

    // ---------------------------------------------------------------- writing

    /** One float tensor to write: {@code data[offset .. offset + numel)} in row-major order with {@code shape}. */
    public record FloatTensor(String name, long[] shape, float[] data, int offset) {
        public FloatTensor {
            shape = shape.clone();
            long n = 1;
            for (long d : shape) {
                if (d < 0) throw new IllegalArgumentException(name + ": negative dimension");
                n *= d;
            }
            if (offset < 0 || offset + n > data.length)
                throw new IllegalArgumentException(name + ": " + n + " elements at offset " + offset + " exceed the buffer of " + data.length);
        }

        public static FloatTensor of(String name, int[] shape, float[] data, int offset) {
            long[] s = new long[shape.length];
            for (int i = 0; i < s.length; i++) s[i] = shape[i];
            return new FloatTensor(name, s, data, offset);
        }

        public long numel() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }
    }

    /**
     * Writes {@code tensors} to {@code file} as {@code dtype} (F32, F16 or BF16; rounding to nearest even) with the
     * given {@code __metadata__} (may be empty), atomically. Tensors are sorted by name, as the Rust library does.
     * The data streams from the given arrays through a 1 MiB buffer: no copy of a tensor is made.
     */
    public static void write(Path file, List<FloatTensor> tensors, Map<String, String> metadata, DType dtype) {
        write(file, tensors, metadata, dtype, AtomicFiles.Channels.DIRECT);
    }

    /** As {@link #write(Path, List, Map, DType)}, the bytes passing through {@code via} (tests inject write failures). */
    public static void write(Path file, List<FloatTensor> tensors, Map<String, String> metadata, DType dtype,
                             AtomicFiles.Channels via) {
        if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16)
            throw new IllegalArgumentException("safetensors writer supports F32, F16, BF16, not " + dtype);
        List<FloatTensor> sorted = new ArrayList<>(tensors);
        sorted.sort(Comparator.comparing(FloatTensor::name));
        for (int i = 1; i < sorted.size(); i++)
            if (sorted.get(i).name().equals(sorted.get(i - 1).name()))
                throw new IllegalArgumentException("duplicate tensor name " + sorted.get(i).name());
        byte[] header = header(sorted, metadata, dtype);
        AtomicFiles.write(file, ch -> {
            ByteBuffer lb = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            writeFully(ch, lb);
            writeFully(ch, ByteBuffer.wrap(header));
            ByteBuffer buf = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (FloatTensor t : sorted) {
                long n = t.numel();
                long i = 0;
                while (i < n) {
                    if (buf.remaining() < 4) {
                        buf.flip();
                        writeFully(ch, buf);
                        buf.clear();
                    }
                    int k = (int) Math.min(n - i, buf.remaining() / dtype.bytes());
                    int from = (int) (t.offset() + i);
                    switch (dtype) {
                        case F32 -> {
                            buf.asFloatBuffer().put(t.data(), from, k);
                            buf.position(buf.position() + 4 * k);
                        }
                        case F16 -> {
                            for (int j = 0; j < k; j++) buf.putShort(Float.floatToFloat16(t.data()[from + j]));
                        }
                        default -> {
                            for (int j = 0; j < k; j++) buf.putShort(DType.floatToBf16(t.data()[from + j]));
                        }
                    }
                    i += k;
                }
            }
            buf.flip();
            writeFully(ch, buf);
        }, via);
    }

    private static byte[] header(List<FloatTensor> sorted, Map<String, String> metadata, DType dtype) {
        // Compact JSON, "__metadata__" first, then tensors in data order: the layout the Rust library writes.
        StringBuilder sb = new StringBuilder("{");
        boolean first = true;
        if (metadata != null && !metadata.isEmpty()) {
            sb.append("\"__metadata__\":{");
            boolean f2 = true;
            for (var m : metadata.entrySet()) {
                if (!f2) sb.append(',');
                f2 = false;
                sb.append(quote(m.getKey())).append(':').append(quote(m.getValue()));
            }
            sb.append('}');
            first = false;
        }
        long off = 0;
        for (FloatTensor t : sorted) {
            if (!first) sb.append(',');
            first = false;
            long bytes = t.numel() * dtype.bytes();
            sb.append(quote(t.name())).append(":{\"dtype\":\"").append(dtype.name()).append("\",\"shape\":[");
            for (int i = 0; i < t.shape().length; i++) {
                if (i > 0) sb.append(',');
                sb.append(t.shape()[i]);
            }
            sb.append("],\"data_offsets\":[").append(off).append(',').append(off + bytes).append("]}");
            off += bytes;
        }
        sb.append('}');
        byte[] b = sb.toString().getBytes(StandardCharsets.UTF_8);
        int pad = (8 - b.length % 8) % 8;  // the Rust library pads the header with spaces to a multiple of 8
        byte[] out = java.util.Arrays.copyOf(b, b.length + pad);
        java.util.Arrays.fill(out, b.length, out.length, (byte) ' ');
        return out;
    }

    private static String quote(String s) {
        try {
            return Json.MAPPER.writeValueAsString(s);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void writeFully(java.nio.channels.WritableByteChannel ch, ByteBuffer b) throws IOException {
        AtomicFiles.writeFully(ch, b);
    }
}
