package dev.cpt4j.io;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.zip.CRC32C;

/**
 * A TensorBoard event file writer: the TFRecord framing of TensorFlow's {@code record_writer.cc} around
 * {@code tensorboard.Event} protocol buffers ({@code tensorboard/compat/proto/event.proto}, {@code summary.proto}),
 * hand-encoded because only three messages with a few fields are needed.
 *
 * <p>A record is {@code uint64 length (LE) · uint32 masked_crc32c(length) · data · uint32 masked_crc32c(data)},
 * masked as {@code ((crc >>> 15) | (crc << 17)) + 0xa282ead8}. The first record is an {@code Event} with
 * {@code file_version = "brain.Event:2"}; scalars are {@code Event{wall_time=1, step=2, summary=5 {value=1
 * {tag=1, simple_value=2}}}}; {@link #sessionStart} writes {@code Event{session_log=7 {status=1 START}}}, after
 * which TensorBoard drops the events of steps at or past it (what a resumed run wants for the lost steps).
 *
 * <p>Not a general protobuf library, no reader (the tests read the files back). Every record is flushed as written so
 * a killed run keeps what it logged. File name as TensorFlow's: {@code events.out.tfevents.<secs>.<host>.<pid>.0}.
 */
public final class TfEvents implements AutoCloseable {
    /** What TensorBoard matches event files by. */
    public static final String FILE_MARKER = "tfevents";

    private final OutputStream out;
    private final Path file;

    private TfEvents(Path file, OutputStream out) {
        this.file = file;
        this.out = out;
    }

    /** Creates a new event file in {@code dir} (made if missing) and writes its version record. */
    public static TfEvents create(Path dir, String host) throws IOException {
        Files.createDirectories(dir);
        long now = System.currentTimeMillis();
        String name = "events.out." + FILE_MARKER + "." + now / 1000 + "." + host.replaceAll("[^A-Za-z0-9._-]", "_") + "."
                + ProcessHandle.current().pid() + ".0";
        Path f = dir.resolve(name);
        for (int i = 1; Files.exists(f); i++) f = dir.resolve(name.substring(0, name.length() - 1) + i);
        TfEvents w = new TfEvents(f, Files.newOutputStream(f, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE));
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        fixed64Field(e, 1, Double.doubleToRawLongBits(now / 1000.0));
        bytesField(e, 3, "brain.Event:2".getBytes(StandardCharsets.UTF_8));
        w.record(e.toByteArray());
        return w;
    }

    public Path file() {
        return file;
    }

    /** One event holding the scalars {@code tag → value} of {@code step}, in the map's order. */
    public void scalars(long step, Map<String, Double> values) throws IOException {
        ByteArrayOutputStream summary = new ByteArrayOutputStream();
        for (Map.Entry<String, Double> v : values.entrySet()) {
            ByteArrayOutputStream value = new ByteArrayOutputStream();
            bytesField(value, 1, v.getKey().getBytes(StandardCharsets.UTF_8));
            fixed32Field(value, 2, Float.floatToRawIntBits(v.getValue().floatValue()));
            bytesField(summary, 1, value.toByteArray());
        }
        ByteArrayOutputStream e = header(step);
        bytesField(e, 5, summary.toByteArray());
        record(e.toByteArray());
    }

    /** A {@code SessionLog START} at {@code step}: TensorBoard discards this run's events of steps ≥ {@code step}. */
    public void sessionStart(long step) throws IOException {
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        varintField(log, 1, 1);                        // status = START
        ByteArrayOutputStream e = header(step);
        bytesField(e, 7, log.toByteArray());
        record(e.toByteArray());
    }

    private static ByteArrayOutputStream header(long step) {
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        fixed64Field(e, 1, Double.doubleToRawLongBits(System.currentTimeMillis() / 1000.0));
        varintField(e, 2, step);
        return e;
    }

    /** Writes one TFRecord and flushes it. */
    void record(byte[] data) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(data.length);
        head.putInt(maskedCrc(head.array(), 0, 8));
        ByteBuffer tail = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(maskedCrc(data, 0, data.length));
        out.write(head.array());
        out.write(data);
        out.write(tail.array());
        out.flush();
    }

    /** TFRecord's masked CRC32C ({@code tensorflow/core/lib/hash/crc32c.h}, {@code Mask}). */
    public static int maskedCrc(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        int crc = (int) c.getValue();
        return ((crc >>> 15) | (crc << 17)) + 0xa282ead8;
    }

    private static void tag(ByteArrayOutputStream o, int field, int wireType) {
        varint(o, ((long) field << 3) | wireType);
    }

    private static void varint(ByteArrayOutputStream o, long v) {
        while ((v & ~0x7FL) != 0) {
            o.write((int) ((v & 0x7F) | 0x80));
            v >>>= 7;
        }
        o.write((int) v);
    }

    private static void varintField(ByteArrayOutputStream o, int field, long v) {
        tag(o, field, 0);
        varint(o, v);
    }

    private static void fixed64Field(ByteArrayOutputStream o, int field, long bits) {
        tag(o, field, 1);
        for (int i = 0; i < 8; i++) o.write((int) (bits >>> (8 * i)));
    }

    private static void fixed32Field(ByteArrayOutputStream o, int field, int bits) {
        tag(o, field, 5);
        for (int i = 0; i < 4; i++) o.write(bits >>> (8 * i));
    }

    private static void bytesField(ByteArrayOutputStream o, int field, byte[] b) {
        tag(o, field, 2);
        varint(o, b.length);
        o.writeBytes(b);
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
