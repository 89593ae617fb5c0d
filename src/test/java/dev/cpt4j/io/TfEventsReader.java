package dev.cpt4j.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads TensorBoard event files back for the tests, independently of {@link TfEvents}: checks both masked CRCs of
 * every TFRecord and decodes the Event fields the writer uses with a generic protobuf wire-format walk.
 */
public final class TfEventsReader {
    /** One event: step, wall time, file_version (or null), scalars tag → value, session_log status (0: none). */
    public record Event(long step, double wallTime, String fileVersion, Map<String, Float> scalars, int sessionStatus) {}

    public static List<Event> read(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        List<Event> out = new ArrayList<>();
        while (b.hasRemaining()) {
            byte[] head = new byte[8];
            b.get(head);
            int headCrc = b.getInt();
            if (headCrc != TfEvents.maskedCrc(head, 0, 8)) throw new IOException(file + ": bad length CRC");
            long len = ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getLong();
            byte[] data = new byte[Math.toIntExact(len)];
            b.get(data);
            if (b.getInt() != TfEvents.maskedCrc(data, 0, data.length)) throw new IOException(file + ": bad data CRC");
            out.add(event(data));
        }
        return out;
    }

    private static Event event(byte[] data) throws IOException {
        long step = 0;
        double wall = 0;
        String version = null;
        Map<String, Float> scalars = new LinkedHashMap<>();
        int status = 0;
        for (Field f : fields(data)) {
            switch (f.number) {
                case 1 -> wall = Double.longBitsToDouble(f.fixed);
                case 2 -> step = f.varint;
                case 3 -> version = new String(f.bytes, StandardCharsets.UTF_8);
                case 5 -> {
                    for (Field v : fields(f.bytes)) {
                        if (v.number != 1) continue;
                        String tag = null;
                        Float value = null;
                        for (Field x : fields(v.bytes)) {
                            if (x.number == 1) tag = new String(x.bytes, StandardCharsets.UTF_8);
                            if (x.number == 2) value = Float.intBitsToFloat((int) x.fixed);
                        }
                        scalars.put(tag, value);
                    }
                }
                case 7 -> {
                    for (Field x : fields(f.bytes)) if (x.number == 1) status = (int) x.varint;
                }
                default -> throw new IOException("unexpected Event field " + f.number);
            }
        }
        return new Event(step, wall, version, scalars, status);
    }

    private record Field(int number, long varint, long fixed, byte[] bytes) {}

    private static List<Field> fields(byte[] b) throws IOException {
        List<Field> out = new ArrayList<>();
        int[] pos = {0};
        while (pos[0] < b.length) {
            long key = varint(b, pos);
            int number = (int) (key >>> 3), wire = (int) (key & 7);
            switch (wire) {
                case 0 -> out.add(new Field(number, varint(b, pos), 0, null));
                case 1 -> {
                    long v = ByteBuffer.wrap(b, pos[0], 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
                    pos[0] += 8;
                    out.add(new Field(number, 0, v, null));
                }
                case 5 -> {
                    long v = ByteBuffer.wrap(b, pos[0], 4).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xFFFFFFFFL;
                    pos[0] += 4;
                    out.add(new Field(number, 0, v, null));
                }
                case 2 -> {
                    int n = Math.toIntExact(varint(b, pos));
                    byte[] sub = java.util.Arrays.copyOfRange(b, pos[0], pos[0] + n);
                    pos[0] += n;
                    out.add(new Field(number, 0, 0, sub));
                }
                default -> throw new IOException("wire type " + wire);
            }
        }
        return out;
    }

    private static long varint(byte[] b, int[] pos) {
        long v = 0;
        for (int shift = 0; ; shift += 7) {
            int x = b[pos[0]++] & 0xFF;
            v |= (long) (x & 0x7F) << shift;
            if ((x & 0x80) == 0) return v;
        }
    }

    /** The event files under {@code dir}, recursively, sorted by name. */
    public static List<Path> files(Path dir) throws IOException {
        try (var s = Files.walk(dir)) {
            return s.filter(p -> p.getFileName().toString().contains(TfEvents.FILE_MARKER)).sorted().toList();
        }
    }
}
