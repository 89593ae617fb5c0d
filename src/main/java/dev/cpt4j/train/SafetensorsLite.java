package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Minimal F32 safetensors writer/reader for checkpoint files only (trainable tensors and optimizer moments).
 * Format: 8-byte little-endian header length, JSON header ({@code __metadata__} + per-tensor dtype, shape,
 * data_offsets), padded with spaces to 8 bytes, then raw little-endian data. Private to the train package: the
 * general safetensors support belongs to {@code io}; this exists so checkpoints do not wait on it.
 */
final class SafetensorsLite {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L << 20;

    /** One tensor to write: {@code data[offset, offset + prod(shape))}. */
    record Entry(String name, int[] shape, float[] data, int offset) {
        long count() {
            long n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    private SafetensorsLite() {}

    static void write(Path file, List<Entry> entries, Map<String, String> metadata) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        ObjectNode meta = header.putObject("__metadata__");
        metadata.forEach(meta::put);
        long pos = 0;
        for (Entry e : entries) {
            ObjectNode t = header.putObject(e.name);
            t.put("dtype", "F32");
            var shape = t.putArray("shape");
            for (int d : e.shape) shape.add(d);
            long bytes = e.count() * 4;
            t.putArray("data_offsets").add(pos).add(pos + bytes);
            pos += bytes;
        }
        byte[] h = JSON.writeValueAsBytes(header);
        int padded = (h.length + 7) & ~7;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(h);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            while (head.hasRemaining()) ch.write(head);
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            for (Entry e : entries) {
                int n = (int) e.count(), done = 0;
                while (done < n) {
                    int k = Math.min(n - done, buf.capacity() / 4);
                    buf.clear();
                    buf.asFloatBuffer().put(e.data, e.offset + done, k);
                    buf.limit(k * 4);
                    while (buf.hasRemaining()) ch.write(buf);
                    done += k;
                }
            }
            ch.force(true);
        }
    }

    /** A read file: header and the file's bytes after it. */
    record Read(JsonNode header, ByteBuffer data, Path file) {
        Map<String, String> metadata() {
            Map<String, String> out = new LinkedHashMap<>();
            JsonNode m = header.get("__metadata__");
            if (m != null) m.properties().forEach(en -> out.put(en.getKey(), en.getValue().asText()));
            return out;
        }

        /** Copies tensor {@code name} (checked to have {@code shape}) into {@code dst[offset…]}. */
        void readInto(String name, int[] shape, float[] dst, int offset) {
            JsonNode t = header.get(name);
            if (t == null) throw new UserError(file + ": tensor " + name + " is missing; the checkpoint does not "
                    + "match this model (resume with the same --trainable/--modules_to_save/--lora_rank)");
            if (!"F32".equals(t.path("dtype").asText())) throw new UserError(file + ": tensor " + name + " is not F32");
            JsonNode s = t.get("shape");
            boolean same = s != null && s.size() == shape.length;
            for (int i = 0; same && i < shape.length; i++) same = s.get(i).asLong() == shape[i];
            if (!same) throw new UserError(file + ": tensor " + name + " has shape " + s + ", the model expects "
                    + java.util.Arrays.toString(shape) + "; resume with the same model and LoRA settings");
            long b = t.get("data_offsets").get(0).asLong(), e = t.get("data_offsets").get(1).asLong();
            long n = 1;
            for (int d : shape) n *= d;
            if (e - b != n * 4 || b < 0 || e > data.capacity())
                throw new UserError(file + ": tensor " + name + " has bad data offsets; the file is damaged");
            ByteBuffer view = data.duplicate().order(ByteOrder.LITTLE_ENDIAN).position((int) b).limit((int) e).slice()
                    .order(ByteOrder.LITTLE_ENDIAN);
            view.asFloatBuffer().get(dst, offset, (int) n);
        }

        Iterator<String> names() {
            Iterator<String> it = header.fieldNames();
            return new Iterator<>() {
                String next = advance();

                private String advance() {
                    while (it.hasNext()) {
                        String n = it.next();
                        if (!n.equals("__metadata__")) return n;
                    }
                    return null;
                }

                public boolean hasNext() {
                    return next != null;
                }

                public String next() {
                    String n = next;
                    next = advance();
                    return n;
                }
            };
        }
    }

    static Read read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) throw new UserError(file + ": not a safetensors file (too short); the checkpoint is damaged");
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            while (len.hasRemaining() && ch.read(len) >= 0) { }
            long n = len.flip().getLong();
            if (n <= 0 || n > MAX_HEADER || 8 + n > size)
                throw new UserError(file + ": bad safetensors header length " + n + "; the checkpoint is damaged");
            if (size - 8 - n > Integer.MAX_VALUE) throw new UserError(file + ": too large for this reader");
            ByteBuffer h = ByteBuffer.allocate((int) n);
            while (h.hasRemaining() && ch.read(h) >= 0) { }
            JsonNode header = JSON.readTree(new String(h.array(), StandardCharsets.UTF_8));
            ByteBuffer data = ch.map(FileChannel.MapMode.READ_ONLY, 8 + n, size - 8 - n);
            return new Read(header, data, file);
        }
    }
}
