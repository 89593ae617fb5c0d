package dev.cpt4j.train;

import dev.cpt4j.io.AtomicFiles;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;

/**
 * A disk that fills up: writes of a file named {@code name} fail with the OS's ENOSPC message after {@code room}
 * bytes (part of the last buffer is written first, as a real short write does). For tests: a small tmpfs cannot be
 * mounted from one, and a read-only folder does not stop root.
 */
final class FullDisk implements AtomicFiles.Channels {
    private final String name;
    private final long room;

    FullDisk(String name, long room) {
        this.name = name;
        this.room = room;
    }

    @Override
    public WritableByteChannel wrap(Path dst, WritableByteChannel ch) {
        if (!dst.getFileName().toString().equals(name)) return ch;
        return new WritableByteChannel() {
            long written;

            public int write(ByteBuffer src) throws IOException {
                long left = room - written;
                if (left <= 0) throw new IOException("No space left on device");
                if (src.remaining() > left) {
                    ByteBuffer part = src.duplicate();
                    part.limit(part.position() + (int) left);
                    int n = ch.write(part);
                    src.position(src.position() + n);
                    written += n;
                    return n;
                }
                int n = ch.write(src);
                written += n;
                return n;
            }

            public boolean isOpen() {
                return ch.isOpen();
            }

            public void close() throws IOException {
                ch.close();
            }
        };
    }
}
