package dev.cpt4j.io;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes a file by writing a temporary file in the same directory and renaming it into place, so a crash or a
 * full disk never leaves a half-written file under the final name.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** What writes the content; gets an open channel on the temporary file. */
    @FunctionalInterface
    public interface Writer {
        void write(FileChannel ch) throws IOException;
    }

    /** Writes {@code dst} through {@code w}, then forces it to disk and renames it into place. */
    public static void write(Path dst, Writer w) {
        Path abs = dst.toAbsolutePath();
        Path dir = abs.getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + abs.getFileName(), ".tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                w.write(ch);
                ch.force(true);
            }
            publishable(tmp);
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            throw new dev.cpt4j.UserError(dst + ": cannot write (" + e.getMessage() + "); check that the directory is writable and the disk has space", e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);  // our own temporary file, never the user's
                } catch (IOException ignored) {
                    // best effort
                }
            }
        }
    }

    /**
     * Gives a temporary file or directory the usual permissions (rw-r--r--, rwxr-xr-x) before it is renamed into
     * place: {@code createTempFile}/{@code createTempDirectory} make them private to the owner. No-op where the file
     * system has no POSIX permissions.
     */
    public static void publishable(Path p) {
        try {
            if (!Files.getFileStore(p).supportsFileAttributeView("posix")) return;
            Files.setPosixFilePermissions(p, java.nio.file.attribute.PosixFilePermissions.fromString(
                    Files.isDirectory(p) ? "rwxr-xr-x" : "rw-r--r--"));
        } catch (IOException | UnsupportedOperationException ignored) {
            // keep the default permissions
        }
    }

    /** Writes {@code bytes} to {@code dst} atomically. */
    public static void write(Path dst, byte[] bytes) {
        write(dst, ch -> {
            var buf = java.nio.ByteBuffer.wrap(bytes);
            while (buf.hasRemaining()) ch.write(buf);
        });
    }
}
